r"""
A5 · Classifying circles with 2, 3 and 10 hidden units
======================================================

*Lecture topic:* The hidden layer and decision boundaries (notes 000)

One hidden layer of ReLU units and a sigmoid output, trained on concentric
circles (scikit-learn's ``make_circles``). Each hidden unit :math:`j` is a line
:math:`w_j \cdot x + b_j = 0` in the input plane (drawn in grey); the output
combines the half-planes. Two lines can only cut out a band; three already
enclose a closed region around the inner circle, and ten give a rounder one.
"""

# %%
# Data and training (Adam, full batch).
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import make_circles
from torch import nn

from netviz.gallery import pick, setup
from netviz.plot.theme import CMAP_DIVERGING, PALETTE

setup()

x_np, y_np = make_circles(n_samples=300, noise=0.08, factor=0.5, random_state=0)
x = torch.tensor(x_np, dtype=torch.float32)
y = torch.tensor(y_np, dtype=torch.float32)
hidden_sizes = (2, 3, 10)
n_steps = pick(600, 300)

models, accuracy, loss_curves = {}, {}, {}
for h in hidden_sizes:
    torch.manual_seed(h)  # each width from its own fixed seed
    model = nn.Sequential(nn.Linear(2, h), nn.ReLU(), nn.Linear(h, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    curve = []
    for _ in range(n_steps):
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(1), y)
        loss.backward()
        opt.step()
        curve.append(loss.item())
    with torch.no_grad():
        accuracy[h] = float(((model(x).squeeze(1) > 0).float() == y).float().mean())
    models[h], loss_curves[h] = model, curve

# %%
# Decision regions, data, and every hidden unit's line.
g = np.linspace(-1.5, 1.5, 301)
gx1, gx2 = np.meshgrid(g, g)
grid = torch.tensor(np.stack([gx1.ravel(), gx2.ravel()], axis=1), dtype=torch.float32)
fig, axes = plt.subplots(1, 3, figsize=(12.8, 4.9))
hidden_lines = {}
for ax, h in zip(axes, hidden_sizes):
    model = models[h]
    with torch.no_grad():
        prob = torch.sigmoid(model(grid)).reshape(gx1.shape).numpy()
    ax.contourf(gx1, gx2, prob, levels=np.linspace(0, 1, 11), cmap=CMAP_DIVERGING, alpha=0.45)
    ax.contour(gx1, gx2, prob, levels=[0.5], colors="black", linewidths=2)
    ax.plot([], [], color="black", lw=2, label="decision boundary (p = 0.5)")
    for label, colour in [(0, PALETTE[0]), (1, PALETTE[1])]:
        sel = y_np == label
        ax.scatter(
            x_np[sel, 0], x_np[sel, 1], s=8, color=colour, edgecolor="none", label=f"class {label}"
        )
    w = model[0].get_parameter("weight").detach().numpy()
    b = model[0].get_parameter("bias").detach().numpy()
    hidden_lines[h] = np.concatenate([w, b[:, None]], axis=1)
    for j, ((w1, w2), bj) in enumerate(zip(w, b)):
        key = {"label": "a hidden unit's line $w_j \\cdot x + b_j = 0$"} if j == 0 else {}
        if abs(w2) > abs(w1):
            ax.plot(g, -(w1 * g + bj) / w2, color="0.3", lw=1, ls="--", **key)
        else:
            ax.plot(-(w2 * g + bj) / w1, g, color="0.3", lw=1, ls="--", **key)
    ax.set(
        xlim=(-1.5, 1.5),
        ylim=(-1.5, 1.5),
        aspect="equal",
        xlabel="$x_1$",
        ylabel="$x_2$",
        title=f"{h} hidden units: accuracy {accuracy[h]:.0%}",
    )
fig.suptitle("A5 · Classifying circles with 2, 3 and 10 hidden units")
fig.legend(
    *axes[0].get_legend_handles_labels(), loc="lower center", ncols=4, fontsize=10, markerscale=2
)
fig.tight_layout(rect=(0, 0.07, 1, 1))

# %%
# Two ReLU lines cannot enclose the inner circle; three and ten units can.
assert all(hidden_lines[h].shape == (h, 3) for h in hidden_sizes)
assert accuracy[2] < 0.9
assert accuracy[3] > 0.95 and accuracy[10] > 0.95

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
