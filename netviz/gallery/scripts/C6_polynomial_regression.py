r"""
C6 · Polynomial regression and the ridge solution
=================================================

*Lecture topic:* Linear regression, non-linear features, regularization (notes 002)

Bishop's example: ten points :math:`t = \sin(2\pi x) + \epsilon`,
:math:`\epsilon \sim \mathcal{N}(0, 0.3^2)`, fitted by polynomials
:math:`f(\omega, x) = \sum_{j=0}^{M} \omega_j x^j` of degree M = 0, 1, 3, 9 with
the least-squares solution :math:`\omega_{ML} = (X^T X)^{-1} X^T t`. M = 9 has
as many weights as points: it passes through every point (zero training
error), with huge weights, and oscillates wildly between them. The ridge
solution :math:`\omega = (\lambda I + X^T X)^{-1} X^T t` with
:math:`\ln \lambda = -18` keeps the degree but tames the weights. Right:
training and test RMS error against M.
"""

# %%
# Data and fits, in float64 with torch.linalg.
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from netviz.gallery import setup

setup()

n_points, noise_std = 10, 0.3
# One fixed noise draw (seed 5); like Bishop's, it makes the M = 9 oscillations obvious.
gen = torch.Generator().manual_seed(5)
x_train = torch.linspace(0, 1, n_points, dtype=torch.float64)
t_train = torch.sin(2 * math.pi * x_train) + noise_std * torch.randn(
    n_points, generator=gen, dtype=torch.float64
)
x_test = torch.rand(100, generator=gen, dtype=torch.float64)
t_test = torch.sin(2 * math.pi * x_test) + noise_std * torch.randn(
    100, generator=gen, dtype=torch.float64
)
x_plot = torch.linspace(0, 1, 400, dtype=torch.float64)


def design(x: torch.Tensor, degree: int) -> torch.Tensor:
    """Design matrix with columns :math:`x^0, x^1, ..., x^M`."""
    return x[:, None] ** torch.arange(degree + 1, dtype=torch.float64)


def least_squares(degree: int) -> torch.Tensor:
    """:math:`\\omega_{ML}`, via a QR-based solver (X^T X itself is badly conditioned for M = 9)."""
    return torch.linalg.lstsq(design(x_train, degree), t_train[:, None]).solution[:, 0]


def ridge(degree: int, lam: float) -> torch.Tensor:
    """:math:`(\\lambda I + X^T X)^{-1} X^T t`, the formula of the notes."""
    X = design(x_train, degree)
    A = lam * torch.eye(degree + 1, dtype=torch.float64) + X.T @ X
    return torch.linalg.solve(A, X.T @ t_train)


def rms(w: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> float:
    """:math:`E_{RMS} = \\sqrt{2 E(w) / N}` with :math:`E = \\frac12 \\sum (f(x_n) - t_n)^2`."""
    return torch.sqrt(torch.mean((design(x, len(w) - 1) @ w - t) ** 2)).item()


degrees = [0, 1, 3, 9]
weights = {m: least_squares(m) for m in degrees}
ridge_log_lambda = -18
ridge_lambda = math.exp(ridge_log_lambda)
ridge_weights = ridge(9, ridge_lambda)
all_degrees = list(range(10))
train_rms = [rms(least_squares(m), x_train, t_train) for m in all_degrees]
test_rms = [rms(least_squares(m), x_test, t_test) for m in all_degrees]

# %%
# The four fits, the ridge fit, and the error curves.
fig, axes = plt.subplots(2, 3, figsize=(12.8, 7.2))
panels = [(f"M = {m}", weights[m]) for m in degrees]
panels.append((f"M = 9, ridge ln λ = {ridge_log_lambda}", ridge_weights))
for ax, (title, w) in zip(axes.flat, panels):
    ax.plot(x_plot, torch.sin(2 * math.pi * x_plot), color="C2", lw=2, label="sin(2πx)")
    ax.plot(x_plot, design(x_plot, len(w) - 1) @ w, color="C3", lw=2, label="fit")
    ax.plot(x_train, t_train, "o", mfc="none", mec="C0", mew=2, ms=8, label="data")
    ax.set_ylim(-1.6, 1.6)
    ax.set_title(f"{title}   (max |ω| = {w.abs().max().item():.3g})")
    ax.set_xlabel("x")
    ax.set_ylabel("t")
axes[0, 0].legend(loc="lower left")
ax = axes[1, 2]
ax.plot(all_degrees, train_rms, "o-", color="C0", label="training")
ax.plot(all_degrees, test_rms, "o-", color="C3", label="test (100 new points)")
ax.set_xlabel("degree M")
ax.set_ylabel("RMS error")
ax.set_ylim(0, 1.2)
ax.set_title("error against model complexity")
ax.legend(loc="upper left")
fig.suptitle("C6 · Polynomial regression of degree M and the ridge solution")
fig.tight_layout()

# %%
# Checks: M = 9 interpolates the 10 points (training error ~ 0) with huge
# weights; the ridge formula agrees with an independent solver (the augmented
# least-squares problem [X; sqrt(λ) I] ω = [t; 0]) and shrinks the weights.
assert train_rms[9] < 1e-6
assert torch.allclose(design(x_train, 9) @ weights[9], t_train, atol=1e-6)
X9 = design(x_train, 9)
augmented = torch.cat([X9, math.sqrt(ridge_lambda) * torch.eye(10, dtype=torch.float64)])
reference = torch.linalg.lstsq(
    augmented, torch.cat([t_train, torch.zeros(10, dtype=torch.float64)])[:, None]
)
torch.testing.assert_close(ridge_weights, reference.solution[:, 0], rtol=1e-5, atol=1e-6)
assert weights[9].abs().max() > 1e5 and ridge_weights.abs().max() < 1e3
assert np.all(np.diff(train_rms) <= 1e-9)  # more degrees never fit the training set worse
assert test_rms[9] > 2 * test_rms[3]  # ... but M = 9 generalises far worse than M = 3
assert rms(ridge_weights, x_test, t_test) < 0.5 * test_rms[9]

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
