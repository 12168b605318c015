r"""
C1 · The effect of the learning rate
====================================

*Lecture topic:* Optimisation, gradient descent (notes 000)

Plain gradient descent :math:`w_t = w_{t-1} - \eta \nabla L(w_{t-1})` on the
quadratic bowl :math:`L(w) = 3 w_1^2 + w_2^2`, run with ``torch.optim.SGD``
for three learning rates. Each coordinate is multiplied by a fixed factor per
step, :math:`1 - 6\eta` along :math:`w_1` and :math:`1 - 2\eta` along
:math:`w_2`: a tiny rate crawls, :math:`\eta = 1/4` balances both directions
(factors -1/2 and 1/2), and any :math:`\eta > 1/3` makes :math:`|1 - 6\eta| > 1`,
so the iterates zig-zag away along the steep :math:`w_1` axis.
"""

# %%
# Run gradient descent with PyTorch: autograd computes the gradient, the
# optimizer applies the update.
import matplotlib.pyplot as plt
import numpy as np
import torch

from netviz.gallery import setup

setup()


def loss_fn(w: torch.Tensor) -> torch.Tensor:
    """:math:`L(w) = 3 w_1^2 + w_2^2`."""
    return 3 * w[0] ** 2 + w[1] ** 2


def descend(lr: float, steps: int, start: tuple[float, float]) -> np.ndarray:
    """Iterates ``w_0 .. w_steps`` of ``torch.optim.SGD`` on ``loss_fn``."""
    w = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=lr)
    path = [w.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(w).backward()
        opt.step()
        path.append(w.detach().clone())
    return torch.stack(path).numpy()


start = (0.6, 2.2)
steps = 12
learning_rates = {"too small": 0.02, "good": 0.25, "too large": 0.36}
paths = {name: descend(lr, steps, start) for name, lr in learning_rates.items()}
losses = {name: 3 * p[:, 0] ** 2 + p[:, 1] ** 2 for name, p in paths.items()}
# Per-step multiplication factors of w1 and w2 (the analytic view of GD on a quadratic).
update_factors = {name: (1 - 6 * lr, 1 - 2 * lr) for name, lr in learning_rates.items()}
divergence_threshold = 2 / 6  # |1 - 6 lr| > 1  <=>  lr > 1/3

# %%
# Contours of the loss with the three paths, and the loss per step.
# A 2 x 2 grid: each contour panel gets half the height (a row of four left the
# equal-aspect contour panels a third of the figure's height).
fig, grid = plt.subplots(2, 2, figsize=(12.8, 8.0), layout="constrained")
axes = [grid[0, 0], grid[0, 1], grid[1, 0], grid[1, 1]]
for a in axes[1:3]:
    a.sharex(axes[0])
    a.sharey(axes[0])
g1, g2 = np.meshgrid(np.linspace(-5.2, 5.2, 313), np.linspace(-2.6, 2.6, 201))
surface = 3 * g1**2 + g2**2
colors = {"too small": "C0", "good": "C2", "too large": "C3"}
for ax, (name, lr) in zip(axes[:3], learning_rates.items()):
    ax.contour(g1, g2, surface, levels=[0.25, 1, 2, 4, 7, 11, 16, 22, 29], colors="0.7")
    p = paths[name]
    ax.plot(p[:, 0], p[:, 1], "o-", color=colors[name], ms=3.5, lw=1.4)
    ax.plot(*start, "ks", ms=6)
    ax.plot(0, 0, "k*", ms=10)
    f1, f2 = update_factors[name]
    ax.set_title(f"{name}: η = {lr}\nper step: w1 ×{f1:.2f}, w2 ×{f2:.2f}")
    ax.set_xlim(-4.8, 4.8)  # about fills the half-width panel at equal aspect
    ax.set_ylim(-2.6, 2.6)
    ax.set_aspect("equal")
    ax.set_xlabel("w1")
    ax.set_ylabel("w2")
ax = axes[3]
for name, lr in learning_rates.items():
    ax.semilogy(losses[name], "o-", color=colors[name], ms=3, label=f"η = {lr} ({name})")
ax.set_xlabel("step")
ax.set_ylabel("L(w)")
ax.set_title("loss per step")
ax.legend(loc="lower left")
fig.suptitle("C1 · The effect of the learning rate on L(w) = 3 w1² + w2²")

# %%
# Check: SGD reproduces the closed form w_t = (1 - 6 η)^t w1_0, (1 - 2 η)^t w2_0
# exactly, and the large rate (η > 1/3) diverges along w1 while the others converge.
t = np.arange(steps + 1)
for name, lr in learning_rates.items():
    closed = np.stack([(1 - 6 * lr) ** t * start[0], (1 - 2 * lr) ** t * start[1]], axis=1)
    np.testing.assert_allclose(paths[name], closed, rtol=1e-12, atol=1e-12)
assert learning_rates["too large"] > divergence_threshold > learning_rates["good"]
assert abs(update_factors["too large"][0]) > 1
assert np.all(np.diff(np.abs(paths["too large"][:, 0])) > 0)  # |w1| grows every step
assert losses["too large"][-1] > losses["too large"][0]
assert losses["good"][-1] < 1e-6 * losses["good"][0]
assert losses["too small"][-1] > 0.1 * losses["too small"][0]  # still far from the minimum

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
