r"""
C7 · Double descent
===================

*Lecture topic:* Beyond the bias-variance trade-off (notes 001)

Random-feature regression: :math:`n = 40` noisy training points in
:math:`\mathbb{R}^{4}`, features :math:`\phi(x) = \mathrm{ReLU}(Wx + b)` with a
fixed random :math:`W` of :math:`p` rows and random biases, and the minimum-norm least-squares
fit :math:`w = \Phi^{+} t` (pseudo-inverse). As :math:`p` grows the test error
first follows the classical U, then peaks where the model can just interpolate
the training set (:math:`p = n`), then descends again: with more features than
points, the minimum-norm interpolant gets smoother. The weight norm (right)
explains the peak: interpolating with exactly :math:`n` features needs huge
weights.
"""

# %%
# Many random-feature models, averaged over independent draws of data and features.
import matplotlib.pyplot as plt
import numpy as np
import torch

from netviz.gallery import pick, setup

setup()

n_train, n_test, dim, noise_std = 40, 500, 4, 0.1
feature_counts = np.unique(np.round(np.geomspace(2, 800, pick(28, 16))).astype(int))
feature_counts = np.union1d(feature_counts, [n_train])  # include the threshold itself
n_trials = pick(20, 8)
gen = torch.Generator().manual_seed(0)


def target(x: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """A smooth non-linear teacher: :math:`\\tanh(2 x \\beta) + 0.5 \\sin(3 x \\beta)`."""
    z = x @ beta
    return torch.tanh(2 * z) + 0.5 * torch.sin(3 * z)


test_err = np.zeros((n_trials, len(feature_counts)))
train_err = np.zeros_like(test_err)
weight_norm = np.zeros_like(test_err)
for trial in range(n_trials):
    beta = torch.randn(dim, generator=gen, dtype=torch.float64) / dim**0.5
    x_tr = torch.randn(n_train, dim, generator=gen, dtype=torch.float64)
    x_te = torch.randn(n_test, dim, generator=gen, dtype=torch.float64)
    t_tr = target(x_tr, beta) + noise_std * torch.randn(n_train, generator=gen, dtype=torch.float64)
    t_te = target(x_te, beta)
    p_max = int(feature_counts.max())
    W_all = torch.randn(p_max, dim, generator=gen, dtype=torch.float64) / dim**0.5
    b_all = torch.randn(p_max, generator=gen, dtype=torch.float64)
    for j, p in enumerate(feature_counts):
        W, b = W_all[:p], b_all[:p]  # nested feature sets: model p+1 extends model p
        phi_tr, phi_te = torch.relu(x_tr @ W.T + b), torch.relu(x_te @ W.T + b)
        w = torch.linalg.pinv(phi_tr) @ t_tr  # minimum-norm least squares
        train_err[trial, j] = torch.mean((phi_tr @ w - t_tr) ** 2).item()
        test_err[trial, j] = torch.mean((phi_te @ w - t_te) ** 2).item()
        weight_norm[trial, j] = torch.linalg.vector_norm(w).item()

# Medians over trials are robust to the rare near-singular draw.
median_test = np.median(test_err, axis=0)
median_train = np.median(train_err, axis=0)
median_norm = np.median(weight_norm, axis=0)
peak_features = int(feature_counts[np.argmax(median_test)])

# %%
# Test and training error, and the weight norm, against the number of features.
fig, (ax, ax_norm) = plt.subplots(1, 2, figsize=(12.8, 5.0), gridspec_kw={"width_ratios": [1.5, 1]})
ax.loglog(feature_counts, median_test, "o-", color="C3", lw=2, ms=4, label="test error")
ax.loglog(feature_counts, median_train, "o-", color="C0", lw=2, ms=4, label="training error")
for a in (ax, ax_norm):
    a.axvline(n_train, color="0.4", ls="--", lw=1)
ax.annotate(
    f"interpolation threshold\np = n = {n_train}",
    (n_train * 1.5, median_test.max() * 0.5),
    va="top",
    color="0.3",
)
ax.set_ylim(1e-3, median_test.max() * 3)
ax.text(2.5, 2e-3, "classical regime (p < n)", color="0.3")
ax.text(70, 2e-3, "over-parameterised (p > n):\ntraining error 0", color="0.3")
ax.set_xlabel("number of random features p")
ax.set_ylabel(f"mean squared error (median of {n_trials} draws)")
ax.set_title(f"random ReLU features, min-norm least squares, n = {n_train}")
ax.legend(loc="upper left")
ax_norm.loglog(feature_counts, median_norm, "o-", color="C4", lw=2, ms=4)
ax_norm.set_xlabel("number of random features p")
ax_norm.set_ylabel("‖w‖ (median)")
ax_norm.set_title("norm of the fitted weights")
fig.suptitle("C7 · Double descent: test error against model size")
fig.tight_layout()

# %%
# Checks: the peak sits at the interpolation threshold (where the weight norm
# peaks too); beyond it the training error is zero (interpolation) and the
# test error comes down again, here even below the best classical model.
assert 0.75 * n_train <= peak_features <= 1.25 * n_train
beyond = feature_counts > 1.5 * n_train
assert np.all(median_train[beyond] < 1e-12)
assert median_test[-1] < 0.1 * median_test.max()
assert median_test[-1] < median_test[feature_counts < 0.75 * n_train].min()
assert np.argmax(median_norm) == np.argmax(median_test)

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
