r"""
A3 · The perceptron algorithm on AND, OR and XOR
================================================

*Lecture topic:* The perceptron learning rule (notes 002, 003)

Rosenblatt's rule :math:`w \leftarrow w + \eta\,(t - \hat y)\,x` (bias folded in
as a constant input 1), one sample at a time, from zero weights. On AND and
OR, which are linearly separable, the errors per epoch drop to zero and the
weights stop changing after a few updates; on XOR the weights cycle for ever
and every epoch makes mistakes.
"""

# %%
# The rule, written with PyTorch tensors.
import matplotlib.pyplot as plt
import numpy as np
import torch

from netviz.gallery import pick, setup
from netviz.plot._style import PALETTE

setup()

inputs = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
targets = {
    "AND": torch.tensor([0.0, 0.0, 0.0, 1.0]),
    "OR": torch.tensor([0.0, 1.0, 1.0, 1.0]),
    "XOR": torch.tensor([0.0, 1.0, 1.0, 0.0]),
}
n_epochs = pick(15, 12)
learning_rate = 0.5


def train_perceptron(x: torch.Tensor, t: torch.Tensor, epochs: int, lr: float):
    """Weights (w1, w2, b) after every update and the number of errors per epoch."""
    xb = torch.cat([x, torch.ones(len(x), 1)], dim=1)
    w = torch.zeros(3)
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

# %%
# Top: the data and the decision line after every update (light to dark).
# Bottom: errors per epoch.
fig, axes = plt.subplots(2, 3, figsize=(12.8, 7.2), gridspec_kw={"height_ratios": [3, 2]})
xs = np.array([-0.5, 1.5])
for col, (name, t) in enumerate(targets.items()):
    ax = axes[0, col]
    hist = weight_history[name].numpy()
    keep = [i for i in range(1, len(hist)) if not np.array_equal(hist[i], hist[i - 1])]
    for k, i in enumerate(keep):
        w1, w2, b = hist[i]
        shade = 0.15 + 0.85 * (k + 1) / len(keep)
        if abs(w2) > 1e-9:
            ax.plot(xs, -(w1 * xs + b) / w2, color=PALETTE[2], alpha=shade, lw=1.2)
        elif abs(w1) > 1e-9:
            ax.axvline(-b / w1, color=PALETTE[2], alpha=shade, lw=1.2)
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
        ax.legend(loc="upper left", fontsize=8)
    ax = axes[1, col]
    ax.bar(
        np.arange(1, n_epochs + 1), errors_per_epoch[name], color=PALETTE[3 if name == "XOR" else 0]
    )
    ax.set(
        xlabel="epoch", ylabel="errors in epoch", ylim=(0, 4.2), xticks=range(1, n_epochs + 1, 2)
    )
fig.suptitle("A3 · The perceptron algorithm on AND, OR and XOR")
fig.tight_layout()

# %%
# AND and OR are learned exactly; on XOR every epoch has at least one error.
assert converged["AND"] and converged["OR"] and not converged["XOR"]
assert final_predictions["AND"].tolist() == targets["AND"].tolist()
assert final_predictions["OR"].tolist() == targets["OR"].tolist()
assert min(errors_per_epoch["XOR"]) >= 1
