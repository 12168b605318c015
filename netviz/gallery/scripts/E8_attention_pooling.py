"""
E8 · Attention pooling over time
================================

*Lecture topic:* Attention module, Yang et al. 2016 (notes 004)

Hierarchical-attention pooling turns a sequence of hidden states
:math:`h_t` into one vector: :math:`u_t = \\tanh(W h_t + b)`,
:math:`\\alpha_t = \\mathrm{softmax}_t(u_t^\\top u_w)`, :math:`s = \\sum_t \\alpha_t h_t`.
On a synthetic task only one position (marked by a flag) carries the class;
the other tokens are a random "background" class. The layer hands
:math:`\\alpha` to ``netviz.record_attention``, so ``netviz.capture_attention``
records it like any other attention. Before training the weights
:math:`\\alpha_t` are spread out; after training they put nearly all their mass
on the marked position, which is how attention pooling explains a prediction.
"""

# %%
# Data: 4 classes as one-hot tokens, 20 positions. Background tokens are mostly
# one random class per sequence; the flagged position holds the label's token.
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

import netviz
from netviz.gallery import fast, pick, setup
from netviz.plot.theme import CMAP_SEQUENTIAL

setup()

n_classes, seq_len, hidden, batch_size = 4, 20, 16, 64
train_steps = pick(150, 30)
n_features = n_classes + 1  # token one-hot + flag channel


def make_batch(n: int, generator: torch.Generator):
    """Inputs (n, seq_len, n_features), labels (n,), flagged positions (n,)."""
    background = torch.randint(0, n_classes, (n, 1), generator=generator)
    noise_tokens = torch.randint(0, n_classes, (n, seq_len), generator=generator)
    tokens = torch.where(
        torch.rand(n, seq_len, generator=generator) < 0.7, background, noise_tokens
    )
    position = torch.randint(0, seq_len, (n,), generator=generator)
    label = torch.randint(0, n_classes, (n,), generator=generator)
    rows = torch.arange(n)
    tokens[rows, position] = label
    x = torch.cat([F.one_hot(tokens, n_classes).float(), torch.zeros(n, seq_len, 1)], dim=-1)
    x[rows, position, n_classes] = 1.0
    x = x + 0.2 * torch.randn(n, seq_len, n_features, generator=generator)
    return x, label, position


# %%
# The classifier: a per-step encoder, the attention pooling of the notes
# (formulas 1-3) and a linear read-out of the pooled vector ``s``.


class AttentionPooling(nn.Module):
    def __init__(self, n_hidden: int):
        super().__init__()
        self.mlp = nn.Linear(n_hidden, n_hidden)
        self.u_w = nn.Parameter(torch.randn(n_hidden))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u = torch.tanh(self.mlp(h))  # (n, T, H)
        alpha = torch.softmax(u @ self.u_w, dim=1)  # (n, T)
        netviz.record_attention(self, alpha[:, None, None, :])  # (batch, heads, query, key)
        return (alpha[..., None] * h).sum(dim=1), alpha  # s = sum_t alpha_t h_t


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(n_features, hidden), nn.Tanh())
        self.pool = AttentionPooling(hidden)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, alpha = self.pool(self.encoder(x))
        return self.head(s), alpha


x_test, y_test, pos_test = make_batch(512, torch.Generator().manual_seed(2))
model = Classifier()
with torch.no_grad():  # netviz captures the weights the pooling layer records
    alpha_before = netviz.capture_attention(model, x_test)["pool"][:, 0, 0]

generator = torch.Generator().manual_seed(1)
opt = torch.optim.Adam(model.parameters(), lr=0.02)
for _ in range(train_steps):
    x, y, _ = make_batch(batch_size, generator)
    loss = F.cross_entropy(model(x)[0], y)
    opt.zero_grad()
    loss.backward()
    opt.step()

with torch.no_grad():
    logits, alpha_returned = model(x_test)
    alpha_after = netviz.capture_attention(model, x_test)["pool"][:, 0, 0]
test_accuracy = (logits.argmax(1) == y_test).float().mean().item()
alpha_at_flag = alpha_after[torch.arange(len(pos_test)), pos_test]
peak_hits = (alpha_after.argmax(1) == pos_test).float().mean().item()

# %%
# The weights of 12 test sequences before and after training; white rings mark
# the flagged position.
n_show = 12
fig, axes = plt.subplots(1, 2, figsize=(12.8, 7.2 * 0.62), layout="constrained")
for ax, alpha, title in (
    (axes[0], alpha_before, "before training"),
    (axes[1], alpha_after, f"after {train_steps} steps (test accuracy {test_accuracy:.0%})"),
):
    im = ax.imshow(alpha[:n_show].numpy(), cmap=CMAP_SEQUENTIAL, vmin=0, vmax=1, aspect="auto")
    ax.scatter(
        pos_test[:n_show].numpy(),
        range(n_show),
        s=160,
        facecolors="none",
        edgecolors="white",
        lw=2,
        label="flagged position (holds the class)",
    )
    ax.set_title(title)
    ax.set_xlabel("time step t")
    ax.set_xticks(range(0, seq_len, 2))
    ax.set_yticks(
        range(n_show), [f"seq {i}, class {c}" for i, c in enumerate(y_test[:n_show].tolist())]
    )
    ax.tick_params(axis="y", labelsize=9)
    ax.set_ylabel("test sequence")
fig.colorbar(im, ax=axes, label="attention weight $\\alpha_t$", shrink=0.9)
# The key for the rings, drawn on a dark background like the rings themselves.
fig.legend(
    *axes[0].get_legend_handles_labels(),
    loc="outside lower center",
    facecolor=plt.get_cmap(CMAP_SEQUENTIAL)(0.0),
    labelcolor="white",
    fontsize=10,
)
fig.suptitle("E8 · Attention pooling: where the classifier looks ($s = \\sum_t \\alpha_t h_t$)")

# %%
# Checks: each row of alpha is a distribution; after full training alpha peaks
# at the flagged position for (almost) every test sequence.
assert torch.equal(alpha_after, alpha_returned)  # the capture is the layer's own alpha
assert torch.allclose(alpha_after.sum(1), torch.ones(len(alpha_after)))
assert alpha_before.max() < 0.5  # untrained: no position dominates
if not fast():
    assert test_accuracy > 0.95, test_accuracy
    assert peak_hits > 0.95, peak_hits
    assert alpha_at_flag.mean() > 0.9, alpha_at_flag.mean()

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
