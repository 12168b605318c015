r"""
D7 · Max pooling vs average pooling
===================================

*Lecture topic:* Convolutional networks, pooling (notes 001, 002, 003)

Top: 2x2 max and average pooling with stride 2 of the classic 4x4 example
(``nn.MaxPool2d`` / ``nn.AvgPool2d``); the cell each max comes from is
outlined. Bottom left: shift a 1-D detector output by one position and every
input value changes, yet only a few outputs of a width-3 max pooling do (4 of
10 here; the notes: "input is shifted by 1, only half of the pooling output is
changed", an approximate count that depends on the input),
while average pooling changes everywhere. Bottom right: backpropagation
through max pooling routes each upstream gradient to the arg-max of its window
only (the index stored in the forward pass); average pooling spreads it evenly.
"""

# %%
# Forward: max and average pooling; which cell wins each window.
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.colors import to_rgb
from matplotlib.patches import Rectangle
from torch import nn

from netviz.gallery import setup
from netviz.layermath import pool_output_size

setup()

image = torch.tensor(
    [[1.0, 1.0, 2.0, 4.0], [5.0, 6.0, 7.0, 8.0], [3.0, 2.0, 1.0, 0.0], [1.0, 2.0, 3.0, 4.0]]
)
max_pool = nn.MaxPool2d(2, return_indices=True)
max_out, argmax = max_pool(image[None, None])
max_out, argmax = max_out[0, 0], argmax[0, 0]  # argmax: flat indices into the 4x4 input
avg_out = nn.AvgPool2d(2)(image[None, None])[0, 0]

# Shift by one: every detector value changes, few max-pooled values do.
detector = torch.tensor([0.2, 1.0, 0.3, 0.1, 0.9, 0.2, 0.3, 0.8, 0.2, 0.1])
shifted = torch.cat([torch.tensor([0.4]), detector[:-1]])  # moved right by one


def max_pool_1d(v):
    return F.max_pool1d(v[None, None], 3, stride=1, padding=1)[0, 0]


def avg_pool_1d(v):
    return F.avg_pool1d(v[None, None], 3, stride=1, padding=1)[0, 0]


max_changed = max_pool_1d(detector) != max_pool_1d(shifted)
avg_changed = avg_pool_1d(detector) != avg_pool_1d(shifted)

# Backward: an upstream gradient g, pulled back through each pooling.
upstream = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
x_max = image.clone().requires_grad_(True)
nn.MaxPool2d(2)(x_max[None, None])[0, 0].backward(upstream)
x_avg = image.clone().requires_grad_(True)
nn.AvgPool2d(2)(x_avg[None, None])[0, 0].backward(upstream)
assert x_max.grad is not None and x_avg.grad is not None
max_grad, avg_grad = x_max.grad, x_avg.grad

# %%
# Draw.
fig = plt.figure(figsize=(12.8, 7.2))
grid = fig.add_gridspec(2, 2, height_ratios=[1, 1.1])
window_colors = ["C0", "C1", "C2", "C4"]


def tint(color, alpha=0.35):
    return tuple(alpha * c + 1 - alpha for c in to_rgb(color))


def draw_grid(ax, values, x0=0.0, y0=0.0, title=None, window=1, outline=None, fmt="{:g}"):
    """Cells tinted by pooling window (``window`` cells per side); ``outline`` cells framed."""
    values = np.asarray(values)
    for (r, c), v in np.ndenumerate(values):
        color = window_colors[(r // window) * (values.shape[1] // window) + c // window]
        ax.add_patch(Rectangle((x0 + c, y0 + r), 1, 1, fc=tint(color), ec="0.5", lw=0.8))
        ax.text(x0 + c + 0.5, y0 + r + 0.5, fmt.format(v), ha="center", va="center", fontsize=12)
        if outline is not None and outline[r, c]:
            ax.add_patch(Rectangle((x0 + c + 0.06, y0 + r + 0.06), 0.88, 0.88, fc="none",
                                   ec="black", lw=2.2))  # fmt: skip
    if title:
        ax.text(x0 + values.shape[1] / 2, y0 - 0.15, title, ha="center", va="bottom", fontsize=11)


def finish(ax, width, height):
    ax.set_xlim(-0.2, width + 0.2)
    ax.set_ylim(height + 0.2, -0.9)
    ax.set_aspect("equal")
    ax.axis("off")


max_cells = torch.zeros(16, dtype=torch.bool)
max_cells[argmax.flatten()] = True
is_max = max_cells.reshape(4, 4).numpy()
ax = fig.add_subplot(grid[0, 0])  # forward
draw_grid(ax, image.numpy(), title="input (2×2 windows, max outlined)", window=2, outline=is_max)
ax.annotate("", (5.3, 2), (4.3, 2), arrowprops={"arrowstyle": "->", "lw": 1.5})
draw_grid(ax, max_out.numpy(), 5.7, 1, title="nn.MaxPool2d(2)")
draw_grid(ax, avg_out.numpy(), 9.2, 1, title="nn.AvgPool2d(2)")
finish(ax, 11.2, 4)
ax = fig.add_subplot(grid[0, 1])  # backward
draw_grid(ax, upstream.numpy(), 0, 1, title="upstream g")
draw_grid(ax, max_grad.numpy(), 2.8, 0, title="∂L/∂x: max pool", window=2, outline=is_max)
draw_grid(ax, avg_grad.numpy(), 7.6, 0, title="∂L/∂x: avg pool", window=2)
finish(ax, 11.6, 4)

ax = fig.add_subplot(grid[1, :])
pos = np.arange(len(detector))
rows = [
    (detector, "detector", np.zeros(len(pos), dtype=bool)),
    (max_pool_1d(detector), "max pool (k=3, s=1)", np.zeros(len(pos), dtype=bool)),
    (shifted, "detector shifted by 1", (detector != shifted).numpy()),
    (max_pool_1d(shifted), "max pool of shifted", max_changed.numpy()),
]
for k, (values, name, changed) in enumerate(rows):
    yk = 1.3 * k
    for i, v in enumerate(values.tolist()):
        face = tint("C3", 0.45) if changed[i] else "white"
        ax.add_patch(Rectangle((i, yk), 1, 1, fc=face, ec="0.5", lw=0.8))
        ax.text(i + 0.5, yk + 0.5, f"{v:.1f}", ha="center", va="center", fontsize=11)
    ax.text(-0.2, yk + 0.5, name, ha="right", va="center", fontsize=11)
ax.text(
    len(pos) + 0.5, 2.6,
    f"shifted: {int((detector != shifted).sum())}/{len(pos)} inputs changed\n"
    f"max pool: {int(max_changed.sum())}/{len(pos)} outputs changed (notes: about half)\n"
    f"avg pool: {int(avg_changed.sum())}/{len(pos)} outputs changed",
    fontsize=11, va="center",
)  # fmt: skip
ax.set_xlim(-4.5, len(pos) + 6.5)
ax.set_ylim(5.1, -0.9)
ax.set_aspect("equal")
ax.axis("off")
ax.text(len(pos) / 2, -0.2, "shift invariance (changed cells shaded)", ha="center", fontsize=12)
fig.suptitle("D7 · Max vs average pooling: values, shifts, gradients")
fig.tight_layout()

# %%
# Checks: the pooled values; the shift example; and the max-pool gradient is
# non-zero exactly at the stored arg-max indices, where it equals g.
assert max_out.tolist() == [[6, 8], [3, 4]]
assert pool_output_size(4, 2) == max_out.shape[-1]  # stride defaults to the kernel size
assert pool_output_size(len(detector), 3, stride=1, padding=1) == len(max_pool_1d(detector))
assert avg_out.tolist() == [[3.25, 5.25], [2.0, 2.0]]
assert bool((detector != shifted).all())
assert int(max_changed.sum()) <= len(detector) // 2 < int(avg_changed.sum())
flat_grad = max_grad.flatten()
assert torch.equal(flat_grad[argmax.flatten()], upstream.flatten())
assert int((flat_grad != 0).sum()) == 4 and torch.equal(torch.tensor(is_max), max_grad != 0)
assert torch.equal(avg_grad, upstream.repeat_interleave(2, 0).repeat_interleave(2, 1) / 4)

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
