r"""
D6 · Grouped convolution connectivity
=====================================

*Lecture topic:* Convolutional networks, convolution groups (notes 000)

Which input channels each output channel of ``nn.Conv1d(4, 4, 3, groups=g)``
depends on, for g = 1, 2, 4. The wiring (top) is measured with autograd (an
output channel's gradient with respect to each input channel), and the
matrices (bottom) are the norms of the real weight tensor, of shape
``(4, 4/g, 3)``, placed into their blocks. In PyTorch ``groups=1`` (the
default) mixes all channels, and ``groups=in_channels`` is the depthwise
convolution in which each channel is filtered on its own. The slide in the
notes labels the diagonal matrix "Groups = 1" and the full one "Groups = 4":
that is the other way round from PyTorch.
"""

# %%
# Three grouped convolutions; connectivity from autograd, blocks from the weights.
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from netviz.gallery import setup
from netviz.layermath import param_count

setup()

channels, kernel_size, length = 4, 3, 8
group_counts = [1, 2, 4]
convs = {g: nn.Conv1d(channels, channels, kernel_size, groups=g, bias=False) for g in group_counts}


def measured_connectivity(conv: nn.Conv1d) -> np.ndarray:
    """``[o, i]`` is True when output channel ``o`` has a non-zero gradient w.r.t. input channel ``i``."""
    x = torch.randn(1, channels, length, requires_grad=True)
    out = conv(x)
    rows = []
    for o in range(channels):
        (grad,) = torch.autograd.grad(out[0, o].sum(), x, retain_graph=True)
        rows.append(grad[0].abs().sum(dim=1) > 0)
    return torch.stack(rows).numpy()


def weight_blocks(conv: nn.Conv1d) -> np.ndarray:
    """``(C_out, C_in)`` matrix of kernel norms: weight ``(C_out, C_in/g, k)`` put into its block."""
    w = conv.weight.detach()
    per_group_in = w.shape[1]
    per_group_out = w.shape[0] // conv.groups
    full = np.zeros((channels, channels))
    for o in range(channels):
        first = (o // per_group_out) * per_group_in
        full[o, first : first + per_group_in] = w[o].norm(dim=1).numpy()
    return full


connectivity = {g: measured_connectivity(c) for g, c in convs.items()}
blocks = {g: weight_blocks(c) for g, c in convs.items()}
weight_shapes = {g: tuple(c.weight.shape) for g, c in convs.items()}
n_params = {g: param_count(c) for g, c in convs.items()}

# %%
# Wiring diagrams (top) and weight blocks (bottom).
fig, axes = plt.subplots(2, 3, figsize=(12.8, 7.2), gridspec_kw={"height_ratios": [1, 1.1]})
names = {
    1: "groups = 1 (default): all mixed",
    2: "groups = 2",
    4: "groups = 4 = in_channels: depthwise",
}
vmax = max(b.max() for b in blocks.values())
for col, g in enumerate(group_counts):
    ax = axes[0, col]
    per_group = channels // g
    for o in range(channels):
        for i in range(channels):
            if connectivity[g][o, i]:
                ax.plot([0, 1], [i, o], color=f"C{i // per_group}", lw=2.5, alpha=0.8)
    ax.scatter([0] * channels, range(channels), s=380, c="white", edgecolors="0.2", zorder=3)
    ax.scatter([1] * channels, range(channels), s=380, c="white", edgecolors="0.2", zorder=3)
    for k in range(channels):
        ax.text(0, k, f"x{k + 1}", ha="center", va="center", fontsize=10, zorder=4)
        ax.text(1, k, f"y{k + 1}", ha="center", va="center", fontsize=10, zorder=4)
    ax.set_xlim(-0.3, 1.3)
    ax.set_ylim(channels - 0.4, -0.6)
    ax.axis("off")
    ax.set_title(f"{names[g]}\nweight {weight_shapes[g]}, {n_params[g]} parameters")
    ax = axes[1, col]
    masked = np.ma.masked_equal(blocks[g], 0)
    im = ax.imshow(masked, cmap="viridis", vmin=0, vmax=vmax)
    for (o, i), v in np.ndenumerate(blocks[g]):
        ax.text(i, o, f"{v:.2f}" if v else "0", ha="center", va="center", fontsize=10,
                color="white" if v and v < 0.6 * vmax else ("0.5" if not v else "black"))  # fmt: skip
    ax.set_xticks(range(channels), [f"x{i + 1}" for i in range(channels)])
    ax.set_yticks(range(channels), [f"y{o + 1}" for o in range(channels)])
    ax.set_xlabel("input channel")
    if col == 0:
        ax.set_ylabel("output channel")
    ax.set_title("‖w[o, i, :]‖ per channel pair", fontsize=11)
fig.colorbar(im, ax=axes[1, :].tolist(), shrink=0.8, label="kernel norm")
fig.suptitle("D6 · Grouped convolution: which inputs each output channel sees (nn.Conv1d(4, 4, 3))")
fig.text(
    0.5, 0.015,
    "Careful: the slide in notes 000 labels the diagonal matrix \"Groups = 1\" and the full one "
    "\"Groups = 4\"; in PyTorch it is the other way round.",
    ha="center", fontsize=10, color="0.3",
)  # fmt: skip

# %%
# Checks: the measured connectivity is block diagonal with g blocks of size
# 4/g, the weights live exactly in those blocks, and the parameter count is
# C_out · C_in/g · k.
for g in group_counts:
    expected = np.kron(np.eye(g), np.ones((channels // g, channels // g))).astype(bool)
    assert np.array_equal(connectivity[g], expected)
    assert np.array_equal(blocks[g] != 0, expected)
    assert weight_shapes[g] == (channels, channels // g, kernel_size)
    assert n_params[g] == channels * (channels // g) * kernel_size
assert [n_params[g] for g in group_counts] == [48, 24, 12]

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
