r"""
A7 · Networks as space transforms
=================================

*Lecture topic:* Networks as space transforms (notes 004)

Each layer of a network is an affine map followed by a squashing
nonlinearity: it moves, stretches and folds the space. A small MLP with three
``tanh`` layers of width 2, trained on the two moons, keeps every
representation two-dimensional so we can watch it: a regular grid and the data
points are carried through the layers until, after the last hidden layer, a
straight line (the output unit) separates the classes.
"""

# %%
# Data (scikit-learn's ``make_moons``, standardised) and the network.
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import make_moons
from torch import nn

from netviz.gallery import pick, setup
from netviz.plot.theme import PALETTE

setup()

x_np, y_np = make_moons(n_samples=200, noise=0.05, random_state=0)
x = torch.tensor(x_np, dtype=torch.float32)
x = (x - x.mean(0)) / x.std(0)
y = torch.tensor(y_np, dtype=torch.float32)

torch.manual_seed(1)
hidden = nn.ModuleList(nn.Sequential(nn.Linear(2, 2), nn.Tanh()) for _ in range(3))
readout = nn.Linear(2, 1)
model = nn.Sequential(*hidden, readout)
optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
n_steps = pick(600, 400)
for _ in range(n_steps):
    optimizer.zero_grad()
    loss = nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(1), y)
    loss.backward()
    optimizer.step()
with torch.no_grad():
    accuracy = float(((model(x).squeeze(1) > 0).float() == y).float().mean())

# %%
# Carry the points and a grid through the layers.
lim = 2.5
ticks = np.linspace(-lim, lim, 21)
dense = np.linspace(-lim, lim, 200)
grid_lines = [np.stack([np.full_like(dense, t), dense], 1) for t in ticks]
grid_lines += [np.stack([dense, np.full_like(dense, t)], 1) for t in ticks]
grid = torch.tensor(np.concatenate(grid_lines), dtype=torch.float32)

representations = [(x, grid)]  # (points, grid points) after each layer
with torch.no_grad():
    pts, grd = x, grid
    for layer in hidden:
        pts, grd = layer(pts), layer(grd)
        representations.append((pts, grd))
last_points = representations[-1][0]
readout_w = readout.weight.detach().squeeze(0).numpy()
readout_b = float(readout.bias.detach())

fig, axes = plt.subplots(1, 4, figsize=(12.8, 3.9))
titles = ["input space", "after layer 1", "after layer 2", "after layer 3"]
n_per_line = len(dense)
for k, (ax, (p, grid_points), title) in enumerate(zip(axes, representations, titles)):
    gpts = grid_points.numpy().reshape(len(grid_lines), n_per_line, 2)
    for line in gpts:
        ax.plot(line[:, 0], line[:, 1], color="0.75", lw=0.5)
    for label, colour in [(0, PALETTE[0]), (1, PALETTE[1])]:
        sel = y_np == label
        ax.scatter(p[sel, 0], p[sel, 1], s=6, color=colour, zorder=3)
    if k == 3:
        s = np.linspace(-1.05, 1.05, 2)
        if abs(readout_w[1]) > abs(readout_w[0]):
            ax.plot(s, -(readout_w[0] * s + readout_b) / readout_w[1], color=PALETTE[3], lw=2)
        else:
            ax.plot(-(readout_w[1] * s + readout_b) / readout_w[0], s, color=PALETTE[3], lw=2)
        ax.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05))
    elif k > 0:
        ax.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05))
    else:
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim))
    ax.set(aspect="equal", title=title, xticks=[], yticks=[])
axes[3].set_title(f"after layer 3: a line separates\n(accuracy {accuracy:.0%})")
fig.suptitle("A7 · Networks as space transforms")
fig.tight_layout()

# %%
# After three warps the two moons are linearly separable: the output line
# classifies every training point correctly.
side = last_points.numpy() @ readout_w + readout_b > 0
assert accuracy == 1.0
assert (side == (y_np == 1)).all()

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
