"""
E3 · Self-attention as a matrix
===============================

*Lecture topic:* Self-attention (notes 000)

Self-attention outputs are weighted sums of the values: output row ``i`` is
``sum_j a_ij v_j``, i.e. the matrix product ``A @ V``. With the exact toy
attention matrix of the lecture (rows ``[0,0,1,0]``, ``[0,0,.5,.5]``,
``[0,1,0,0]``, ``[1,0,0,0]``) the four outputs are ``v3``, ``(v3+v4)/2``,
``v2`` and ``v1``: a one-hot row copies one value, a split row averages.
"""

# %%
# The attention matrix of the notes and four value vectors (rows of ``V``).
# The values are small integer vectors so that the products are easy to read.
import matplotlib.pyplot as plt
import torch

from netviz.gallery import setup
from netviz.plot.theme import CMAP_DIVERGING, CMAP_SEQUENTIAL

setup()

attention = torch.tensor(
    [
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.5, 0.5],
        [0.0, 1.0, 0.0, 0.0],
        [1.0, 0.0, 0.0, 0.0],
    ]
)
values = torch.tensor(
    [
        [1.0, 0.0, 2.0],  # v1
        [0.0, 3.0, -1.0],  # v2
        [2.0, 2.0, 0.0],  # v3
        [-2.0, 0.0, 4.0],  # v4
    ]
)

# %%
# The outputs are one matrix product.
outputs = attention @ values
expected_outputs = torch.stack([values[2], (values[2] + values[3]) / 2, values[1], values[0]])
output_labels = ["$v_3$", "$(v_3+v_4)/2$", "$v_2$", "$v_1$"]

# %%
# Draw ``outputs = A @ V`` as three annotated heatmaps.
fig, axes = plt.subplots(
    1, 3, figsize=(12.8, 7.2 * 0.6), gridspec_kw={"width_ratios": [4, 3, 3], "wspace": 0.45}
)
vlim = float(values.abs().max())
panels = [
    (attention, "attention $A$ (rows sum to 1)", CMAP_SEQUENTIAL, 0.0, 1.0),
    (values, "values $V$", CMAP_DIVERGING, -vlim, vlim),
    (outputs, "outputs $A\\,V$", CMAP_DIVERGING, -vlim, vlim),
]
for ax, (mat, title, cmap, vmin, vmax) in zip(axes, panels):
    ax.imshow(mat.numpy(), cmap=cmap, vmin=vmin, vmax=vmax)
    for i, row in enumerate(mat.tolist()):
        for j, val in enumerate(row):
            shade = (val - vmin) / (vmax - vmin)
            dark = shade < 0.6 if cmap == CMAP_SEQUENTIAL else abs(shade - 0.5) > 0.35
            colour = "white" if dark else "black"
            ax.text(j, i, f"{val:g}", ha="center", va="center", fontsize=14, color=colour)
    ax.set_title(title)
    ax.set_xticks(range(mat.shape[1]))
    ax.set_yticks(range(4))
    ax.tick_params(length=0, labelsize=11)
    for side in ("top", "right"):
        ax.spines[side].set_visible(True)
axes[0].set_xticklabels(["$v_1$", "$v_2$", "$v_3$", "$v_4$"])
axes[0].set_yticklabels([f"output {i}" for i in range(1, 5)])
axes[0].set_xlabel("attends to")
axes[1].set_xticklabels(["dim 1", "dim 2", "dim 3"])
axes[1].set_yticklabels(["$v_1$", "$v_2$", "$v_3$", "$v_4$"])
axes[2].set_xticklabels(["dim 1", "dim 2", "dim 3"])
axes[2].set_yticklabels(output_labels)
fig.text(0.385, 0.5, "$\\times$", fontsize=28, ha="center", va="center")
fig.text(0.66, 0.5, "$=$", fontsize=28, ha="center", va="center")
fig.suptitle("E3 · Self-attention as a matrix: each output is a weighted sum of the values")

# %%
# Check the numbers the notes give: the outputs are v3, (v3+v4)/2, v2, v1,
# and every attention row sums to one.
assert torch.equal(outputs, expected_outputs)
assert torch.equal(attention.sum(dim=1), torch.ones(4))

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
