"""Functional activations under torch.distributed: every rank gets the same report.

Two gloo processes on CPU; rank 0's batch kills 8 more units than rank 1's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F


class Net(nn.Module):
    """fc1 -> F.relu -> fc2; units 0-15 always dead, 16-23 alive iff x[:, 0] > 0, 24-31 alive."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = nn.Linear(4, 32)
        self.fc2 = nn.Linear(32, 2)
        with torch.no_grad():
            self.fc1.bias[:16] = -100.0
            self.fc1.weight[16:24] = 0.0
            self.fc1.weight[16:24, 0] = 1.0
            self.fc1.bias[16:24] = 0.0
            self.fc1.weight[24:] = 0.0
            self.fc1.bias[24:] = 1.0  # always alive

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def _batch(rank):
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(32, 4, generator=g)
    x[:, 0] = -5.0 if rank == 0 else 5.0
    return x


def _local_dead(x):
    net = Net()
    with torch.no_grad():
        return ((net.fc1(x) > 0).float().mean(0) <= 0.01).float().mean().item()


def _worker(rank, world, init, out):
    import torch.distributed as dist

    from netviz import diagnose

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        report = diagnose(Net(), _batch(rank))
        found = [(f.kind, f.module, f.evidence.get("dead_frac")) for f in report.findings]
        with open(f"{out}.{rank}", "w") as fh:
            json.dump({"found": found, "text": str(report)}, fh)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_every_rank_gets_the_merged_functional_counts(tmp_path):
    import torch.multiprocessing as mp

    init = f"file://{tmp_path / 'init'}"
    out = str(tmp_path / "result")
    mp.spawn(_worker, args=(2, init, out), nprocs=2, join=True)
    r0, r1 = (json.loads(Path(f"{out}.{r}").read_text()) for r in range(2))
    assert r0 == r1  # the same report on both ranks
    local = [_local_dead(_batch(r)) for r in range(2)]
    assert local == [0.75, 0.5]
    # dead counts are averaged over the ranks, as the unit_activity probe merges them
    assert [tuple(f) for f in r0["found"]] == [("dead_units", "fc1 -> relu", 0.625)]
