"""HTML reports of two short real runs: a BatchNorm CNN on digits and a small TransformerEncoder.

Both train for real (a few SGD steps) under :func:`netviz.watch`. The CNN
(scikit-learn's 8x8 digits) records gradients, activations, weights, units
and feature maps, and runs a validation forward under ``no_grad`` every
fourth step; the transformer keeps attention snapshots. Writes the CNN's
report to OUT (default ``report.html``) and the transformer's beside it
(``<OUT stem>_transformer.html``)::

    python examples/report_digits.py [OUT]

The tests (``tests/reporting/``) open these reports in headless chromium.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch import nn

import netviz

CNN_PROBES = ("grad_norm", "activation_stats", "weight_stats", "unit_activity", "feature_maps")


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    xt = torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    return xt, torch.tensor(y)


def digits_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 10),
    )


def cnn_run(steps: int = 12, batch: int = 64):
    """``(monitor, wall seconds)`` of a digits CNN trained ``steps`` steps, eval every 4."""
    torch.manual_seed(0)
    x, y = digits()
    model = digits_cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    start = time.perf_counter()
    with netviz.watch(model, probes=CNN_PROBES, optimizer=opt) as mon:
        for step in range(steps):
            i = torch.randint(0, len(x), (batch,))
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[i]), y[i]).backward()
            if step % 4 == 3:  # a validation pass within the step: phase "eval"
                model.eval()
                with torch.no_grad():
                    model(x[-batch:])
                model.train()
            opt.step()
    return mon, time.perf_counter() - start


def transformer_run(steps: int = 4):
    """``monitor`` of a 2-layer TransformerEncoder (4 heads) with attention snapshots."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x = torch.randn(8, 10, 16)
    with netviz.watch(
        model, probes=("grad_norm", "activation_stats", "attention"), optimizer=opt
    ) as mon:
        for _ in range(steps):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
    return mon


def main(out: str = "report.html") -> list[Path]:
    """Train both runs and write their reports; return the paths."""
    out_path = Path(out)
    mon, wall = cnn_run()
    cnn = netviz.report(
        mon,
        out_path,
        title="netviz report: digits CNN (BatchNorm), 12 SGD steps",
        metadata={"model": "digits CNN (Sequential)", "wall_time_s": wall, "data": "load_digits"},
    )
    tf = netviz.report(
        transformer_run(),
        out_path.with_name(out_path.stem + "_transformer.html"),
        title="netviz report: TransformerEncoder, 2 layers x 4 heads",
    )
    for path in (cnn, tf):
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
    return [cnn, tf]


if __name__ == "__main__":
    main(*sys.argv[1:2])
