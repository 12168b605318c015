"""Filters and feature maps of a small CNN trained for a few seconds on scikit-learn's digits.

Trains a two-convolution network on the 8x8 digits (1,437 training images)
for a few epochs of Adam, then draws its first-layer filters with
:func:`netviz.plot.filters` and the feature maps of one test digit with
:func:`netviz.capture_activations` and :func:`netviz.plot.feature_maps`.

Writes ``docs/img/digits_filters.png`` and ``docs/img/digits_feature_maps.png``
(or into the folder given as argument)::

    python examples/digits_filters.py [OUT_DIR]
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F

from netviz import capture_activations
from netviz.plot import feature_maps, filters, savefig

EPOCHS = 15


def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_test, y_test)``: images ``(N, 1, 8, 8)`` scaled to [0, 1]."""
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32)[:, None] / 16.0
    y = torch.tensor(data.target)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(y), generator=g)
    x, y = x[perm], y[perm]
    return x[:1437], y[:1437], x[1437:], y[1437:]


def make_cnn() -> nn.Sequential:
    """conv(1->8, 3x3) - ReLU - conv(8->16, 3x3) - ReLU - maxpool - linear(16*2*2 -> 10)."""
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(1, 8, 3, padding=1),
            relu1=nn.ReLU(),
            conv2=nn.Conv2d(8, 16, 3),
            relu2=nn.ReLU(),
            pool=nn.MaxPool2d(3),
            flatten=nn.Flatten(),
            fc=nn.Linear(16 * 2 * 2, 10),
        )
    )


def train(epochs: int = EPOCHS) -> tuple[nn.Sequential, float]:
    """The trained network and its test accuracy."""
    torch.manual_seed(0)
    x, y, x_test, y_test = digits()
    model = make_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(1)
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=g).split(64):
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    return model, accuracy


def main(out_dir: str = "docs/img") -> tuple[Path, Path, float]:
    torch.set_num_threads(1)
    start = time.perf_counter()
    model, accuracy = train()
    seconds = time.perf_counter() - start
    x_test = digits()[2]
    with torch.no_grad():
        acts = capture_activations(model, x_test[:1], modules=["conv*", "relu*", "pool"])

    fig = plt.figure(figsize=(5.0, 3.2))
    filters(model.conv1, ax=fig, title=f"first-layer filters (test accuracy {accuracy:.0%})")
    filters_png = savefig(fig, Path(out_dir) / "digits_filters.png", dpi=100)
    plt.close(fig)

    fig = plt.figure(figsize=(8.0, 5.0))
    feature_maps({"input": x_test[:1], **acts}, ax=fig, max_channels=8)
    fig.suptitle("feature maps of one test digit")
    maps_png = savefig(fig, Path(out_dir) / "digits_feature_maps.png", dpi=80)
    plt.close(fig)
    print(f"trained {EPOCHS} epochs in {seconds:.1f} s, test accuracy {accuracy:.3f}")
    return filters_png, maps_png, accuracy


if __name__ == "__main__":
    main(*sys.argv[1:2])
