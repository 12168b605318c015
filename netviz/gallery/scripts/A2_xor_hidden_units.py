r"""
A2 · XOR solved by two hidden threshold units
=============================================

*Lecture topic:* Perceptrons and MLPs, the hidden layer (notes 000)

The exact network of the notes, with the step function :math:`u(z) = [z > 0]`:
:math:`h_1 = u(x_1 + x_2 - 0.5)`, :math:`h_2 = u(-x_1 - x_2 + 1.5)`,
:math:`y = u(h_1 + h_2 - 1.5)`. Each hidden unit draws one line in the input
plane; in the hidden plane :math:`(h_1, h_2)` the two classes become linearly
separable, and the output unit's line finishes the job.
"""

# %%
# The network, built from ``nn.Linear`` layers with the weights of the notes.
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from netviz.gallery import setup
from netviz.plot.theme import CMAP_DIVERGING, PALETTE

setup()


def step(z: torch.Tensor) -> torch.Tensor:
    """Heaviside step u(z) = 1 if z > 0 else 0."""
    return (z > 0).to(z.dtype)


hidden_layer = nn.Linear(2, 2)
output_layer = nn.Linear(2, 1)
with torch.no_grad():
    hidden_layer.weight.copy_(torch.tensor([[1.0, 1.0], [-1.0, -1.0]]))
    hidden_layer.bias.copy_(torch.tensor([-0.5, 1.5]))
    output_layer.weight.copy_(torch.tensor([[1.0, 1.0]]))
    output_layer.bias.copy_(torch.tensor([-1.5]))

xor_x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
xor_y = torch.tensor([0.0, 1.0, 1.0, 0.0])
with torch.no_grad():
    hidden = step(hidden_layer(xor_x))  # (4, 2): the points in the hidden plane
    outputs = step(output_layer(hidden)).squeeze(1)

    # The output region over the input plane.
    g = np.linspace(-0.5, 1.5, 401)
    gx1, gx2 = np.meshgrid(g, g)
    grid = torch.tensor(np.stack([gx1.ravel(), gx2.ravel()], axis=1), dtype=torch.float32)
    region = step(output_layer(step(hidden_layer(grid)))).reshape(gx1.shape).numpy()

# %%
# Three panels: the input plane with both hidden lines, the hidden plane with
# the output line, and the output region.
fig, axes = plt.subplots(1, 3, figsize=(12.8, 5.4))
markers = {0.0: ("o", PALETTE[0]), 1.0: ("s", PALETTE[1])}
xs = np.array([-0.5, 1.5])


def scatter(ax, pts, labels, annotate=None):
    for label, (marker, colour) in markers.items():
        sel = labels == label
        ax.scatter(
            pts[sel, 0],
            pts[sel, 1],
            s=200,
            marker=marker,
            color=colour,
            zorder=3,
            edgecolor="black",
            label=f"class {int(label)}",
        )
    if annotate is not None:
        # (0,1) and (1,0) land on the same hidden point: label one above, one below.
        offsets = [(10, -16), (-4, 14), (10, -18), (10, -16)]
        for p, text, offset in zip(pts, annotate, offsets):
            ax.annotate(
                text,
                (float(p[0]), float(p[1])),
                xytext=offset,
                textcoords="offset points",
                fontsize=9,
            )


ax = axes[0]
scatter(ax, xor_x.numpy(), xor_y.numpy())
ax.plot(xs, 0.5 - xs, color=PALETTE[2], lw=2, label="$h_1$: $x_1 + x_2 = 0.5$")
ax.plot(xs, 1.5 - xs, color=PALETTE[4], lw=2, ls="--", label="$h_2$: $x_1 + x_2 = 1.5$")
ax.set(
    xlim=(-0.5, 1.5),
    ylim=(-0.5, 1.5),
    aspect="equal",
    xlabel="$x_1$",
    ylabel="$x_2$",
    title="Input plane: one line per hidden unit",
)
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8)

ax = axes[1]
labels_text = [f"({int(a)},{int(b)})" for a, b in xor_x.tolist()]
jitter = torch.tensor(
    [[0.0, 0.0], [-0.04, 0.04], [0.04, -0.04], [0.0, 0.0]]
)  # (0,1) and (1,0) coincide
scatter(ax, (hidden + jitter).numpy(), xor_y.numpy(), annotate=["x=" + t for t in labels_text])
ax.plot(xs, 1.5 - xs, color=PALETTE[3], lw=2, label="output: $h_1 + h_2 = 1.5$")
ax.set(
    xlim=(-0.5, 1.5),
    ylim=(-0.5, 1.5),
    aspect="equal",
    xlabel="$h_1$",
    ylabel="$h_2$",
    title="Hidden plane: now linearly separable",
)
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8)

ax = axes[2]
ax.contourf(gx1, gx2, region, levels=[-0.5, 0.5, 1.5], cmap=CMAP_DIVERGING, alpha=0.35)
scatter(ax, xor_x.numpy(), xor_y.numpy())
ax.plot(xs, 0.5 - xs, color=PALETTE[2], lw=1, alpha=0.7)
ax.plot(xs, 1.5 - xs, color=PALETTE[4], lw=1, ls="--", alpha=0.7)
ax.set(
    xlim=(-0.5, 1.5),
    ylim=(-0.5, 1.5),
    aspect="equal",
    xlabel="$x_1$",
    ylabel="$x_2$",
    title="Output $y$: class 1 in the band",
)
fig.suptitle("A2 · XOR solved by two hidden threshold units")
fig.tight_layout(rect=(0, 0.1, 1, 1))  # room for the legends below the axes

# %%
# The network computes XOR exactly, through the hidden codes given in the notes.
assert outputs.tolist() == [0.0, 1.0, 1.0, 0.0]
assert hidden.tolist() == [[0.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 0.0]]

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
