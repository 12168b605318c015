"""
E5 · Why scale by sqrt(d_k)
===========================

*Lecture topic:* Scaling the dot product (notes 001)

For random queries and keys with unit-variance entries the dot product
:math:`q^\\top k` has variance :math:`d_k`: its typical size grows with the
embedding dimension. Unscaled, the softmax over a row of such scores saturates
(one weight near 1, entropy near 0) and its Jacobian
:math:`\\operatorname{diag}(p) - p p^\\top` vanishes, so gradients through the
attention stop flowing. Dividing by :math:`\\sqrt{d_k}` keeps the scores at unit
variance, the rows soft, and the gradients alive at every dimension.
"""

# %%
# Random queries and keys (standard normal entries) for embedding dimensions
# 2 ... 1024; each query attends over 16 keys.
import math

import matplotlib.pyplot as plt
import torch

from netviz.gallery import pick, setup
from netviz.plot.theme import PALETTE

setup()

n_keys = 16
n_queries = pick(1000, 250)
dims = [2**p for p in range(1, 11)]
generator = torch.Generator().manual_seed(0)


def row_stats(scores: torch.Tensor) -> tuple[float, float, float]:
    """Mean entropy (nats), mean max weight and mean Frobenius norm of the softmax Jacobian."""
    p = torch.softmax(scores, dim=-1)
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum(-1)
    jacobian = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    jac_norm = torch.linalg.matrix_norm(jacobian)
    return entropy.mean().item(), p.max(-1).values.mean().item(), jac_norm.mean().item()


score_std: dict[str, list[float]] = {"unscaled": [], "scaled": []}
entropy: dict[str, list[float]] = {"unscaled": [], "scaled": []}
max_weight: dict[str, list[float]] = {"unscaled": [], "scaled": []}
jacobian_norm: dict[str, list[float]] = {"unscaled": [], "scaled": []}
for d in dims:
    q = torch.randn(n_queries, 1, d, generator=generator)
    k = torch.randn(n_queries, n_keys, d, generator=generator)
    raw = (q * k).sum(-1)  # (n_queries, n_keys)
    for kind, scores in (("unscaled", raw), ("scaled", raw / math.sqrt(d))):
        score_std[kind].append(scores.std().item())
        h, m, j = row_stats(scores)
        entropy[kind].append(h)
        max_weight[kind].append(m)
        jacobian_norm[kind].append(j)

uniform_entropy = math.log(n_keys)

# %%
# Four panels: score size, entropy, saturation, gradient size.
fig, axes = plt.subplots(2, 2, figsize=(12.8, 7.2), layout="constrained")
styles = {
    "unscaled": dict(color=PALETTE[3], marker="o", label="$q^\\top k$ (unscaled)"),
    "scaled": dict(color=PALETTE[0], marker="s", label="$q^\\top k/\\sqrt{d_k}$ (scaled)"),
}
panels = [
    (axes[0, 0], score_std, "std of the scores", "log"),
    (axes[0, 1], entropy, "entropy of an attention row (nats)", "linear"),
    (axes[1, 0], max_weight, "largest weight in a row", "linear"),
    (axes[1, 1], jacobian_norm, "softmax Jacobian norm (gradient size)", "log"),
]
for ax, data, ylabel, yscale in panels:
    for kind in ("unscaled", "scaled"):
        ax.plot(dims, data[kind], **styles[kind])
    ax.set_xscale("log", base=2)
    ax.set_yscale(yscale)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("embedding dimension $d_k$")
axes[0, 0].plot(dims, [math.sqrt(d) for d in dims], "k:", label="$\\sqrt{d_k}$")
axes[0, 0].legend()
axes[0, 1].axhline(uniform_entropy, color="0.4", ls="--", lw=1)
axes[0, 1].text(2, uniform_entropy - 0.08, f"uniform over {n_keys} keys: ln {n_keys}", va="top")
axes[1, 0].axhline(1.0, color="0.4", ls="--", lw=1)
axes[1, 0].set_ylim(0, 1.05)
fig.suptitle(f"E5 · Why scale by $\\sqrt{{d_k}}$: random queries over {n_keys} keys")

# %%
# Checks: the unscaled score std follows sqrt(d_k) and the scaled one stays
# near 1; unscaled rows saturate (low entropy, max weight near 1, vanishing
# Jacobian) at large d_k while scaled rows do not change with d_k.
for d, s_raw, s_scaled in zip(dims, score_std["unscaled"], score_std["scaled"]):
    assert abs(s_raw / math.sqrt(d) - 1) < 0.1, (d, s_raw)
    assert abs(s_scaled - 1) < 0.1, (d, s_scaled)
assert entropy["unscaled"][-1] < 0.5 < entropy["scaled"][-1]
assert max(entropy["scaled"]) - min(entropy["scaled"]) < 0.15
assert max_weight["unscaled"][-1] > 0.8
assert jacobian_norm["unscaled"][-1] < 0.25 * jacobian_norm["scaled"][-1]

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
