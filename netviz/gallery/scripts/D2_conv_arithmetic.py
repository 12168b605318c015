r"""
D2 · Convolution arithmetic: padding, stride, dilation
======================================================

*Lecture topic:* Convolutional networks, output size (notes 001, 002, 003)

Four 2-D convolutions with a 3x3 kernel, each drawn as its padded input
(zero padding hatched), the input cells seen by two neighbouring output
units, and the output grid. The cells seen are not drawn by hand: they are
where the gradient of that output unit is non-zero. The output size is
:math:`\left\lfloor \frac{W + 2P - D(K-1) - 1}{S} \right\rfloor + 1`,
computed with ``netviz.layermath.conv_output_size`` and checked against the
shape ``nn.Conv2d`` returns.
"""

# %%
# Output sizes from netviz's layer math, and the cells each output sees from autograd.
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle
from torch import nn

from netviz.gallery import setup
from netviz.layermath import conv_output_size

setup()

# (title, input size W, kernel K, stride S, padding P, dilation D)
cases = [
    ("no padding ('valid')", 5, 3, 1, 0, 1),
    ("padding 1 keeps the size ('same')", 5, 3, 1, 1, 1),
    ("stride 2 with padding 1", 7, 3, 2, 1, 1),
    ("dilation 2", 7, 3, 1, 0, 2),
]


def seen_cells(W: int, K: int, S: int, P: int, D: int, unit: tuple[int, int]) -> np.ndarray:
    """Boolean mask over the padded input: cells whose value reaches output ``unit``."""
    padded = torch.zeros(1, 1, W + 2 * P, W + 2 * P, requires_grad=True)
    out = F.conv2d(padded, torch.ones(1, 1, K, K), stride=S, dilation=D)
    out[0, 0][unit].backward()
    assert padded.grad is not None
    return (padded.grad[0, 0] != 0).numpy()


output_sizes = {}
torch_sizes = {}
footprints = {}
for title, W, K, S, P, D in cases:
    output_sizes[title] = conv_output_size(W, K, stride=S, padding=P, dilation=D)
    conv = nn.Conv2d(1, 1, K, stride=S, padding=P, dilation=D)
    torch_sizes[title] = conv(torch.zeros(1, 1, W, W)).shape[-1]
    footprints[title] = [seen_cells(W, K, S, P, D, unit) for unit in [(0, 0), (0, 1)]]

# %%
# Draw each case: padded input (left) and output (right), same cell size.
fig, axes = plt.subplots(2, 2, figsize=(12.8, 7.2))
unit_colors = ["C3", "C0"]
for ax, (title, W, K, S, P, D) in zip(axes.flat, cases):
    n_in, n_out = W + 2 * P, output_sizes[title]
    for r in range(n_in):
        for c in range(n_in):
            is_pad = not (P <= r < P + W and P <= c < P + W)
            ax.add_patch(
                Rectangle(
                    (c, r), 1, 1, fc="white" if is_pad else "#dbe9f6", ec="0.55", lw=0.8,
                    hatch="///" if is_pad else None,
                )
            )  # fmt: skip
    first, second = footprints[title]
    for r, c in zip(*np.nonzero(first)):  # unit (0, 0): filled
        ax.add_patch(Rectangle((c + 0.1, r + 0.1), 0.8, 0.8, fc=unit_colors[0], alpha=0.75, lw=0))
    for r, c in zip(*np.nonzero(second)):  # unit (0, 1): framed, so overlaps stay visible
        ax.add_patch(Rectangle((c + 0.2, r + 0.2), 0.6, 0.6, fc="none", ec=unit_colors[1], lw=2.5))
    x0 = n_in + 1.5
    for r in range(n_out):
        for c in range(n_out):
            ax.add_patch(Rectangle((x0 + c, r), 1, 1, fc="#f2e6c9", ec="0.4", lw=0.8))
    ax.add_patch(Rectangle((x0 + 0.1, 0.1), 0.8, 0.8, fc=unit_colors[0], alpha=0.75, lw=0))
    ax.add_patch(Rectangle((x0 + 1.2, 0.2), 0.6, 0.6, fc="none", ec=unit_colors[1], lw=2.5))
    ax.annotate("", (x0 - 0.2, n_out / 2), (n_in + 0.2, n_out / 2), arrowprops={"arrowstyle": "->"})
    ax.set_xlim(-0.2, 9 + 1.5 + 5 + 0.2)
    ax.set_ylim(9.4, -0.2)
    ax.set_aspect("equal")
    ax.axis("off")
    formula = f"⌊({W} + 2·{P} − {D}·({K}−1) − 1) / {S}⌋ + 1 = {n_out}"
    ax.set_title(f"{title}\nW={W}, K={K}, P={P}, S={S}, D={D}:  {formula}", fontsize=11)
    ax.text(x0, n_out + 0.6, f"output {n_out}×{n_out}", va="top", fontsize=10)
    ax.text(0, n_in + 0.3, f"input {W}×{W}" + (f", padded to {n_in}×{n_in}" if P else ""),
            va="top", fontsize=10)  # fmt: skip
fig.suptitle("D2 · Convolution arithmetic: padding, stride, dilation")
handles = [
    Rectangle((0, 0), 1, 1, fc=unit_colors[0], alpha=0.75, lw=0),
    Rectangle((0, 0), 1, 1, fc="none", ec=unit_colors[1], lw=2.5),
    Rectangle((0, 0), 1, 1, fc="white", ec="0.55", hatch="///"),
]
labels = ["cells seen by output (0, 0)", "cells seen by output (0, 1)", "zero padding"]
fig.legend(handles, labels, loc="lower center", ncols=3, frameon=False)
fig.tight_layout(rect=(0, 0.05, 1, 1))

# %%
# Checks: netviz's formula equals PyTorch's output shape and the values the
# notes' examples give; each output unit sees K×K cells spread over
# D(K-1)+1 rows/columns, and neighbouring units are S cells apart.
assert output_sizes == torch_sizes
assert list(output_sizes.values()) == [3, 5, 4, 3]
for title, _, K, S, _, D in cases:
    first, second = footprints[title]
    assert first.sum() == K * K
    cols = np.nonzero(first)[1]
    assert cols.max() - cols.min() + 1 == D * (K - 1) + 1
    assert np.array_equal(np.roll(first, S, axis=1), second)

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
