"""A deep sigmoid network's activation distributions over training (Glorot & Bengio, 2010).

Five hidden sigmoid layers of 128 units with PyTorch's default initialisation
(uniform, bound 1/sqrt(fan_in)) learn the 8x8 scikit-learn digits with plain
SGD. ``netviz.watch`` with an ``ActivationHist`` probe records the histogram
of every sigmoid's output at every step, into the histogram table; sigmoid
outputs lie in (0, 1), so a linear grid of 50 bins there (``bins=(0.0, 1.0,
50)``) resolves them finer than the default log-magnitude grid.
Within the first few hundred steps the last hidden layer's outputs collapse
towards 0 (the saturation Glorot and Bengio describe) and stay there, while
the lower layers stay near 0.5 and the fourth spreads upwards.

Writes ``docs/img/sigmoid_distributions.png`` (or the path given as argument)::

    python examples/sigmoid_distributions.py [OUT.png]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F

import netviz
from netviz.capture.probes import ActivationHist
from netviz.plot import savefig

STEPS, DEPTH, WIDTH, BATCH, LR = 1500, 5, 128, 32, 0.5


def train(steps: int = STEPS) -> netviz.Monitor:
    torch.manual_seed(0)
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    layers: list[nn.Module] = []
    fan_in = 64
    for _ in range(DEPTH):
        layers += [nn.Linear(fan_in, WIDTH), nn.Sigmoid()]
        fan_in = WIDTH
    model = nn.Sequential(*layers, nn.Linear(WIDTH, 10))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    g = torch.Generator().manual_seed(1)
    probe = ActivationHist(bins=(0.0, 1.0, 50))
    mon = netviz.watch(model, probes=[probe], modules=nn.Sigmoid, optimizer=opt)
    with mon:
        for _ in range(steps):
            idx = torch.randint(0, len(x), (BATCH,), generator=g)
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return mon


def main(out: str = "docs/img/sigmoid_distributions.png") -> Path:
    import matplotlib.pyplot as plt

    torch.set_num_threads(1)  # a tiny network: threads only add overhead
    mon = train()
    hist = mon.histograms()
    fig = plt.figure(figsize=(13.0, 6.4), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, 1.1])
    axes = top.subplots(1, DEPTH, sharey=True)
    netviz.plot.distributions_over_steps(hist, axes, yscale="linear")
    for i, ax in enumerate(axes):
        ax.set_title(f"sigmoid {i + 1}", fontsize=10)
        ax.set_xlabel("step")
    axes[0].set_ylabel("output percentiles")
    top.suptitle("distributions over training (netviz.plot.distributions_over_steps)")
    left, right = bottom.subplots(1, 2, sharex=True)
    for ax, step in ((left, 0), (right, 300)):
        netviz.plot.layer_histograms(hist, ax, step=step, range=(0.0, 1.0), bins=50)
        ax.set_title(f"every layer at step {step} (netviz.plot.layer_histograms)", fontsize=10)
    path = savefig(fig, out, dpi=100)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main(*sys.argv[1:2])
