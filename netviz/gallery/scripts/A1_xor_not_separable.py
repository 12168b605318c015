r"""
A1 · XOR is not linearly separable
==================================

*Lecture topic:* Perceptrons and MLPs (notes 000, 002)

The four XOR points (0, 0) and (1, 1) in class 0, (0, 1) and (1, 0) in class 1.
Every straight line misclassifies at least one of them: sweeping all line
orientations and offsets, the best any line achieves is 3 of 4 points. That is
why a single perceptron cannot learn XOR.
"""

# %%
# The data and a dense sweep over lines :math:`\cos\theta\,x_1 + \sin\theta\,x_2 = c`,
# each line classifying its positive side as class 1 (both sides are tried).
import matplotlib.pyplot as plt
import numpy as np
import torch

from netviz.gallery import pick, setup
from netviz.plot._style import PALETTE

setup()

xor_x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
xor_y = torch.tensor([0, 1, 1, 0])

n_angles = pick(720, 180)
angles = torch.linspace(0, 2 * np.pi, n_angles + 1, dtype=torch.float64)[:-1]
offsets = torch.linspace(-1.6, 1.6, 321, dtype=torch.float64)
normals = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)  # (A, 2)
proj = normals @ xor_x.double().T  # (A, 4)
pred = proj[:, None, :] > offsets[None, :, None]  # (A, C, 4): positive side = class 1
accuracy = (pred == xor_y.bool()).double().mean(dim=2)  # (A, C)
best_per_angle = accuracy.max(dim=1).values.numpy()
best_accuracy = float(accuracy.max())

# %%
# Three of the best lines :math:`w_1 x_1 + w_2 x_2 + b = 0` (class 1 where it is positive):
# each gets exactly three points right.
example_lines = [(1.0, 1.0, -0.5), (-1.0, -1.0, 1.5), (-1.0, 1.0, -0.5)]
example_accuracy = []
for w1, w2, b in example_lines:
    p = (xor_x[:, 0] * w1 + xor_x[:, 1] * w2 + b) > 0
    example_accuracy.append(float((p == xor_y.bool()).double().mean()))

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12.8, 5.4))
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
ax0.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))

ax1.plot(np.degrees(angles.numpy()), best_per_angle, color=PALETTE[0], lw=2)
ax1.axhline(1.0, color=PALETTE[3], ls="--", lw=1.5, label="needed: 100 %")
ax1.set(
    xlabel=r"line orientation $\theta$ (degrees)",
    ylabel="best accuracy over offsets",
    ylim=(0.4, 1.05),
    title="Best any line can do, per orientation",
)
ax1.set_xticks(range(0, 361, 45))
ax1.legend(loc="lower right")
fig.suptitle("A1 · XOR is not linearly separable")
fig.tight_layout()

# %%
# The best line classifies three of the four points, never all four.
assert best_accuracy == 0.75
assert example_accuracy == [0.75, 0.75, 0.75]
