"""``netviz demo``: train a tiny network with probes; write a figure and a record file.

The demo needs nothing beyond netviz's own dependencies: it makes two
interleaved spirals with torch, trains a 6-layer tanh MLP on them for a few
seconds with ``netviz.watch`` attached, and writes

- ``records.csv`` (or ``records.parquet`` with ``--format parquet``): the tidy records;
- ``grad_norm.png``: each layer's gradient norm over the training steps;
- ``report.txt``: ``netviz.diagnose`` on the recorded run.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from netviz.capture.monitor import Monitor

__all__ = ["add_arguments", "run", "spirals", "train_demo"]


def spirals(n: int = 512, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved spirals, ``(x: (n, 2) float, y: (n,) long)``."""
    import torch

    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n, generator=g) * 3 * math.pi
    label = torch.arange(n) % 2
    angle = t + math.pi * label
    x = torch.stack([t * torch.cos(angle), t * torch.sin(angle)], dim=1) / (3 * math.pi)
    x = x + 0.02 * torch.randn(n, 2, generator=g)
    return x, label


def train_demo(steps: int = 200, seed: int = 0) -> Monitor:
    """Train the demo MLP with ``watch`` attached; return the monitor (detached)."""
    import torch
    from torch import nn

    import netviz

    torch.manual_seed(seed)
    x, y = spirals(seed=seed)
    layers: list[nn.Module] = [nn.Linear(2, 32), nn.Tanh()]
    for _ in range(4):
        layers += [nn.Linear(32, 32), nn.Tanh()]
    model = nn.Sequential(*layers, nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with netviz.watch(
        model, probes=("grad_norm", "activation_stats", "weight_stats"), every=5, optimizer=opt
    ) as mon:
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return mon


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="netviz-demo", help="output folder (default: %(default)s)")
    parser.add_argument(
        "--steps", type=int, default=200, help="training steps (default: %(default)s)"
    )
    parser.add_argument(
        "--format",
        choices=("csv", "parquet"),
        default="csv",
        help="record file format (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import netviz
    from netviz.plot import savefig, stat_over_steps, style

    if args.steps < 1:
        raise SystemExit(f"netviz demo: --steps must be >= 1, got {args.steps}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mon = train_demo(args.steps)
    records = mon.save(out / f"records.{args.format}")
    df = mon.to_pandas()
    with style():
        fig, ax = plt.subplots(figsize=(8, 4.5))
        stat_over_steps(df, ax, stat="l2", probe="grad_norm")
        ax.set_title("Gradient norm per layer (demo: tanh MLP on two spirals)")
        figure = savefig(fig, out / "grad_norm.png")
        plt.close(fig)
    report = netviz.diagnose(records=df)
    (out / "report.txt").write_text(str(report) + "\n")
    print(f"recorded {len(df)} values over {df.step.nunique()} steps")
    print(f"records: {records}\nfigure:  {figure}\nreport:  {out / 'report.txt'}")
    return 0
