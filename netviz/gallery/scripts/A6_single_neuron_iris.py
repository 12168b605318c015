r"""
A6 · A single neuron on two Iris features
=========================================

*Lecture topic:* What can you do with a single neuron? (notes 001)

Logistic regression is one neuron: a sigmoid applied to a linear function,
:math:`\hat y = \sigma(w \cdot x + b)`. Trained with the cross-entropy loss on
two standardised features of Fisher's Iris data (petal length and width,
versicolor vs virginica), it draws a straight decision line (the 0.5 contour)
and graded probabilities on either side.
"""

# %%
# Data: scikit-learn's bundled Iris, classes 1 and 2, petal length and width.
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_iris
from torch import nn

from netviz.gallery import pick, setup
from netviz.plot.theme import CMAP_DIVERGING, PALETTE

setup()

iris = load_iris()
keep = iris.target > 0
features = iris.data[keep][:, 2:4]  # petal length, petal width (cm)
labels = (iris.target[keep] == 2).astype(np.float64)  # 1 = virginica
mean, std = features.mean(axis=0), features.std(axis=0)
x = torch.tensor((features - mean) / std)
y = torch.tensor(labels)

# %%
# One neuron, trained with L-BFGS to the minimum of the mean cross-entropy.
neuron = nn.Linear(2, 1).double()
optimizer = torch.optim.LBFGS(
    neuron.parameters(),
    lr=1.0,
    max_iter=pick(200, 200),
    tolerance_grad=1e-12,
    tolerance_change=1e-15,
    line_search_fn="strong_wolfe",
)
loss_curve: list[float] = []


def closure():
    optimizer.zero_grad()
    loss = nn.functional.binary_cross_entropy_with_logits(neuron(x).squeeze(1), y)
    loss.backward()
    loss_curve.append(loss.item())
    return loss


optimizer.step(closure)
weights = neuron.weight.detach().squeeze(0).numpy().copy()
bias = float(neuron.bias.detach())
with torch.no_grad():
    prob = torch.sigmoid(neuron(x).squeeze(1))
accuracy = float(((prob > 0.5).double() == y).double().mean())
final_loss = loss_curve[-1]

# %%
# Probability map in the original units, the decision line, and the loss.
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12.8, 5.2), gridspec_kw={"width_ratios": [3, 2]})
g1 = np.linspace(2.8, 7.2, 300)
g2 = np.linspace(0.8, 2.7, 300)
G1, G2 = np.meshgrid(g1, g2)
z = ((G1 - mean[0]) / std[0]) * weights[0] + ((G2 - mean[1]) / std[1]) * weights[1] + bias
P = 1 / (1 + np.exp(-z))
cf = ax0.contourf(G1, G2, P, levels=np.linspace(0, 1, 11), cmap=CMAP_DIVERGING, alpha=0.5)
ax0.contour(G1, G2, P, levels=[0.5], colors="black", linewidths=2)
fig.colorbar(cf, ax=ax0, label=r"$\hat y = \sigma(w \cdot x + b)$ = P(virginica)")
rng = np.random.default_rng(0)
jitter = rng.uniform(-0.03, 0.03, size=features.shape)  # Iris values repeat; jitter to see them
for label, name, marker, colour in [
    (0, "versicolor", "o", PALETTE[0]),
    (1, "virginica", "s", PALETTE[1]),
]:
    sel = labels == label
    ax0.scatter(
        features[sel, 0] + jitter[sel, 0],
        features[sel, 1] + jitter[sel, 1],
        s=30,
        marker=marker,
        color=colour,
        edgecolor="black",
        linewidth=0.5,
        label=name,
    )
ax0.set(
    xlabel="petal length (cm)",
    ylabel="petal width (cm)",
    title=f"Decision line (accuracy {accuracy:.0%})",
)
ax0.legend(loc="upper left")
ax1.plot(np.arange(1, len(loss_curve) + 1), loss_curve, color=PALETTE[0], lw=2)
ax1.set(
    xlabel="L-BFGS function evaluation",
    ylabel="mean cross-entropy",
    xscale="log",
    title="Training loss",
)
fig.suptitle("A6 · A single neuron on two Iris features")
fig.tight_layout()

# %%
# A single neuron separates the two species well (not perfectly: they overlap).
assert 0.9 < accuracy < 1.0
assert final_loss < 0.25

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
