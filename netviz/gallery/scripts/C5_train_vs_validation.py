r"""
C5 · Underfitting, overfitting and their remedies
=================================================

*Lecture topic:* Bias-variance trade-off, regularization (notes 001, 002, 003)

Training and validation loss per epoch for the three columns of the notes'
bias-variance table, from real runs on a deliberately small problem: 150
digits for training, a quarter of them with a random (wrong) label, and 500
clean digits for validation. A linear model with a strong L2 penalty
underfits (both losses high, no gap); a small regularised MLP fits about
right; a large MLP memorises the training set, noisy labels included, and its
validation loss climbs after a few dozen epochs (overfitting). Weight decay
(the :math:`\frac{\lambda_2}{2}\|\omega\|^2` penalty of the notes) and dropout
are the remedies shown on the bottom row.
"""

# %%
# Data: a small training set with 25 % label noise makes overfitting quick.
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from netviz.gallery import pick, setup

setup()

features, labels = load_digits(return_X_y=True)
x_all = torch.tensor(features / 16.0, dtype=torch.float32)
y_all = torch.tensor(labels)
order = torch.randperm(len(x_all), generator=torch.Generator().manual_seed(0))
n_train, n_val, label_noise = 150, 500, 0.25
train_idx, val_idx = order[:n_train], order[n_train : n_train + n_val]
x_train, x_val, y_val = x_all[train_idx], x_all[val_idx], y_all[val_idx]
y_train = y_all[train_idx].clone()
noise_gen = torch.Generator().manual_seed(1)
relabel = torch.rand(n_train, generator=noise_gen) < label_noise
y_train[relabel] = torch.randint(0, 10, (int(relabel.sum()),), generator=noise_gen)
epochs = pick(200, 100)


def big_mlp(p_drop: float = 0.0) -> nn.Module:
    """64-64-64-10 ReLU MLP, optionally with dropout after each hidden layer."""
    return nn.Sequential(
        nn.Linear(64, 64), nn.ReLU(), nn.Dropout(p_drop),
        nn.Linear(64, 64), nn.ReLU(), nn.Dropout(p_drop),
        nn.Linear(64, 10),
    )  # fmt: skip


# name -> (model factory, weight decay λ2, learning rate)
configs = {
    "underfitting": (lambda: nn.Linear(64, 10), 0.1, 1e-2),
    "just right": (
        lambda: nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10)),
        0.01,
        1e-2,
    ),
    "overfitting": (big_mlp, 0.0, 3e-3),
    "+ weight decay": (big_mlp, 0.02, 3e-3),
    "+ dropout": (lambda: big_mlp(0.5), 0.0, 3e-3),
}
descriptions = {
    "underfitting": "linear model, λ2 = 0.1",
    "just right": "MLP 64-16-10, λ2 = 0.01",
    "overfitting": "MLP 64-64-64-10, no regularization",
    "+ weight decay": "same MLP, λ2 = 0.02",
    "+ dropout": "same MLP, dropout p = 0.5",
}


def train(make, weight_decay: float, lr: float) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation loss after every full-batch Adam epoch (eval mode)."""
    torch.manual_seed(0)
    net = make()
    # Adam's weight_decay adds λ2·w to the gradient: the L2 penalty (λ2/2)||w||² of the notes.
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    train_curve, val_curve = [], []
    for _ in range(epochs):
        net.train()
        loss = nn.functional.cross_entropy(net(x_train), y_train)
        opt.zero_grad()
        loss.backward()
        opt.step()
        net.eval()
        with torch.no_grad():
            train_curve.append(nn.functional.cross_entropy(net(x_train), y_train).item())
            val_curve.append(nn.functional.cross_entropy(net(x_val), y_val).item())
    return np.array(train_curve), np.array(val_curve)


curves = {name: train(*cfg) for name, cfg in configs.items()}
train_loss = {name: c[0] for name, c in curves.items()}
val_loss = {name: c[1] for name, c in curves.items()}

# %%
# The notes' table as curves (top), the remedies for overfitting (bottom).
fig, axes = plt.subplots(2, 3, figsize=(12.8, 7.2), sharey=False)
panels = [*configs]
ep = np.arange(1, epochs + 1)
for ax, name in zip(axes.flat, panels):
    ax.plot(ep, train_loss[name], color="C0", lw=2, label="training")
    ax.plot(ep, val_loss[name], color="C3", lw=2, label="validation")
    best = int(np.argmin(val_loss[name]))
    ax.plot(ep[best], val_loss[name][best], "o", color="C3", ms=5, label="lowest validation loss")
    ax.set_title(f"{name}\n{descriptions[name]}")
    ax.set_ylim(0, 2.6)
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
axes[0, 0].legend(loc="lower left")
ax = axes[1, 2]
pos = np.arange(len(panels))
ax.bar(pos - 0.2, [train_loss[n][-1] for n in panels], 0.4, color="C0", label="training")
ax.bar(pos + 0.2, [val_loss[n][-1] for n in panels], 0.4, color="C3", label="validation")
ax.set_xticks(pos, ["under", "right", "over", "+ L2", "+ drop"])
ax.set_xlabel("setting (the five panels)")
ax.set_ylabel("loss after the last epoch")
ax.set_title("final losses: big gap = overfitting")
ax.legend(loc="upper right")
fig.suptitle(f"C5 · Training vs validation loss ({n_train} training digits, 25 % noisy labels)")
fig.tight_layout()

# %%
# Checks (the notes' symptoms). Underfitting: high training loss, close to the
# validation loss. Overfitting: training loss near zero, validation loss well
# above its best value. Both remedies end with a lower validation loss.
final_train = {n: c[-1] for n, c in train_loss.items()}
final_val = {n: c[-1] for n, c in val_loss.items()}
assert final_train["underfitting"] > 1.0
assert abs(final_val["underfitting"] - final_train["underfitting"]) < 0.15
assert final_train["overfitting"] < 0.15
assert final_val["overfitting"] > 1.3 * val_loss["overfitting"].min()
assert final_val["+ weight decay"] < final_val["overfitting"]
assert final_val["+ dropout"] < final_val["overfitting"]
assert final_val["just right"] < min(final_val["underfitting"], final_val["overfitting"])

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
