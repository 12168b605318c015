r"""
B3 · The activation zoo and its derivatives
===========================================

*Lecture topic:* Nonlinearity functions, which one to choose? (notes 000, 001, 002)

Sigmoid, tanh, ReLU, leaky ReLU, ELU, GELU and softplus from ``torch.nn``,
with their derivatives from autograd. Saturating functions (sigmoid, tanh)
have derivatives that vanish for large :math:`|z|`; the sigmoid's never exceeds
1/4. On the right, the same deep, narrow network (4 hidden layers of 8 units,
same initial weights, SGD with momentum) trained on XOR with each activation:
the sigmoid net (and the softplus net, whose derivative is a sigmoid) stays on
the plateau at the chance loss :math:`\ln 2`, while the ReLU family gets to a
near-zero loss. Tanh, though saturating, trains fine here: its derivative is 1
at 0 (four times the sigmoid's) and it is centred on 0, so four layers do not
shrink the gradient enough to stall it.
"""

# %%
# The activations and their derivatives (autograd).
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from netviz.gallery import pick, setup
from netviz.plot.theme import PALETTE

setup()

activations = {
    "sigmoid": nn.Sigmoid(),
    "tanh": nn.Tanh(),
    "ReLU": nn.ReLU(),
    "leaky ReLU": nn.LeakyReLU(0.1),
    "ELU": nn.ELU(),
    "GELU": nn.GELU(),
    "softplus": nn.Softplus(),
}
z = (torch.arange(-400, 401, dtype=torch.float64) / 100).requires_grad_()  # exact 0 in the grid
values, derivatives = {}, {}
for name, act in activations.items():
    out = act(z)
    (d,) = torch.autograd.grad(out.sum(), z)
    values[name], derivatives[name] = out.detach().numpy(), d.numpy()

# %%
# XOR with a deep narrow net per activation: full-batch SGD from the same seed.
xor_x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
xor_y = torch.tensor([0.0, 1.0, 1.0, 0.0])
n_steps = pick(600, 600)
loss_curves, final_loss = {}, {}
for name, act in activations.items():
    torch.manual_seed(0)
    layers, width = [], 8
    for i in range(4):
        layers += [nn.Linear(2 if i == 0 else width, width), act]
    net = nn.Sequential(*layers, nn.Linear(width, 1))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    curve = []
    for _ in range(n_steps):
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(net(xor_x).squeeze(1), xor_y)
        loss.backward()
        opt.step()
        curve.append(loss.item())
    loss_curves[name], final_loss[name] = np.array(curve), curve[-1]

fig, axes = plt.subplots(1, 3, figsize=(12.8, 4.8))
zz = z.detach().numpy()
colours = dict(zip(activations, PALETTE))
stuck = [name for name in activations if final_loss[name] > 0.69]  # on the plateau
# Curves that lie on top of each other: the later ones dashed and thinner, so both show.
loss_style = {name: {"lw": 1.5, "ls": "-"} for name in activations}
loss_style["softplus"] = {"lw": 3.5, "ls": "-"}
loss_style["sigmoid"] = {"lw": 1.6, "ls": (0, (4, 2))}
for name in activations:
    axes[0].plot(zz, values[name], color=colours[name], lw=1.8, label=name)
    axes[1].plot(zz, derivatives[name], color=colours[name], lw=1.8, label=name)
order = ["softplus", *[n for n in activations if n != "softplus"]]  # sigmoid drawn over softplus
for name in order:
    axes[2].plot(
        np.arange(1, n_steps + 1),
        loss_curves[name],
        color=colours[name],
        label=name,
        zorder=3,
        **loss_style[name],
    )
axes[0].set(xlabel="$z$", ylabel="$f(z)$", ylim=(-1.5, 4), title="Activation functions")
axes[0].legend(fontsize=8, loc="upper left")
axes[1].set(xlabel="$z$", ylabel="$f'(z)$", ylim=(-0.2, 1.2), title="Derivatives (autograd)")
axes[2].axhline(math.log(2), color="0.6", ls=":", lw=1, zorder=1)  # under the curves
axes[2].annotate(
    " and ".join(stuck) + r": stuck at chance, $\ln 2$",
    xy=(n_steps * 0.75, math.log(2)),
    xytext=(n_steps * 0.62, 3.0),
    ha="center",
    fontsize=9,
    arrowprops={"arrowstyle": "->", "color": "0.3", "lw": 0.8},
)
axes[2].set(
    xlabel="SGD step",
    ylabel="training loss",
    yscale="log",
    ylim=(5e-5, 10),
    title="XOR, 4 hidden layers of 8 units",
)
axes[2].legend(fontsize=8, loc="lower left")
fig.suptitle("B3 · The activation zoo and its derivatives")
fig.tight_layout()

# %%
# Known derivative values: sigma'(0) = 1/4, tanh'(0) = 1, ReLU' = 1 for z > 0,
# leaky ReLU' = 0.1 for z < 0, ELU'(z) = e^z for z < 0, softplus' = sigma.
i0 = int(np.argmin(np.abs(zz)))
assert zz[i0] == 0.0
assert abs(derivatives["sigmoid"][i0] - 0.25) < 1e-12
assert abs(derivatives["tanh"][i0] - 1.0) < 1e-12
assert (derivatives["ReLU"][zz > 0] == 1).all() and (derivatives["ReLU"][zz < 0] == 0).all()
assert np.allclose(derivatives["leaky ReLU"][zz < 0], 0.1)
assert np.allclose(derivatives["ELU"][zz < 0], np.exp(zz[zz < 0]))
assert np.allclose(derivatives["softplus"], 1 / (1 + np.exp(-zz)))
assert derivatives["sigmoid"].max() <= 0.25

# %%
# On XOR the sigmoid net never leaves the plateau; ReLU, leaky ReLU and ELU do.
assert final_loss["sigmoid"] > 0.69
assert stuck == ["sigmoid", "softplus"], stuck  # what the annotation and the docstring say
assert final_loss["tanh"] < 0.01  # "tanh trains fine here"
assert max(final_loss["ReLU"], final_loss["leaky ReLU"], final_loss["ELU"]) < 0.01

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
