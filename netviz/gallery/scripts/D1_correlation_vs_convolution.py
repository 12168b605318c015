r"""
D1 · Correlation vs convolution in 1-D
======================================

*Lecture topic:* Convolutional networks (notes 000, 002)

Three noisy signals each contain the same short pattern, at different
places. A fixed inner product (what one unit of a dense layer computes) only
responds to the pattern where its weights put it: for patterns elsewhere it
gives no clear signal. Sliding the pattern along the signal, the correlation
:math:`y(t) = \sum_{t'} x(t + t') h(t')` that ``F.conv1d`` computes, peaks
exactly where the pattern sits, wherever that is. "Convolution" in deep
learning is this correlation; the convolution of signal processing flips the
kernel first, and with an asymmetric pattern the unflipped template no longer
matches.
"""

# %%
# The pattern, the signals, and the three operations.
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from netviz.gallery import setup

setup()

length, noise_std = 120, 0.35
# The pattern: the 13-step Barker code (its shifted copies barely overlap, and
# it is not symmetric, so flipping it matters), scaled to 0.6.
barker13 = [1, 1, 1, 1, 1, -1, -1, 1, 1, -1, 1, -1, 1]
pattern = 0.6 * torch.tensor(barker13, dtype=torch.float64)
tk = torch.arange(len(pattern))
positions = {"A": 12, "B": 70, "C": 96}
gen = torch.Generator().manual_seed(0)
signals = {}
for name, pos in positions.items():
    x = noise_std * torch.randn(length, generator=gen, dtype=torch.float64)
    x[pos : pos + len(pattern)] += pattern
    signals[name] = x

# Correlation (what conv1d computes): y(t) = sum_t' x(t + t') h(t').
correlations = {n: F.conv1d(x[None, None], pattern[None, None])[0, 0] for n, x in signals.items()}
# Convolution proper flips the kernel: (x * h)(t) = sum_t' x(t - t') h(t').
convolutions = {
    n: F.conv1d(x[None, None], pattern.flip(0)[None, None])[0, 0] for n, x in signals.items()
}
# A dense unit: one fixed inner product with the pattern placed at t = 40.
dense_position = 40
dense_weights = torch.zeros(length, dtype=torch.float64)
dense_weights[dense_position : dense_position + len(pattern)] = pattern
inner_products = {n: torch.dot(x, dense_weights).item() for n, x in signals.items()}
reference = signals["A"].roll(dense_position - positions["A"])  # pattern moved to t = 40
inner_products["A, moved\nto t = 40"] = torch.dot(reference, dense_weights).item()
detected = {n: int(torch.argmax(c)) for n, c in correlations.items()}

# %%
# Draw: signals (left), correlation and convolution outputs (middle), the
# dense unit's inner products and the kernel (right).
fig = plt.figure(figsize=(12.8, 7.2))
grid = fig.add_gridspec(3, 3, width_ratios=[1.1, 1.1, 1.0])
t = np.arange(length)
t_out = np.arange(length - len(pattern) + 1)
for row, (name, x) in enumerate(signals.items()):
    ax = fig.add_subplot(grid[row, 0])
    pos = positions[name]
    ax.axvspan(pos, pos + len(pattern) - 1, color="C2", alpha=0.2, lw=0)
    ax.plot(t, x, color="C0", lw=1.2)
    ax.set_ylabel(f"signal {name}")
    ax.set_ylim(-1.6, 1.6)
    if row == 0:
        ax.set_title("signals (pattern shaded)")
    ax = fig.add_subplot(grid[row, 1])
    ax.plot(t_out, correlations[name], color="C3", lw=1.8, label="correlation (conv1d)")
    ax.plot(t_out, convolutions[name], color="0.55", lw=1.2, label="convolution (flipped)")
    ax.plot(detected[name], correlations[name][detected[name]], "v", color="C3", ms=8)
    ax.axvline(pos, color="C2", lw=1, ls="--")
    ax.set_ylim(-4, 6.5)
    if row == 0:
        ax.set_title("y(t) = Σ x(t + t') h(t')  (slide h along x)")
        ax.legend(loc="upper right", fontsize=9)
    if row == 2:
        ax.set_xlabel("shift t")
        fig.axes[-2].set_xlabel("time")
ax = fig.add_subplot(grid[0:2, 2])
names = list(inner_products)
colors = ["C0", "C0", "C0", "C2"]
ax.barh(range(len(names)), [inner_products[n] for n in names], color=colors)
ax.set_yticks(range(len(names)), [f"signal {n}" for n in names])
ax.invert_yaxis()
ax.axvline(0, color="0.3", lw=0.8)
ax.set_xlabel("⟨x, w⟩")
ax.set_title(f"a dense unit: w = h placed at t = {dense_position}")
ax = fig.add_subplot(grid[2, 2])
ax.step(tk.numpy(), pattern.numpy(), where="mid", color="C3", lw=2, label="h")
ax.step(tk.numpy(), pattern.flip(0).numpy(), where="mid", color="0.55", ls="--", label="h flipped")
ax.set_ylim(-1.1, 1.5)
ax.set_title("the pattern h (kernel)")
ax.set_xlabel("t'")
ax.legend(loc="upper right", ncols=2, fontsize=9)
fig.suptitle("D1 · Correlation finds the pattern anywhere; a fixed inner product does not")
fig.tight_layout()

# %%
# Checks: conv1d is the correlation of NumPy (no flip) and the convolution of
# NumPy with the flipped kernel; the correlation peaks exactly at every
# pattern; the fixed inner product only responds at its own position.
h = pattern.numpy()
for name, x in signals.items():
    np.testing.assert_allclose(correlations[name].numpy(), np.correlate(x.numpy(), h, "valid"))
    np.testing.assert_allclose(correlations[name].numpy(), np.convolve(x.numpy(), h[::-1], "valid"))
    np.testing.assert_allclose(convolutions[name].numpy(), np.convolve(x.numpy(), h, "valid"))
assert detected == positions
energy = float(pattern @ pattern)
assert all(abs(inner_products[n]) < 0.5 * energy for n in positions)
assert inner_products["A, moved\nto t = 40"] > 0.8 * energy
assert all(convolutions[n].max() < 0.8 * correlations[n].max() for n in positions)

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
