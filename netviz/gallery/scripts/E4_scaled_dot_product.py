"""
E4 · Scaled dot-product attention, worked example
=================================================

*Lecture topic:* Transformer layer (notes 002)

The lecture's two-word example ("Thinking Machines", after Jay Alammar): the
query of "Thinking" scores 112 against its own key and 96 against the key of
"Machines". Dividing by :math:`\\sqrt{d_k} = 8` gives 14 and 12, and the
softmax turns them into the attention weights 0.88 and 0.12. Without the
scaling, the softmax of 112 and 96 would put all the weight (1 - 1e-7) on one
word. PyTorch's ``scaled_dot_product_attention`` gives the same weights.
"""

# %%
# Query and keys with :math:`d_k = 64` whose dot products are the lecture's
# scores: ``q1 . k1 = 112`` and ``q1 . k2 = 96``.
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from netviz.gallery import setup
from netviz.plot.theme import PALETTE

setup()

d_k = 64
words = ["Thinking", "Machines"]
query = torch.ones(d_k, dtype=torch.float64)
keys = torch.stack(
    [
        torch.cat([torch.full((48,), 2.0), torch.full((16,), 1.0)]).double(),  # 96 + 16 = 112
        torch.full((d_k,), 1.5, dtype=torch.float64),  # 64 * 1.5 = 96
    ]
)

# %%
# The three steps of the notes' table: score, divide by sqrt(d_k), softmax.
scores = keys @ query
scale = math.sqrt(d_k)
scaled_scores = scores / scale
weights = torch.softmax(scaled_scores, dim=0)
unscaled_weights = torch.softmax(scores, dim=0)

# PyTorch's fused kernel: with the identity as values, its output *is* the
# attention row (it scales by 1/sqrt(d_k) itself).
sdpa_weights = F.scaled_dot_product_attention(
    query[None, None, :], keys[None], torch.eye(2, dtype=torch.float64)[None]
)[0, 0]

# %%
# One bar chart per step.
fig, axes = plt.subplots(1, 3, figsize=(12.8, 7.2 * 0.6), layout="constrained")
colours = [PALETTE[0], PALETTE[1]]
steps = [
    (scores, "1. score $q_1 \\cdot k_j$", "{:.0f}"),
    (scaled_scores, f"2. divide by $\\sqrt{{d_k}}$ = {scale:g}", "{:.0f}"),
    (weights, "3. softmax", "{:.2f}"),
]
for ax, (vals, title, fmt) in zip(axes, steps):
    if ax is axes[2]:  # room for the unscaled softmax next to each bar
        bars = ax.bar([-0.17, 0.83], vals.tolist(), color=colours, width=0.32, label="scaled")
        ax.set_xticks([0, 1], words)
    else:
        bars = ax.bar(words, vals.tolist(), color=colours, width=0.6)
    ax.bar_label(bars, labels=[fmt.format(v) for v in vals.tolist()], fontsize=14, padding=3)
    ax.set_title(title)
    ax.set_ylim(0, float(vals.max()) * 1.2)
    ax.tick_params(axis="x", labelsize=12)
    ax.set_xlabel("key word")
unscaled_bars = axes[2].bar(
    [0.17, 1.17],
    unscaled_weights.tolist(),
    width=0.32,
    color="white",
    edgecolor=PALETTE[7],
    hatch="//",
    label="without scaling",
)
axes[2].bar_label(unscaled_bars, labels=["1.00", "1e-7"], fontsize=11, padding=3, color="0.35")
# The key: solid bars are coloured by key word in every panel, so the legend's
# "scaled" entry shows both colours, not the first bar's.
from matplotlib.legend_handler import HandlerTuple
from matplotlib.patches import Patch

scaled_key = (Patch(color=colours[0]), Patch(color=colours[1]))
axes[2].legend(
    [scaled_key, unscaled_bars],
    ["scaled (colour: key word)", "without scaling"],
    handler_map={tuple: HandlerTuple(ndivide=None, pad=0)},
    loc="upper right",
    fontsize=10,
)
axes[2].set_ylim(0, 1.3)
axes[0].set_ylabel("score $q_1 \\cdot k_j$ (query: Thinking)")
axes[1].set_ylabel("scaled score")
axes[2].set_ylabel("attention weight")
fig.suptitle("E4 · Scaled dot-product attention: softmax($q\\,k^T/\\sqrt{d_k}$), $d_k$ = 64")

# %%
# Check the numbers the notes give: 112 and 96, 14 and 12, 0.88 and 0.12.
assert scores.tolist() == [112.0, 96.0]
assert scale == 8.0
assert scaled_scores.tolist() == [14.0, 12.0]
assert [round(w, 2) for w in weights.tolist()] == [0.88, 0.12]
assert torch.allclose(sdpa_weights, weights)
assert unscaled_weights[0] > 1 - 1e-6  # saturated without the scaling

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
