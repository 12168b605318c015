r"""
B2 · The sigmoid's derivative is at most 1/4
============================================

*Lecture topic:* Vanishing gradients (notes 002)

:math:`\sigma(z) = 1 / (1 + e^{-z})` has the derivative
:math:`\sigma'(z) = \sigma(z)(1 - \sigma(z)) \le 1/4`, with equality only at
:math:`z = 0`. Back-propagating through a chain of sigmoids multiplies one such
factor per layer, so the gradient of
:math:`f(x) = \sigma(w_3\,\sigma(w_2\,\sigma(w_1 x)))` is bounded by
:math:`|w_1 w_2 w_3| / 4^3`, and in general by :math:`(1/4)^n` times the weights
after :math:`n` layers. All derivatives here come from autograd.
"""

# %%
# sigma and its derivative, by autograd.
import matplotlib.pyplot as plt
import numpy as np
import torch

from netviz.gallery import setup
from netviz.plot.theme import PALETTE

setup()

z = (torch.arange(-800, 801, dtype=torch.float64) / 100).requires_grad_()  # exact 0 in the grid
sigma = torch.sigmoid(z)
(sigma_prime,) = torch.autograd.grad(sigma.sum(), z)
sigma_prime_max = float(sigma_prime.max())
argmax_z = float(z.detach()[sigma_prime.argmax()])

# %%
# The gradient of the chain sigma(w3 sigma(w2 sigma(w1 x))) with respect to x,
# for unit weights, against the bound :math:`|w_1 w_2 w_3| / 64`.
chain_weights = (1.0, 1.0, 1.0)
x = torch.linspace(-8, 8, 1601, dtype=torch.float64, requires_grad=True)
w1, w2, w3 = chain_weights
chain = torch.sigmoid(w3 * torch.sigmoid(w2 * torch.sigmoid(w1 * x)))
(chain_grad,) = torch.autograd.grad(chain.sum(), x)
chain_bound = abs(w1 * w2 * w3) / 4**3

# %%
# Depth: the largest gradient through n stacked sigmoid units (unit weights)
# against (1/4)^n.
depths = np.arange(1, 11)
grads_by_depth: list[float] = []
for n in depths:
    xd = torch.linspace(-8, 8, 1601, dtype=torch.float64, requires_grad=True)
    h = xd
    for _ in range(n):
        h = torch.sigmoid(h)
    (gd,) = torch.autograd.grad(h.sum(), xd)
    grads_by_depth.append(float(gd.max()))
max_grad_per_depth = np.array(grads_by_depth)
depth_bound = 0.25**depths

fig, axes = plt.subplots(1, 3, figsize=(12.8, 4.6))
ax = axes[0]
zz = z.detach().numpy()
ax.plot(zz, sigma.detach().numpy(), color=PALETTE[0], lw=2, label=r"$\sigma(z)$")
ax.plot(zz, sigma_prime.numpy(), color=PALETTE[1], lw=2, label=r"$\sigma'(z) = \sigma(1-\sigma)$")
ax.axhline(0.25, color=PALETTE[7], ls="--", lw=1, label="1/4")
ax.set(xlabel="$z$", title=r"$\sigma'(z) \leq 1/4$, equal only at $z = 0$")
ax.legend(loc="center right", fontsize=8)

ax = axes[1]
xx = x.detach().numpy()
ax.plot(xx, chain_grad.numpy(), color=PALETTE[2], lw=2, label=r"$df/dx$ (autograd)")
ax.axhline(chain_bound, color=PALETTE[7], ls="--", lw=1, label=r"bound $|w_1 w_2 w_3| / 4^3$")
ax.set(
    xlabel="$x$",
    ylim=(0, chain_bound * 1.25),
    title=r"$f(x) = \sigma(w_3\sigma(w_2\sigma(w_1 x)))$, $w = 1$",
)
ax.legend(loc="upper right", fontsize=8)

ax = axes[2]
ax.semilogy(
    depths, max_grad_per_depth, "o-", color=PALETTE[0], lw=2, label="largest gradient (autograd)"
)
ax.semilogy(depths, depth_bound, "--", color=PALETTE[7], lw=1.5, label=r"$(1/4)^n$")
ax.set(
    xlabel="number of stacked sigmoids $n$",
    ylabel="max $|dh_n / dx|$",
    title="The bound shrinks geometrically with depth",
    xticks=depths,
)
ax.legend(fontsize=8)
fig.suptitle("B2 · The sigmoid's derivative is at most 1/4")
fig.tight_layout()

# %%
# sigma' peaks at exactly 1/4 at z = 0; the chain respects its bound; n
# stacked sigmoids never pass a gradient larger than (1/4)^n.
assert sigma_prime_max == 0.25 and argmax_z == 0.0
assert float(chain_grad.max()) <= chain_bound
assert (max_grad_per_depth <= depth_bound * (1 + 1e-12)).all()
assert max_grad_per_depth[0] == 0.25

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
