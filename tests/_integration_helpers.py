"""Small models and record tables shared by the integration tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from netviz.records.store import COLUMNS

CONTRACT = list(COLUMNS)


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def train(net: nn.Module, opt: torch.optim.Optimizer, steps: int, batch: int = 16) -> None:
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        opt.zero_grad()
        net(torch.randn(batch, 4, generator=g)).pow(2).mean().backward()
        opt.step()


def table(rows: list[tuple]) -> pd.DataFrame:
    """A record table with every contract column: rows are
    ``(step, phase, micro, module, call, order, probe, stat, value)``."""
    frame = pd.DataFrame(
        [(s, False, ph, mi, m, c, o, p, st, v) for s, ph, mi, m, c, o, p, st, v in rows],
        columns=CONTRACT,
    )
    return frame.astype({"value": np.float64})


def wandb_history(wandb_dir: Path) -> list[dict] | None:
    """History records of the offline runs in ``wandb_dir`` (``wandb leet inspect --json``).

    None only when this wandb has no ``leet`` reader (it is new in wandb); a
    reader that exists but fails is a test failure, not a skip.
    """
    cli = Path(sys.executable).parent / "wandb"
    cli = str(cli) if cli.exists() else shutil.which("wandb")
    probe = subprocess.run([cli, "leet", "--help"], capture_output=True, text=True, timeout=300)
    if probe.returncode != 0:
        return None
    out = subprocess.run(
        [cli, "leet", "inspect", "--json", str(wandb_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, (
        f"wandb leet inspect failed ({out.returncode}): {out.stderr[-2000:]}"
    )
    return [
        json.loads(line)["history"]["item"]
        for line in out.stdout.splitlines()
        if '"type":"history"' in line
    ]
