r"""
D5 · Checkerboard artefacts of transposed convolutions
======================================================

*Lecture topic:* Convolutional networks, upsampling (notes 002, after Odena et al., Distill 2016)

Upsample a constant image by 2. A stride-2 transposed convolution with a 3x3
kernel of ones (top left) adds overlapping kernel copies: where two or four
copies overlap the output is larger, so even a constant input comes out as a
checkerboard. A 4x4 kernel, divisible by the stride, overlaps evenly (top
middle). Resize-then-convolve (nearest-neighbour upsampling, then a stride-1
3x3 convolution, top right) is constant away from the border: no artefacts,
which is why the notes' networks with resize-convolution layers show none.
Bottom: the middle row of each output, and the same transposed convolution
with random (untrained) weights.
"""

# %%
# Three ways of upsampling a constant 6x6 image.
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from netviz.gallery import setup
from netviz.layermath import conv_transpose_output_size

setup()

constant = torch.ones(1, 1, 6, 6)
ones3, ones4 = torch.ones(1, 1, 3, 3), torch.ones(1, 1, 4, 4)
deconv3 = F.conv_transpose2d(constant, ones3, stride=2)[0, 0]  # 13x13
deconv4 = F.conv_transpose2d(constant, ones4, stride=2)[0, 0]  # 14x14
resized = F.interpolate(constant, scale_factor=2, mode="nearest")
resize_conv = F.conv2d(resized, ones3, padding=1)[0, 0]  # 12x12
# The same geometry with random weights, as in an untrained generator.
random_deconv = nn.ConvTranspose2d(1, 1, 3, stride=2, bias=False)
with torch.no_grad():
    random_deconv.weight.abs_()  # positive weights: the overlap pattern is not hidden by signs
    random_out = random_deconv(constant)[0, 0]


def interior(img: torch.Tensor, border: int) -> torch.Tensor:
    """``img`` without ``border`` cells on each side."""
    return img[border:-border, border:-border]


# %%
# Outputs as images (shared colour scale per image), middle-row profiles.
fig, axes = plt.subplots(2, 3, figsize=(12.8, 7.2))
panels = [
    (deconv3, "transposed conv, k=3, s=2\n(kernel of ones)"),
    (deconv4, "transposed conv, k=4, s=2\n(kernel of ones)"),
    (resize_conv, "nearest resize ×2, then 3×3 conv\n(kernel of ones)"),
]
for ax, (img, title) in zip(axes[0], panels):
    im = ax.imshow(img.numpy(), cmap="viridis", vmin=0, vmax=float(img.max()))
    levels = sorted(set(img.flatten().tolist()))
    fig.colorbar(im, ax=ax, ticks=levels, shrink=0.85, label="output value")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
ax = axes[1, 0]
for img, (title, style) in zip(
    [deconv3, deconv4, resize_conv],
    [("transposed k=3", "o-"), ("transposed k=4", "s-"), ("resize-conv", "^-")],
):
    mid = img.shape[0] // 2
    row = img[mid]
    ax.plot(row.numpy() / row.max().item(), style, ms=4, label=title)
ax.set_xlabel("column")
ax.set_ylabel("middle row / its maximum")
ax.set_title("middle rows: only k=3, s=2 oscillates")
ax.set_ylim(0, 1.1)
ax.legend(loc="lower center", fontsize=9)
ax = axes[1, 1]
im = ax.imshow(random_out.detach().numpy(), cmap="viridis")
fig.colorbar(im, ax=ax, shrink=0.85, label="output value")
ax.set_title("transposed conv k=3, s=2,\nrandom positive weights")
ax.set_xticks([])
ax.set_yticks([])
ax = axes[1, 2]
# How many kernel copies cover each output cell (1-D): the cause of the pattern.
coverage = F.conv_transpose1d(torch.ones(1, 1, 6), torch.ones(1, 1, 3), stride=2)[0, 0]
ax.bar(
    np.arange(len(coverage)), coverage.numpy(), color=["C3" if v > 1 else "C0" for v in coverage]
)
for i in range(6):  # the six kernel copies, one per input cell, 2 apart
    level = 2.35 + 0.25 * (i % 2)
    ax.plot([2 * i - 0.35, 2 * i + 2.35], [level, level], color="0.3", lw=3)
ax.text(12.6, 2.5, "kernel\ncopies", va="center", fontsize=9)
ax.set_xlabel("output position")
ax.set_ylabel("kernel copies covering the cell")
ax.set_title("1-D overlap for k=3, s=2: 1, 2, 1, 2, ...")
ax.set_ylim(0, 2.9)
ax.set_xlim(-0.8, 14.5)
fig.suptitle("D5 · Checkerboard artefacts: transposed convolution vs resize-convolution")
fig.tight_layout()

# %%
# Checks: k=3, s=2 turns a constant into unequal values (1, 2, 4 in the
# interior); k=4, s=2 and resize-then-convolve are constant in the interior.
assert conv_transpose_output_size(6, 3, stride=2) == deconv3.shape[-1] == 13
assert conv_transpose_output_size(6, 4, stride=2) == deconv4.shape[-1] == 14
inner3 = interior(deconv3, 2)
assert sorted(set(inner3.flatten().tolist())) == [1.0, 2.0, 4.0]
assert torch.all(interior(deconv4, 2) == 4)
assert torch.all(interior(resize_conv, 1) == 9)
assert coverage.tolist() == [1, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 1]
assert interior(random_out, 2).std() > 0.1 * interior(random_out, 2).mean()

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
