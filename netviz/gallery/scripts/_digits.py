"""Shared by D9, D12, D13 and F1: a tiny CNN trained on scikit-learn's 8x8 digits.

Not a figure (the builder skips files starting with ``_``). Deterministic:
fixed split, seeded initialisation and seeded minibatches; a couple of seconds
on one CPU core.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DigitsData",
    "load_digits_data",
    "make_digits_cnn",
    "spread_labels",
    "train_digits_cnn",
]


@dataclass(frozen=True)
class DigitsData:
    """Images ``(n, 1, 8, 8)`` scaled to [0, 1] and integer labels, split about 75/25."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits_data() -> DigitsData:
    """The 1797 digits with a fixed stratified split: every 4th digit of each class is a test digit."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    y = torch.tensor(digits.target)
    is_test = torch.zeros(len(y), dtype=torch.bool)
    for c in range(10):
        is_test[(y == c).nonzero().flatten()[::4]] = True
    return DigitsData(x[~is_test], y[~is_test], x[is_test], y[is_test])


def make_digits_cnn(seed: int = 0) -> nn.Sequential:
    """conv(1->8, 3x3) - ReLU - conv(8->16, 3x3) - ReLU - maxpool 2 - linear(256->10)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 10),
    )


def train_digits_cnn(steps: int, data: DigitsData | None = None, seed: int = 0):
    """Train :func:`make_digits_cnn` with Adam on minibatches of 128.

    Returns ``(model in eval mode, data, per-step training losses)``.
    """
    data = data if data is not None else load_digits_data()
    model = make_digits_cnn(seed)
    generator = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(data.y_train), (128,), generator=generator)
        loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model.eval(), data, losses


def spread_labels(points, min_dist: float, box=(1.0, 1.0), iterations: int = 300):
    """Move 2-D label positions apart until no two are closer than ``min_dist``.

    ``points`` ``(n, 2)`` in any isotropic unit (pixels, say) inside the
    rectangle ``[0, box[0]] x [0, box[1]]``; returns new positions, kept at
    least ``min_dist / 2`` inside it. Deterministic: overlapping pairs are
    pushed apart symmetrically along the line joining them (along ``x`` when
    they coincide), a little per iteration.
    """
    import numpy as np

    pos = np.array(points, dtype=np.float64)
    lo = np.full(2, min_dist / 2)
    hi = np.asarray(box, dtype=np.float64) - min_dist / 2
    for _ in range(iterations):
        moved = False
        for i in range(len(pos)):
            for j in range(i + 1, len(pos)):
                d = pos[j] - pos[i]
                dist = float(np.hypot(*d))
                if dist >= min_dist:
                    continue
                unit = d / dist if dist > 1e-12 else np.array([1.0, 0.0])
                push = 0.5 * (min_dist - dist) + 1e-3 * min_dist
                pos[i] -= unit * push / 2
                pos[j] += unit * push / 2
                moved = True
        pos = np.clip(pos, lo, hi)
        if not moved:
            break
    return pos
