r"""
A3 · The perceptron algorithm on AND, OR and XOR
================================================

*Lecture topic:* The perceptron learning rule (notes 002, 003)

Rosenblatt's rule :math:`w \leftarrow w + \eta\,(t - \hat y)\,x` (bias folded in
as a constant input 1), one sample at a time, from zero weights and a small
negative bias :math:`b = -\eta/2` (from :math:`b = 0` the final OR line
:math:`x_1 + x_2 = 0` would pass through (0, 0), classified 0 only by the strict
:math:`w \cdot x > 0`). On AND and OR, which are linearly separable, the errors
per epoch drop to zero and the weights stop changing after a few updates (the
final line thick, with the two predicted class regions shaded; earlier lines
faint); on XOR the weights cycle for ever and every epoch makes mistakes.
"""

# %%
# The rule, written with PyTorch tensors.
import matplotlib.pyplot as plt
import numpy as np
import torch

from netviz.gallery import pick, setup
from netviz.plot.theme import PALETTE

setup()

inputs = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
targets = {
    "AND": torch.tensor([0.0, 0.0, 0.0, 1.0]),
    "OR": torch.tensor([0.0, 1.0, 1.0, 1.0]),
    "XOR": torch.tensor([0.0, 1.0, 1.0, 0.0]),
}
n_epochs = pick(15, 12)
learning_rate = 0.5
initial_bias = -learning_rate / 2  # no point ends up on a final line (see the docstring)


def train_perceptron(x: torch.Tensor, t: torch.Tensor, epochs: int, lr: float):
    """Weights (w1, w2, b) after every update and the number of errors per epoch."""
    xb = torch.cat([x, torch.ones(len(x), 1)], dim=1)
    w = torch.tensor([0.0, 0.0, initial_bias])
    history, errors = [w.clone()], []
    for _ in range(epochs):
        n_err = 0
        for xi, ti in zip(xb, t):
            y = (w @ xi > 0).float()
            if y != ti:
                n_err += 1
                w = w + lr * (ti - y) * xi
            history.append(w.clone())
        errors.append(n_err)
    return torch.stack(history), errors


weight_history, errors_per_epoch = {}, {}
for name, t in targets.items():
    weight_history[name], errors_per_epoch[name] = train_perceptron(
        inputs, t, n_epochs, learning_rate
    )
final_weights = {name: h[-1] for name, h in weight_history.items()}
final_predictions = {
    name: ((inputs @ w[:2] + w[2]) > 0).float() for name, w in final_weights.items()
}
converged = {name: errs[-1] == 0 for name, errs in errors_per_epoch.items()}

# Distance of the closest point to each final line (0 would mean a point on it).
final_margin = {
    name: float(((inputs @ w[:2] + w[2]).abs() / w[:2].norm()).min())
    for name, w in final_weights.items()
}

# %%
# Top: the data, earlier decision lines (faint) and the final one (thick, with
# the predicted class regions shaded). Bottom: errors per epoch.
fig, axes = plt.subplots(
    2, 3, figsize=(12.8, 7.6), gridspec_kw={"height_ratios": [3, 2]}, layout="constrained"
)
xs = np.array([-0.5, 1.5])
grid = np.linspace(-0.5, 1.5, 201)
g1, g2 = np.meshgrid(grid, grid)


def draw_line(ax, w, **kw):
    w1, w2, b = w
    if abs(w2) > 1e-9:
        return ax.plot(xs, -(w1 * xs + b) / w2, **kw)
    if abs(w1) > 1e-9:
        return [ax.axvline(-b / w1, **kw)]
    return []


for col, (name, t) in enumerate(targets.items()):
    ax = axes[0, col]
    hist = weight_history[name].numpy()
    keep = [i for i in range(1, len(hist)) if not np.array_equal(hist[i], hist[i - 1])]
    w1, w2, b = hist[-1]
    region = (w1 * g1 + w2 * g2 + b > 0).astype(float)
    ax.contourf(
        g1, g2, region, levels=[-0.5, 0.5, 1.5], colors=[PALETTE[0], PALETTE[1]], alpha=0.15
    )
    for i in keep[:-1]:
        draw_line(ax, hist[i], color="0.45", alpha=0.35, lw=0.9)
    draw_line(ax, hist[-1], color="black", lw=3, label="final line")
    if keep[:-1]:
        ax.plot([], [], color="0.45", alpha=0.35, lw=0.9, label="earlier lines")
    for label, marker, colour in [(0.0, "o", PALETTE[0]), (1.0, "s", PALETTE[1])]:
        pts = inputs[t == label]
        ax.scatter(
            pts[:, 0],
            pts[:, 1],
            s=160,
            marker=marker,
            color=colour,
            edgecolor="black",
            zorder=3,
            label=f"target {int(label)}",
        )
    status = "converged" if converged[name] else "never converges"
    ax.set(
        xlim=(-0.5, 1.5),
        ylim=(-0.5, 1.5),
        aspect="equal",
        xlabel="$x_1$",
        ylabel="$x_2$",
        title=f"{name}: {len(keep)} updates, {status}",
    )
    if col == 0:
        ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    ax = axes[1, col]
    ax.bar(
        np.arange(1, n_epochs + 1), errors_per_epoch[name], color=PALETTE[3 if name == "XOR" else 0]
    )
    ax.set(
        xlabel="epoch",
        ylabel="errors in epoch",
        ylim=(0, 4.2),
        xticks=range(1, n_epochs + 1, 2),
        yticks=range(5),
    )
fig.suptitle(
    "A3 · The perceptron algorithm on AND, OR and XOR "
    f"(η = {learning_rate}, start w = 0, b = {initial_bias}); shading: predicted class"
)

# %%
# AND and OR are learned exactly; on XOR every epoch has at least one error.
assert converged["AND"] and converged["OR"] and not converged["XOR"]
assert final_predictions["AND"].tolist() == targets["AND"].tolist()
assert final_predictions["OR"].tolist() == targets["OR"].tolist()
assert min(errors_per_epoch["XOR"]) >= 1
assert min(final_margin["AND"], final_margin["OR"]) > 0.2  # no point on a final line

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
