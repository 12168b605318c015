r"""
D3 · Convolution as a matrix product
====================================

*Lecture topic:* Convolutional networks, convolutions as matrix multiplications (notes 002)

The worked example of the notes: the 4x4 input ``x`` cross-correlated with
the 3x3 kernel ``u`` gives ``[[122, 148], [126, 134]]``. A convolution is
linear in its input, so it is one matrix product: the kernel is laid out as a
sparse, Toeplitz-structured 4x16 matrix :math:`U`, one row per output cell,
each row holding the kernel at the columns of that cell's 3x3 window of the
row-by-row flattened input. :math:`U` comes from
``netviz.layermath.conv_matrix`` and the product from ``F.conv2d``; they
agree. (The notes print :math:`U` wrapped over 15 columns, with a spurious
fifth row; the matrix has 4 rows of 16.)
"""

# %%
# The convolution matrix from netviz, the product, and PyTorch's conv2d.
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle

from netviz.gallery import setup
from netviz.layermath import conv_matrix

setup()

x = torch.tensor([[4, 5, 8, 7], [1, 8, 8, 8], [3, 6, 6, 4], [6, 5, 7, 8]], dtype=torch.float32)
u = torch.tensor([[1, 4, 1], [1, 4, 3], [3, 3, 1]], dtype=torch.float32)
toeplitz = conv_matrix(u, (4, 4))  # U, shape (4, 16)
x_flat = x.flatten()  # row by row, top to bottom
toeplitz_product = toeplitz @ x_flat  # v(x) = U x
conv_result = F.conv2d(x[None, None], u[None, None])[0, 0]  # PyTorch's "convolution"

# %%
# Draw U · vec(x) = v (left) and x ⋆ u = y (right), with each output cell and
# its row of U in the same colour.
fig, ax = plt.subplots(figsize=(12.8, 7.2))
row_colors = ["C0", "C1", "C2", "C4"]


def draw_grid(values, x0, y0, fills=None, fontsize=11, label=None):
    """Draw a matrix of numbers with its top-left corner at (x0, y0), one unit per cell."""
    values = np.asarray(values)
    for (r, c), v in np.ndenumerate(values):
        fill = fills[r][c] if fills is not None else "white"
        ax.add_patch(Rectangle((x0 + c, y0 + r), 1, 1, fc=fill, ec="0.45", lw=0.8))
        zero = v == 0 and fills is not None and fill == "white"
        ax.text(x0 + c + 0.5, y0 + r + 0.5, f"{v:g}", ha="center", va="center",
                fontsize=fontsize, color="0.7" if zero else "black")  # fmt: skip
    if label:
        ax.text(x0 + values.shape[1] / 2, y0 - 0.25, label, ha="center", va="bottom", fontsize=11)


def tint(color):
    """``color`` at 35 % opacity on white, as an RGB tuple."""
    from matplotlib.colors import to_rgb

    return tuple(0.35 * c + 0.65 for c in to_rgb(color))


U = toeplitz.numpy()
# Left: U · vec(x) = U vec(x), centred on the tall vec(x). Right: x ⋆ u, and the
# explanation below it (a layout as wide as a 16:9 slide, no empty margins).
top = 6.5  # first row of U, so that U's 4 rows sit in the middle of vec(x)
u_fills = [[tint(row_colors[r]) if U[r, c] != 0 else "white" for c in range(16)] for r in range(4)]
draw_grid(U, 0, top, fills=u_fills, fontsize=10, label="U = conv_matrix(u, (4, 4))   (4 × 16)")
for c in range(16):  # column labels: which input cell each column multiplies
    ax.text(c + 0.5, top + 4.3, f"x{c // 4}{c % 4}", ha="center", va="top", fontsize=9, color="0.4")
ax.text(16.6, top + 2, "·", ha="center", va="center", fontsize=26)
draw_grid(x_flat.numpy()[:, None], 17.2, 0.5, fontsize=10, label="vec(x)")
ax.text(19.0, top + 2, "=", ha="center", va="center", fontsize=20)
v_fills = [[tint(row_colors[r])] for r in range(4)]
draw_grid(toeplitz_product.numpy()[:, None], 19.7, top, fills=v_fills, label="U vec(x)")
left = 22.5
draw_grid(x.numpy(), left, 2, label="x")
ax.text(left + 4.75, 4, "⋆", ha="center", va="center", fontsize=34)
draw_grid(u.numpy(), left + 5.5, 2.5, label="u")
ax.text(left + 9.25, 4, "=", ha="center", va="center", fontsize=20)
y_fills = [[tint(row_colors[2 * r + c]) for c in range(2)] for r in range(2)]
draw_grid(conv_result.numpy(), left + 10, 3, fills=y_fills, label="x ⋆ u\n(F.conv2d)")
ax.text(
    left, 9.0,
    "Row i of U is the kernel u laid over output\n"
    "cell i's 3×3 window of the flattened input:\n"
    "shifted copies of the same 9 numbers, zeros\n"
    f"elsewhere ({int((U != 0).sum())} of {U.size} entries non-zero). Each output\n"
    "cell and its row of U share a colour.",
    fontsize=11, va="top",
)  # fmt: skip
ax.set_xlim(-0.3, left + 12.6)
ax.set_ylim(16.8, 0.0)
ax.set_aspect("equal")
ax.axis("off")
fig.suptitle("D3 · Convolution as a matrix product")
fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.93)

# %%
# Checks: the numbers of the notes, the first 15 entries of each row of U as
# the notes print them, and U x equal to PyTorch's conv2d.
assert conv_result.tolist() == [[122, 148], [126, 134]]
assert toeplitz_product.tolist() == [122, 148, 126, 134]
notes_rows = [
    [1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1, 0, 0, 0, 0],
    [0, 1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1, 0, 0, 0],
    [0, 0, 0, 0, 1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1],
    [0, 0, 0, 0, 0, 1, 4, 1, 0, 1, 4, 3, 0, 3, 3],
]
assert toeplitz[:, :15].tolist() == notes_rows
assert toeplitz.shape == (4, 16)
assert torch.equal(toeplitz_product.reshape(2, 2), conv_result)

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
