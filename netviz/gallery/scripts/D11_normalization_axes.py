"""
D11 · Normalisation axes: batch, layer, instance and group norm
===============================================================

*Lecture topic:* Batch, instance and layer normalisation (notes 002)

The four normalisations differ only in which elements of an ``(N, C, H, W)``
tensor share one mean and variance. Batch norm averages over ``(N, H, W)``
for every channel, layer norm over ``(C, H, W)`` for every sample, instance
norm over ``(H, W)`` for every sample and channel, and group norm over
``(H, W)`` and a group of channels. The groups drawn here are not typed in:
they are measured on PyTorch's own modules by changing one input element and
seeing which outputs move (those normalised with the same statistics).
"""

# %%
# Perturb one element of a random (N, C, H, W) tensor and record which output
# elements change. The changed set is the element's normalisation group.
import matplotlib.pyplot as plt
import torch
from torch import nn

from netviz.gallery import setup
from netviz.plot.theme import PALETTE

setup()

N, C, H, W = 6, 6, 2, 2
n_groups = 3
x = torch.randn(N, C, H, W, dtype=torch.float64)
probe = (0, 0, 1, 1)  # (n, c, h, w) of the element we change (on the visible faces)

modules = {
    "Batch norm": nn.BatchNorm2d(
        C, affine=False, dtype=torch.float64
    ),  # train mode: batch statistics
    "Layer norm": nn.LayerNorm([C, H, W], elementwise_affine=False, dtype=torch.float64),
    "Instance norm": nn.InstanceNorm2d(C, dtype=torch.float64),
    "Group norm": nn.GroupNorm(n_groups, C, affine=False, dtype=torch.float64),
}


def shared_statistics(module: nn.Module) -> torch.Tensor:
    """Boolean (N, C, H, W): outputs that change when x[probe] changes."""
    bumped = x.clone()
    bumped[probe] += 1.0
    with torch.no_grad():
        return (module(bumped) - module(x)).abs() > 1e-9


groups = {name: shared_statistics(m) for name, m in modules.items()}

# A dimension is averaged over when the group spans all of it.
dim_names = ("N", "C", "H", "W")
reduced_dims = {
    name: tuple(
        d
        for i, d in enumerate(dim_names)
        if int(g.any(dim=[j for j in range(4) if j != i]).sum()) > 1
    )
    for name, g in groups.items()
}

# %%
# Draw each group as filled cubes in an N x C x (H*W) block, like Wu & He's
# group-norm figure. The changed element is the darker cube.
fig = plt.figure(figsize=(12.8, 7.2 * 0.6))
# Fixed margins: constrained layout does not see the 3-D axis labels (H·W was cut off).
fig.subplots_adjust(left=0.0, right=0.965, bottom=0.1, top=0.84, wspace=0.08)
for k, (name, group) in enumerate(groups.items()):
    ax = fig.add_subplot(1, 4, k + 1, projection="3d")
    block = group.reshape(N, C, H * W)
    filled = torch.ones_like(block).numpy()
    colours = torch.zeros(N, C, H * W, 4)
    colours[:] = torch.tensor([0.85, 0.85, 0.85, 0.12])
    colours[block] = torch.tensor(
        [*[int(PALETTE[0][i : i + 2], 16) / 255 for i in (1, 3, 5)], 0.85]
    )
    pn, pc, ph, pw = probe
    colours[pn, pc, ph * W + pw] = torch.tensor(
        [*[int(PALETTE[3][i : i + 2], 16) / 255 for i in (1, 3, 5)], 1.0]
    )
    ax.voxels(filled, facecolors=colours.numpy(), edgecolor=(0.3, 0.3, 0.3, 0.3), linewidth=0.4)
    ax.set_box_aspect((N, C, H * W), zoom=0.95)
    ax.view_init(elev=22, azim=-55)
    ax.set_xlabel("N (batch)", labelpad=-10)
    ax.set_ylabel("C (channels)", labelpad=-10)
    ax.set_zlabel("H·W", labelpad=-12)
    ax.set_xticklabels([])
    ax.set_yticklabels([])
    ax.set_zticklabels([])
    span = int(group.any(dim=(0, 2, 3)).sum())
    dims = [f"C ({span} of {C})" if d == "C" and span < C else d for d in reduced_dims[name]]
    ax.set_title(f"{name}\nmean over {', '.join(dims)}", fontsize=12)
fig.suptitle("D11 · Which elements share one mean and variance, measured on torch.nn modules")
fig.text(
    0.5,
    0.025,
    f"orange: the element changed; blue: every output that moved with it  (N = C = {N}, "
    f"H = W = {H}, group norm with {n_groups} groups)",
    ha="center",
    fontsize=11,
)

# %%
# Checks: the measured groups are exactly the lecture's reduction sets.
nn_, cc, hh, ww = torch.meshgrid(*(torch.arange(s) for s in (N, C, H, W)), indexing="ij")
pn, pc, _, _ = probe
expected = {
    "Batch norm": cc == pc,
    "Layer norm": nn_ == pn,
    "Instance norm": (nn_ == pn) & (cc == pc),
    "Group norm": (nn_ == pn) & (cc // (C // n_groups) == pc // (C // n_groups)),
}
for name in groups:
    assert torch.equal(groups[name], expected[name]), name
assert reduced_dims == {
    "Batch norm": ("N", "H", "W"),
    "Layer norm": ("C", "H", "W"),
    "Instance norm": ("H", "W"),
    "Group norm": ("C", "H", "W"),  # C only within the group: see the group-size check
}
assert int(groups["Group norm"].any(dim=(0, 2, 3)).sum()) == C // n_groups
# The statistics are those of the lecture's formulas, e.g. batch norm (57)-(58):
mu = x.mean(dim=(0, 2, 3), keepdim=True)
var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
assert torch.allclose(modules["Batch norm"](x), (x - mu) / torch.sqrt(var + 1e-5))

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
