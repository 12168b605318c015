r"""
D4 · Transposed convolution
===========================

*Lecture topic:* Convolutional networks, upsampling (notes 000, 002)

Top, the worked example of the notes: a transposed convolution of the 2x2
input ``[[0, 1], [2, 3]]`` with the 2x2 kernel ``[[0, 1], [2, 3]]`` places one
copy of the kernel, scaled by each input value, at that input's position, and
sums the overlaps: ``[[0, 0, 1], [0, 4, 6], [4, 12, 9]]``. Each term is
``F.conv_transpose2d`` of one input value alone; the sum is the product with
the transposed convolution matrix of ``netviz.layermath``. Bottom, the 1-D
signal-processing view (notes 000): a stride-2 transposed convolution is
"insert zeros, then filter" with a stride-1 convolution; with the kernel
[1/2, 1, 1/2] it is linear interpolation.
"""

# %%
# The four scaled kernel copies, their sum, and the matrix view.
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.colors import to_rgb
from matplotlib.patches import Rectangle

from netviz.gallery import setup
from netviz.layermath import conv_matrix, conv_transpose_matrix

setup()

inp = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
kernel = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
transposed = F.conv_transpose2d(inp[None, None], kernel[None, None])[0, 0]
partials = []  # one scaled, shifted kernel copy per input cell
for r in range(2):
    for c in range(2):
        one = torch.zeros_like(inp)
        one[r, c] = inp[r, c]
        partials.append(F.conv_transpose2d(one[None, None], kernel[None, None])[0, 0])
transpose_matrix = conv_transpose_matrix(kernel, (2, 2))  # (9, 4)
matrix_product = (transpose_matrix @ inp.flatten()).reshape(3, 3)

# 1-D: insert zeros, then filter (stride-1 convolution with the flipped kernel).
signal = torch.tensor([2.0, 4.0, 1.0, 3.0])
h = torch.tensor([0.5, 1.0, 0.5])
stride = 2
upsampled = F.conv_transpose1d(signal[None, None], h[None, None], stride=stride)[0, 0]
zero_inserted = torch.zeros(stride * (len(signal) - 1) + 1)
zero_inserted[::stride] = signal
zero_padded = F.pad(zero_inserted, (len(h) - 1, len(h) - 1))
filtered = F.conv1d(zero_padded[None, None], h.flip(0)[None, None])[0, 0]

# %%
# Draw both views in one canvas (one unit per cell).
fig, ax = plt.subplots(figsize=(12.8, 7.2))


def tint(color, alpha=0.35):
    """``color`` at ``alpha`` opacity on white."""
    return tuple(alpha * c + 1 - alpha for c in to_rgb(color))


def draw_grid(values, x0, y0, fill=None, label=None, fontsize=12, mask=None, dots=True):
    """Numbers in cells, top-left corner at (x0, y0).

    Cells where ``mask`` is False are left white (and shown as '·' if ``dots``).
    """
    values = np.atleast_2d(np.asarray(values))
    for (r, c), v in np.ndenumerate(values):
        present = mask is None or mask[r][c]
        fc = tint(fill) if (fill and present) else "white"
        ax.add_patch(Rectangle((x0 + c, y0 + r), 1, 1, fc=fc, ec="0.45", lw=0.8))
        text = f"{v:g}" if (present or not dots) else "·"
        ax.text(x0 + c + 0.5, y0 + r + 0.5, text, ha="center", va="center", fontsize=fontsize)
    if label:
        ax.text(x0 + values.shape[1] / 2, y0 - 0.2, label, ha="center", va="bottom", fontsize=11)


def sign(x, y, s, size=20):
    ax.text(x, y, s, ha="center", va="center", fontsize=size)


# Top: Input ⊛ᵀ Kernel = sum of the four copies = Output.
draw_grid(inp, 0, 1.5, label="input")
draw_grid(kernel, 3, 1.5, label="kernel")
sign(5.75, 2.5, "=")
colors = ["C0", "C1", "C2", "C4"]
for i, (part, color) in enumerate(zip(partials, colors)):
    r, c = divmod(i, 2)
    x0 = 6.5 + 4.2 * i
    mask = np.zeros((3, 3), dtype=bool)
    mask[r : r + 2, c : c + 2] = True
    draw_grid(part, x0, 1, fill=color, mask=mask, label=f"{inp[r, c]:g} × kernel at ({r},{c})")
    sign(x0 + 3.6, 2.5, "+" if i < 3 else "=")
draw_grid(transposed, 6.5 + 4.2 * 4, 1, fill="C3", label="output")
ax.text(
    0, 5.3,
    f"F.conv_transpose2d(input, kernel) = {transposed.int().tolist()}: the same as "
    "conv_transpose_matrix(kernel, (2, 2)) @ vec(input),\nwhose 9×4 matrix is "
    "conv_matrix(kernel, (3, 3))ᵀ, the transpose of the convolution that maps 3×3 back to 2×2.",
    fontsize=11, va="top",
)  # fmt: skip

# Bottom: 1-D, insert zeros then filter.
y = 8.6
ax.text(
    0, y - 0.9, "1-D, stride 2: insert zeros, then filter (notes 000)", fontsize=13, va="bottom"
)
draw_grid(signal, 2, y, fill="C0")
ax.text(1.7, y + 0.5, "x", ha="right", va="center", fontsize=12)
draw_grid(zero_inserted, 2, y + 1.6, fill="C0", mask=[(zero_inserted != 0).tolist()], dots=False)
ax.text(1.7, y + 2.1, "zeros inserted", ha="right", va="center", fontsize=11)
draw_grid(zero_padded, 0, y + 3.2, fill="C0", mask=[(zero_padded != 0).tolist()], dots=False)
ax.text(11.3, y + 3.7, f"padded by k−1 = {len(h) - 1}, then filtered with h = {h.tolist()}",
        va="center", fontsize=11)  # fmt: skip
draw_grid(filtered, 1, y + 4.8, fill="C3")
ax.text(0.7, y + 5.3, "y", ha="right", va="center", fontsize=12)
ax.text(10.3, y + 5.3, "= F.conv_transpose1d(x, h, stride=2): linear interpolation of x",
        va="center", fontsize=11)  # fmt: skip
ax.set_xlim(-2.9, 26.5)  # the content's extent: no empty margins on a 16:9 slide
ax.set_ylim(y + 6.0, 0.2)
ax.set_aspect("equal")
ax.axis("off")
fig.suptitle("D4 · Transposed convolution")
fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.93)

# %%
# Checks: the numbers of the notes, three ways; the 1-D identity; and the
# interpolation values.
assert transposed.tolist() == [[0, 0, 1], [0, 4, 6], [4, 12, 9]]
assert torch.equal(torch.stack(partials).sum(0), transposed)
assert torch.equal(matrix_product, transposed)
assert torch.equal(transpose_matrix, conv_matrix(kernel, (3, 3)).T)
assert torch.allclose(filtered, upsampled)
assert upsampled.tolist() == [1.0, 2.0, 3.0, 4.0, 2.5, 1.0, 2.0, 3.0, 1.5]

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
