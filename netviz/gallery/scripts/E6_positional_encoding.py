"""
E6 · Sinusoidal positional encoding
===================================

*Lecture topic:* Positional encoding (notes 001, 002)

Self-attention does not see the order of its inputs, so each position
:math:`t` gets a vector added to its embedding. Notes 001 use sines only,
:math:`(\\sin \\omega_1 t, \\dots, \\sin \\omega_d t)` with
:math:`\\omega_k = 1/10000^{k/d}`, 128 dimensions and 50 positions; notes 002
(and Vaswani et al.) interleave sines and cosines,
:math:`(\\sin \\omega_1 t, \\cos \\omega_1 t, \\dots)` with
:math:`\\omega_k = 1/10000^{2k/d}` and :math:`d = 20`. Low dimensions oscillate
fast, high ones slowly, like the bits of a binary counter. Below, the dot
products :math:`p_t \\cdot p_{t'}`: for the sin/cos encoding they depend only on
the distance :math:`|t - t'|`. Columns are numbered from 0 (netviz and the
paper; the notes count from 1).
"""

# %%
# Both encodings from netviz, and the same formulas written out with NumPy.
import matplotlib.pyplot as plt
import numpy as np

import netviz
from netviz.gallery import setup

setup()

sin_positions, sin_dim = 50, 128  # notes 001
sincos_positions, sincos_dim = 50, 20  # notes 002
sin_only = netviz.sinusoidal_encoding(sin_positions, sin_dim, kind="sin")
sincos = netviz.sinusoidal_encoding(sincos_positions, sincos_dim, kind="sincos", interleave=True)

t = np.arange(sin_positions)[:, None]
k = np.arange(sin_dim)[None, :]
reference_sin = np.sin(t / 10000 ** (k / sin_dim))
t2 = np.arange(sincos_positions)[:, None]
omega = 1 / 10000 ** (2 * np.arange(sincos_dim // 2) / sincos_dim)
reference_sincos = np.empty((sincos_positions, sincos_dim))
reference_sincos[:, 0::2] = np.sin(t2 * omega)
reference_sincos[:, 1::2] = np.cos(t2 * omega)

sincos_similarity = sincos.double() @ sincos.double().T
sin_similarity = sin_only.double() @ sin_only.double().T

# %%
# One row per encoding: the encoding (positions down, dimensions across) and,
# beside it, its position-similarity matrix (square, the full row height).
fig, axes = plt.subplots(
    2, 2, figsize=(12.8, 7.2 * 1.1), layout="constrained", width_ratios=[1.75, 1]
)
netviz.plot.positional_encoding(
    sin_only, ax=axes[0, 0], title=f"notes 001: sin only, d = {sin_dim}, {sin_positions} positions"
)
netviz.plot.positional_encoding(
    sincos, ax=axes[1, 0], title=f"notes 002: interleaved sin/cos, d = {sincos_dim}"
)
netviz.plot.position_similarity(
    sin_only, ax=axes[0, 1], title="similarity $p_t \\cdot p_{t'}$ (sin only)"
)
netviz.plot.position_similarity(
    sincos, ax=axes[1, 1], title="similarity $p_t \\cdot p_{t'}$ (sin/cos)"
)
axes[0, 0].set_xlabel("dimension k, numbered from 0 (the notes count from 1)")
axes[1, 0].set_xlabel("dimension, numbered from 0 (even: sin, odd: cos; the notes count from 1)")
axes[1, 0].set_xticks(range(0, sincos_dim, 2))
for ax in axes[:, 1]:
    ax.set_xlabel("position $t'$")
    ax.set_ylabel("position $t$")
    ax.images[0].colorbar.set_label("dot product $p_t \\cdot p_{t'}$")
for ax in axes[:, 0]:
    ax.images[0].colorbar.set_label("encoding value")
fig.suptitle(
    "E6 · Sinusoidal positional encodings (netviz.sinusoidal_encoding) and position similarity"
)

# %%
# Checks against the NumPy formulas, and the properties the figure shows:
# with sin/cos every ``|p_t|^2 = d/2`` and ``p_t . p_{t+k} = sum_i cos(omega_i k)``
# does not depend on t; with sines only p_0 = 0.
assert sin_only.shape == (50, 128) and sincos.shape == (50, 20)
assert np.allclose(sin_only.numpy(), reference_sin, atol=1e-6)
assert np.allclose(sincos.numpy(), reference_sincos, atol=1e-6)
assert np.allclose(np.diag(sincos_similarity.numpy()), sincos_dim / 2, atol=1e-4)
for lag in (1, 5, 17):
    diag = np.diag(sincos_similarity.numpy(), lag)
    assert np.allclose(diag, np.cos(omega * lag).sum(), atol=1e-4), lag
assert float(sin_similarity[0].abs().max()) == 0.0

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
