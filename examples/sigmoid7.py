"""The lecture's 7-layer sigmoid network: vanishing gradients, and skip connections as the cure.

Six hidden layers of three sigmoid units and a leaky-ReLU output layer
(lecture notes 000, "So we can just go arbitrarily deep?"), on two
concentric circles. Without skip connections the gradient reaching the first
layer is about five orders of magnitude smaller than at the output.

Run the diagnosis from the command line::

    netviz diagnose examples/sigmoid7.py            # build(): plain network
    netviz diagnose examples/sigmoid7.py:build_skip # with skip connections

``build()`` returns ``(model, inputs, target)``, the convention of
``netviz diagnose``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SevenLayer", "build", "build_skip", "circles"]


class SevenLayer(nn.Module):
    """2 -> 3 (x6 hidden, sigmoid) -> 2, leaky-ReLU output; ``skip=True`` adds residual connections.

    With ``skip=True`` hidden layers 2..6 compute ``h + sigmoid(W h + b)``
    instead of ``sigmoid(W h + b)``.
    """

    def __init__(self, skip: bool = False, hidden: int = 3, depth: int = 6):
        super().__init__()
        self.skip = skip
        self.inp = nn.Linear(2, hidden)
        self.hidden = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth - 1))
        self.act = nn.ModuleList(nn.Sigmoid() for _ in range(depth))
        self.out = nn.Linear(hidden, 2)
        self.out_act = nn.LeakyReLU(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act[0](self.inp(x))
        for linear, act in zip(self.hidden, self.act[1:]):
            y = act(linear(h))
            h = h + y if self.skip else y
        return self.out_act(self.out(h))


def circles(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two noisy concentric circles (scikit-learn's ``make_circles``): ``(x (n, 2), labels (n,))``."""
    from sklearn.datasets import make_circles

    x, y = make_circles(n, noise=0.1, factor=0.5, random_state=seed)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.long)


def build(skip: bool = False) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """``(model, inputs, target)`` for ``netviz diagnose``: the plain network, seeded."""
    torch.manual_seed(0)
    model = SevenLayer(skip=skip)
    x, y = circles()
    return model, x, y


def build_skip() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The same network with skip connections."""
    return build(skip=True)


if __name__ == "__main__":
    from netviz import diagnose

    print(diagnose(*build()))
