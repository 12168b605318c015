r"""
A1 · XOR is not linearly separable
==================================

*Lecture topic:* Perceptrons and MLPs (notes 000, 002)

The four XOR points (0, 0) and (1, 1) in class 0, (0, 1) and (1, 0) in class 1.
Every straight line misclassifies at least one of them: sweeping all line
orientations and offsets, the best any line achieves is 3 of 4 points. That is
why a single perceptron cannot learn XOR. On the right, the best accuracy a
line of each orientation reaches, with its threshold chosen exactly (every
cut between the sorted projections of the points): 3 of 4 for every
orientation, and only 2 of 4 for lines parallel to an axis, which cannot
separate two points that project to the same value.
"""

# %%
# The data and every line orientation :math:`\cos\theta\,x_1 + \sin\theta\,x_2 = c`
# on a 0.5-degree grid, each line classifying its positive side as class 1 (the
# opposite side is the orientation theta + 180 degrees). For one orientation the
# best offset is found exactly: the points' projections are sorted, and each cut
# between two distinct projections (plus one below and one above all of them)
# is tried; points with equal projections always fall on the same side.
import matplotlib.pyplot as plt
import numpy as np
import torch

from netviz.gallery import pick, setup
from netviz.plot.theme import PALETTE

setup()

xor_x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
xor_y = torch.tensor([0, 1, 1, 0])

step = pick(0.5, 2.0)  # degrees; both grids contain 0, 90, 180 and 270 exactly
degrees = np.arange(0, 360, step)
# cos and sin with exact zeros and ones at multiples of 90 degrees (no round-off ties broken)
normals = np.round(np.stack([np.cos(np.radians(degrees)), np.sin(np.radians(degrees))], 1), 12)
proj = np.round(normals @ xor_x.numpy().astype(np.float64).T, 12)  # (angles, 4)
target = xor_y.numpy().astype(bool)


def best_cut(p: np.ndarray) -> float:
    """Best accuracy of ``p > c`` over every distinct cut ``c`` of the sorted projections."""
    v = np.unique(p)
    cuts = np.concatenate([[v[0] - 1], (v[:-1] + v[1:]) / 2, [v[-1] + 1]])
    return max(float(((p > c) == target).mean()) for c in cuts)


best_per_angle = np.array([best_cut(p) for p in proj])
best_accuracy = float(best_per_angle.max())
axis_parallel = degrees % 90 == 0

# %%
# Three of the best lines :math:`w_1 x_1 + w_2 x_2 + b = 0` (class 1 where it is positive):
# each gets exactly three points right.
example_lines = [(1.0, 1.0, -0.5), (-1.0, -1.0, 1.5), (-1.0, 1.0, -0.5)]
example_accuracy = []
for w1, w2, b in example_lines:
    p = (xor_x[:, 0] * w1 + xor_x[:, 1] * w2 + b) > 0
    example_accuracy.append(float((p == xor_y.bool()).double().mean()))

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12.8, 6.0), layout="constrained")
for label, marker, colour in [(0, "o", PALETTE[0]), (1, "s", PALETTE[1])]:
    pts = xor_x[xor_y == label]
    ax0.scatter(
        pts[:, 0],
        pts[:, 1],
        s=220,
        marker=marker,
        color=colour,
        zorder=3,
        edgecolor="black",
        label=f"class {label}",
    )
xs = np.linspace(-0.5, 1.5, 2)
for (w1, w2, b), acc, ls in zip(example_lines, example_accuracy, ["-", "--", ":"]):
    ax0.plot(
        xs,
        -(w1 * xs + b) / w2,
        ls,
        color=PALETTE[7],
        lw=2,
        label=f"${w1:+g}x_1 {w2:+g}x_2 {b:+g} = 0$: {acc:.0%} correct",
    )
ax0.set(
    xlim=(-0.5, 1.5),
    ylim=(-0.5, 1.5),
    xlabel="$x_1$",
    ylabel="$x_2$",
    aspect="equal",
    title="XOR: no line separates the classes",
)
ax0.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=2, fontsize=9)

generic = np.where(axis_parallel, np.nan, best_per_angle)  # the line breaks at the special angles
ax1.plot(degrees, generic, color=PALETTE[0], lw=2, label="best line of that orientation")
ax1.plot(
    degrees[axis_parallel],
    best_per_angle[axis_parallel],
    "o",
    color=PALETTE[0],
    ms=7,
    mfc="white",
    mew=2,
    label="axis-parallel lines (0°, 90°, 180°, 270°)",
)
ax1.axhline(1.0, color=PALETTE[3], ls="--", lw=1.5, label="needed: 100 %")
ax1.set(
    xlabel=r"line orientation $\theta$ (degrees)",
    ylabel="best accuracy over offsets",
    ylim=(0.4, 1.05),
    title="Best any line can do, per orientation",
)
ax1.set_xticks(range(0, 361, 45))
ax1.legend(loc="center", bbox_to_anchor=(0.5, 0.36), fontsize=9)
fig.suptitle("A1 · XOR is not linearly separable")

# %%
# The best line classifies three of the four points, never all four.
assert best_accuracy == 0.75
assert example_accuracy == [0.75, 0.75, 0.75]
# 3 of 4 for every orientation except the axis-parallel ones (2 of 4): no round-off dips
assert (best_per_angle[~axis_parallel] == 0.75).all()
assert (best_per_angle[axis_parallel] == 0.5).all() and axis_parallel.sum() == 4

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
