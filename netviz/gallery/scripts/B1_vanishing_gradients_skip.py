r"""
B1 · Vanishing gradients in a deep MLP, and skip connections
============================================================

*Lecture topic:* Going deeper: vanishing gradients and skip connections (notes 000)

The notes' experiment: concentric circles, 7 layers (6 hidden layers of 3
sigmoid units and an output unit). Trained with SGD, the plain network does
not get past a trivial, near-linear boundary: the gradients that reach the
lower layers are orders of magnitude smaller than at the top, so the lower
layers are barely updated. The exact same network with skip connections
(:math:`h_{l+1} = h_l + \sigma(W_l h_l + b_l)`) passes the gradient through the
identity paths and learns the circle. Gradient norms per layer are recorded at
every step with ``netviz.watch(probes="grad_norm")``. One change from the
notes, stated in the title: the notes' net has a leaky-ReLU output layer; here
the hidden units are sigmoids and the output unit is linear (a logit), the
setting in which the gradient visibly vanishes.
"""

# %%
# Data and the two networks (same initial weights).
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import make_circles
from torch import nn

import netviz
from netviz.gallery import pick, setup
from netviz.plot.theme import CMAP_DIVERGING, PALETTE

setup()

x_np, y_np = make_circles(n_samples=300, noise=0.08, factor=0.5, random_state=0)
x = torch.tensor(x_np, dtype=torch.float32)
y = torch.tensor(y_np, dtype=torch.float32)


class DeepMLP(nn.Module):
    """6 hidden sigmoid layers of ``width`` units and a linear output unit (7 layers)."""

    def __init__(self, skip: bool, width: int = 3, depth: int = 6):
        super().__init__()
        self.skip = skip
        self.hidden = nn.ModuleList(
            [nn.Linear(2, width)] + [nn.Linear(width, width) for _ in range(depth - 1)]
        )
        self.out = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.sigmoid(self.hidden[0](x))
        for layer in self.hidden[1:]:
            z = torch.sigmoid(layer(h))
            h = h + z if self.skip else z  # the skip connection
        return self.out(h).squeeze(-1)  # logit; the sigmoid is in the loss


# %%
# Train both with SGD (momentum 0.9), recording every Linear layer's gradient
# norm at every step.
n_steps = pick(600, 400)
models, records, accuracy, loss_curves = {}, {}, {}, {}
for name, skip in [("plain", False), ("skip connections", True)]:
    torch.manual_seed(0)  # identical initial weights for both
    model = DeepMLP(skip)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9)
    curve = []
    with netviz.watch(model, probes="grad_norm", modules=nn.Linear, optimizer=optimizer) as monitor:
        for _ in range(n_steps):
            optimizer.zero_grad()
            loss = nn.functional.binary_cross_entropy_with_logits(model(x), y)
            loss.backward()
            optimizer.step()
            curve.append(loss.item())
    with torch.no_grad():
        accuracy[name] = float(((model(x) > 0).float() == y).float().mean())
    models[name], records[name], loss_curves[name] = model, monitor.to_pandas(), curve

# Per step: gradient norm of the first hidden layer over that of the output
# layer, median over the first ``early`` steps (before the plain net settles
# into its trivial solution, where every gradient is tiny).
early = 50
layer_order = [f"hidden.{i}" for i in range(6)] + ["out"]
early_records = {name: r[r.step < early] for name, r in records.items()}
grad_table = {
    name: r.pivot_table(index="step", columns="module", values="value")[layer_order]
    for name, r in early_records.items()
}
grad_ratio = {name: float((t["hidden.0"] / t["out"]).median()) for name, t in grad_table.items()}

# %%
# Decision boundaries, and the distribution over training steps of each
# layer's gradient norm (``netviz.plot.gradient_flow``).
fig = plt.figure(figsize=(12.8, 5.0))
gs = fig.add_gridspec(1, 3, width_ratios=[1, 1, 1.5])
g = np.linspace(-1.5, 1.5, 201)
gx1, gx2 = np.meshgrid(g, g)
grid = torch.tensor(np.stack([gx1.ravel(), gx2.ravel()], axis=1), dtype=torch.float32)
for k, name in enumerate(models):
    ax = fig.add_subplot(gs[0, k])
    with torch.no_grad():
        prob = torch.sigmoid(models[name](grid)).reshape(gx1.shape).numpy()
    ax.contourf(gx1, gx2, prob, levels=np.linspace(0, 1, 11), cmap=CMAP_DIVERGING, alpha=0.45)
    if prob.min() < 0.5 < prob.max():
        ax.contour(gx1, gx2, prob, levels=[0.5], colors="black", linewidths=2)
    for label, colour in [(0, PALETTE[0]), (1, PALETTE[1])]:
        sel = y_np == label
        ax.scatter(x_np[sel, 0], x_np[sel, 1], s=6, color=colour)
    ax.set(
        xlim=(-1.5, 1.5),
        ylim=(-1.5, 1.5),
        aspect="equal",
        xlabel="$x_1$",
        ylabel="$x_2$",
        title=f"{name}: accuracy {accuracy[name]:.0%}",
    )
ax = fig.add_subplot(gs[0, 2])
netviz.plot.gradient_flow(
    early_records["plain"],
    ax=ax,
    label="plain",
    compare={"skip connections": early_records["skip connections"]},
)
ax.set_title(f"gradient norm per layer, first {early} steps")
fig.suptitle(
    "B1 · Vanishing gradients in a deep MLP, and skip connections "
    "(sigmoid units, linear output; the notes: leaky-ReLU output)"
)
fig.tight_layout()

# %%
# Without skips the first layer gets a gradient orders of magnitude smaller
# (relative to the output layer) than with them, from the first steps on, and the plain net does not
# learn the circle.
assert grad_ratio["plain"] < grad_ratio["skip connections"] / 100
assert accuracy["plain"] < 0.7 < 0.95 < accuracy["skip connections"]

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
