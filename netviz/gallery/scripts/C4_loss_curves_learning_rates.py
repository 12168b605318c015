r"""
C4 · Loss curves for different learning rates
=============================================

*Lecture topic:* Training a neural network, babysitting the learning process (notes 003)

The classic "plot the loss" chart, from a real run: a small tanh MLP
(64-64-10) trained with Adam on scikit-learn's digits, mini-batches of 32,
once per learning rate. A very high rate makes the loss blow up above its
starting value; a high rate drops fast and then stalls at a high plateau; a low
rate decreases slowly and almost linearly; a good rate keeps going down. The
loss shown is the cross-entropy on the full training set, every 5 steps.
"""

# %%
# Train the same network (same initial weights, same batches) once per rate.
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
steps = pick(300, 150)
batch_size = 32
eval_every = 5
learning_rates = {"very high": 1.0, "high": 0.3, "low": 3e-4, "good": 1e-2}


def train(lr: float) -> np.ndarray:
    """Full-data loss at step 0 and every ``eval_every`` steps of Adam at rate ``lr``."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    batches = torch.Generator().manual_seed(1)
    curve = []
    for step in range(steps + 1):
        if step % eval_every == 0:
            with torch.no_grad():
                curve.append(nn.functional.cross_entropy(net(x_all), y_all).item())
        if step == steps:
            break
        idx = torch.randint(0, len(x_all), (batch_size,), generator=batches)
        loss = nn.functional.cross_entropy(net(x_all[idx]), y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return np.array(curve)


loss_curves = {name: train(lr) for name, lr in learning_rates.items()}
eval_steps = np.arange(0, steps + 1, eval_every)
initial_loss = loss_curves["good"][0]  # same initial weights for every run

# %%
# The four curves (log scale: the very high rate leaves the range of the others).
fig, ax = plt.subplots(figsize=(12.8, 5.4))
colors = {"very high": "C3", "high": "C1", "low": "C0", "good": "C2"}
# End-of-curve labels, pushed apart (in decades) where two curves end close together.
order = sorted(learning_rates, key=lambda n: loss_curves[n][-1])
label_y: dict[str, float] = {}
for name in order:
    y = np.log10(loss_curves[name][-1])
    if label_y:
        y = max(y, max(label_y.values()) + 0.14)
    label_y[name] = y
for name, lr in learning_rates.items():
    ax.semilogy(
        eval_steps, loss_curves[name], color=colors[name], lw=2, label=f"{name} (η = {lr:g})"
    )
    ax.annotate(
        f"{name} learning rate",
        (eval_steps[-1] + steps * 0.01, 10 ** label_y[name]),
        color=colors[name],
        va="center",
    )
ax.axhline(initial_loss, color="0.5", lw=1, ls=":", zorder=1)
# The reference line's label goes where no curve crosses the band just above the
# line (the first such stretch from 15 % of the run on; the label spans ~40 %).
band = (initial_loss * 1.02, initial_loss * 1.6)
label_span = int(0.4 * len(eval_steps))


def clear(i: int) -> bool:
    window = np.stack([c[i : i + label_span + 1] for c in loss_curves.values()])
    return bool(((window < band[0]) | (window > band[1])).all())


label_at = next(
    i for i in range(int(0.15 * len(eval_steps)), len(eval_steps) - label_span) if clear(i)
)
ax.annotate(
    "loss at initialisation (ln 10 ≈ 2.3)",
    (eval_steps[label_at], initial_loss * 1.08),
    color="0.4",
    va="bottom",
)
ax.set_xlim(0, steps * 1.18)
ax.set_xlabel("training step (mini-batches of 32)")
ax.set_ylabel("cross-entropy on the training set")
ax.legend(loc="lower left")
fig.suptitle("C4 · Loss curves for different learning rates (Adam, tanh MLP on digits)")
fig.tight_layout()

# %%
# Checks: the loss starts at about ln 10 (ten balanced classes); the very high
# rate ends above it; the high rate plateaus far above the good one; the low
# rate is still decreasing and above the good one.
assert abs(initial_loss - np.log(10)) < 0.1
final = {name: curve[-1] for name, curve in loss_curves.items()}
assert final["very high"] > initial_loss
assert final["high"] > 4 * final["good"]
assert final["good"] < final["low"] < initial_loss
assert final["good"] == min(final.values())

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
