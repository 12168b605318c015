"""Models and data shared by the distributed workers and the single-process references.

Both sides build the same float64 model from the same seed and the same
per-rank batches, so the test process can recompute every quantity the
distributed run recorded on the concatenated global batch.
"""

from __future__ import annotations

import torch
from torch import nn

WORLD = 2
LOCAL_BATCH = 6
STEPS = 4
LR = 0.05


def make_model() -> nn.Module:
    """A small MLP whose FSDP shards are uneven (5 rows over 2 ranks) or empty (1 row)."""
    torch.manual_seed(1234)
    return nn.Sequential(
        nn.Linear(3, 5),
        nn.ReLU(),
        nn.Linear(5, 4),
        nn.Tanh(),
        nn.Linear(4, 1),
    ).double()


def local_batch(step: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch of ``rank`` at ``step``: different on every rank (shifted and scaled)."""
    g = torch.Generator().manual_seed(100 * step + rank)
    x = torch.randn(LOCAL_BATCH, 3, generator=g, dtype=torch.float64) * (1 + rank) + rank
    y = torch.randn(LOCAL_BATCH, 1, generator=g, dtype=torch.float64)
    return x, y


def global_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All ranks' batches of ``step`` concatenated in rank order."""
    parts = [local_batch(step, r) for r in range(WORLD)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # A mean over the batch: the average of the ranks' gradients (DDP, FSDP)
    # equals the gradient of the global batch when local batches are equal.
    return (out - y).pow(2).mean()


def make_diagnose_model() -> nn.Module:
    """Ten sigmoid layers (gradients vanish towards the input) and a dead ReLU layer."""
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(10):
        layers += [nn.Linear(16, 16), nn.Sigmoid()]
    dead = nn.Linear(16, 16)
    with torch.no_grad():
        dead.bias.fill_(-100.0)
    return nn.Sequential(*layers, dead, nn.ReLU(), nn.Linear(16, 2)).double()


def diagnose_batch(rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``rank``'s batch for ``diagnose`` (class labels as the target)."""
    g = torch.Generator().manual_seed(7 + rank)
    x = torch.randn(LOCAL_BATCH, 16, generator=g, dtype=torch.float64) + rank
    return x, torch.randint(0, 2, (LOCAL_BATCH,), generator=g)
