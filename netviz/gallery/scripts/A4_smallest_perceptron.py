r"""
A4 · The world's smallest perceptron
====================================

*Lecture topic:* Gradient descent on one weight (notes 003)

The model :math:`\hat y = w x` (one weight, no bias) fitted by gradient descent
to the table of the notes: (10, 10.1), (2, 1.9), (3.5, 3.4), (1, 1.1), with
the loss :math:`L = \frac{1}{2}(y - \hat y)^2` averaged over the table. Gradient
descent reaches the least-squares weight
:math:`w^* = \sum x y / \sum x^2 = 117.8 / 117.25 \approx 1.0047`.
"""

# %%
# Training with ``torch.optim.SGD`` on a bias-free ``nn.Linear(1, 1)``.
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from netviz.gallery import pick, setup
from netviz.plot.theme import PALETTE

setup()

x = torch.tensor([[10.0], [2.0], [3.5], [1.0]], dtype=torch.float64)
y = torch.tensor([[10.1], [1.9], [3.4], [1.1]], dtype=torch.float64)
w_closed_form = float((x * y).sum() / (x * x).sum())

model = nn.Linear(1, 1, bias=False).double()
with torch.no_grad():
    model.weight.fill_(0.0)
learning_rate = 0.02
n_steps = pick(40, 40)
optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
w_history, loss_history = [model.weight.item()], []
for _ in range(n_steps):
    optimizer.zero_grad()
    loss = 0.5 * ((y - model(x)) ** 2).mean()
    loss.backward()
    optimizer.step()
    loss_history.append(loss.item())
    w_history.append(model.weight.item())
w_final = w_history[-1]
final_loss = float(0.5 * ((y - w_final * x) ** 2).mean())

# %%
# The fit, the loss curve and the path of w on the loss parabola.
fig, axes = plt.subplots(1, 3, figsize=(12.8, 4.6))
ax = axes[0]
ax.scatter(
    x.squeeze(), y.squeeze(), s=80, color=PALETTE[0], edgecolor="black", zorder=3, label="data"
)
xs = np.linspace(0, 11, 2)
ax.plot(xs, w_final * xs, color=PALETTE[1], lw=2, label=f"$\\hat y = {w_final:.4f}\\,x$")
ax.set(xlabel="$x$", ylabel="$y$", title="Data and fitted line")
ax.legend(loc="upper left")

ax = axes[1]
ax.semilogy(np.arange(n_steps), loss_history, color=PALETTE[0], lw=2)
ax.axhline(final_loss, color=PALETTE[7], ls="--", lw=1, label=f"minimum {final_loss:.4f}")
ax.set(xlabel="step", ylabel="loss $L(w)$", title="Loss curve")
ax.legend()

ax = axes[2]
ws = np.linspace(-0.1, 2.1, 300)
ls = [0.5 * float(((y - w * x) ** 2).mean()) for w in ws]
ax.plot(ws, ls, color=PALETTE[7], lw=1.5, label="$L(w)$")
path_w = np.array(w_history[:12])
path_l = [0.5 * float(((y - w * x) ** 2).mean()) for w in path_w]
ax.plot(path_w, path_l, "o-", color=PALETTE[1], ms=5, lw=1, label="gradient descent")
ax.axvline(
    w_closed_form,
    color=PALETTE[2],
    ls="--",
    lw=1.5,
    label=f"$w^* = \\sum xy / \\sum x^2 = {w_closed_form:.4f}$",
)
ax.set(xlabel="$w$", ylabel="loss", title=f"Path of $w$ (learning rate {learning_rate})")
ax.legend(fontsize=8)
fig.suptitle("A4 · The world's smallest perceptron")
fig.tight_layout()

# %%
# Gradient descent lands on the closed-form least-squares weight.
assert abs(w_closed_form - 117.8 / 117.25) < 1e-12
assert abs(w_final - w_closed_form) < 1e-9
assert loss_history[0] > 100 * loss_history[-1]

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
