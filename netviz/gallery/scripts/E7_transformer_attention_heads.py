"""
E7 · Attention heads of a small transformer, and the causal mask
================================================================

*Lecture topic:* Multi-head self-attention, the transformer decoder (notes 001)

A one-layer ``nn.TransformerEncoder`` (2 heads, d = 32, sinusoidal positions
from ``netviz.sinusoidal_encoding``) learns to *reverse* a sequence of 8 digits.
``netviz.capture_attention`` records its attention in eval mode: both heads
attend from position ``i`` to position ``7 - i``, an anti-diagonal, which is
exactly where the answer is. On the right, the decoder's causal mask
(``nn.Transformer.generate_square_subsequent_mask``): a second model of the
same shape is *trained with the mask* to output the previous digit
(:math:`y_i = x_{i-1}`); position ``i`` may only attend to positions
``<= i``, and its captured attention is lower-triangular, almost all of
it on key ``i - 1`` (the answer) and on key ``i`` itself. The second figure asks which input tokens the
reverser's output at each position depends on: integrated gradients of the
output's score with respect to the token embeddings (from a zero embedding),
summed per token, computed with ``netviz.attribution`` and drawn with
``netviz.plot.token_attribution``; they put the weight on token ``7 - i``,
as the attention does.
"""

# %%
# The model and the reversal task.
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

import netviz
from netviz.gallery import fast, pick, setup

setup()

vocab, seq_len, d_model, n_heads = 10, 8, 32, 2
train_steps = pick(250, 50)
causal_mask = nn.Transformer.generate_square_subsequent_mask(seq_len)


class Reverser(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.register_buffer("positions", netviz.sinusoidal_encoding(seq_len, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, 2 * d_model, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        self.out = nn.Linear(d_model, vocab)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.out(self.encoder(self.embed(tokens) + self.positions, mask=mask))


def previous(tokens: torch.Tensor) -> torch.Tensor:
    """The causal task: y_i = x_{i-1} (position 0 has no target and is dropped)."""
    return tokens[:, :-1]


def train(causal: bool) -> Reverser:
    torch.manual_seed(0)
    model = Reverser()
    generator = torch.Generator().manual_seed(1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(train_steps):
        tokens = torch.randint(0, vocab, (64, seq_len), generator=generator)
        if causal:
            logits = model(tokens, mask=causal_mask)[:, 1:]
            target = previous(tokens)
        else:
            logits, target = model(tokens), tokens.flip(1)
        loss = F.cross_entropy(logits.reshape(-1, vocab), target.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


model = train(causal=False)  # reverses; attends without a mask
causal_model = train(causal=True)  # outputs the previous digit; trained with the mask

# %%
# Capture the attention in eval mode: the reverser without a mask, the causal
# model with the mask it was trained with.
model.eval()
causal_model.eval()
test_tokens = torch.randint(0, vocab, (256, seq_len), generator=torch.Generator().manual_seed(2))
with torch.no_grad():
    test_accuracy = (model(test_tokens).argmax(-1) == test_tokens.flip(1)).float().mean().item()
    causal_accuracy = (
        (causal_model(test_tokens, mask=causal_mask)[:, 1:].argmax(-1) == previous(test_tokens))
        .float()
        .mean()
        .item()
    )
    attention = netviz.capture_attention(model, test_tokens[:64])
    causal_attention = netviz.capture_attention(causal_model, test_tokens[:64], mask=causal_mask)
heads = attention["encoder.layers.0.self_attn"][0]  # first sequence: (heads, query, key)
mean_attention = attention["encoder.layers.0.self_attn"].mean(dim=(0, 1))  # sequences, heads
causal_heads = causal_attention["encoder.layers.0.self_attn"][0]
per_head_causal = causal_attention["encoder.layers.0.self_attn"].mean(dim=0)  # over sequences
# the head that carries the answer: most weight on the sub-diagonal (key i - 1)
sub_diagonal = per_head_causal.diagonal(offset=-1, dim1=1, dim2=2).sum(-1)
previous_head = int(sub_diagonal.argmax())
# Tick labels "position:digit": a digit can occur twice in a sequence.
labels = [f"{i}:{t}" for i, t in enumerate(test_tokens[0].tolist())]

# %%
# Left: the two heads of the trained reverser. Right: the causal mask and the
# attention of head 0 under it.
fig = plt.figure(figsize=(12.8, 7.2 * 0.7), layout="constrained")
left, right = fig.subfigures(1, 2, squeeze=False, width_ratios=[1.1, 1])[0]
head_axes = netviz.plot.attention(attention, ax=left.subplots(), tokens=labels, ncols=2).axes
for a in head_axes.flat:
    a.set_title(a.get_title().replace("encoder.layers.0.self_attn ", ""), fontsize=10)
    a.set_xlabel("key (position:digit)", fontsize=9)
head_axes[0, 0].set_ylabel("query (position:digit)", fontsize=9)
left.suptitle(
    f"reverser (no mask), 2 heads, test accuracy {test_accuracy:.0%}\nquery i looks at key 7 − i",
    fontsize=12,
)
ax_mask, ax_causal = right.subplots(1, 2)
ax_mask.imshow(torch.isinf(causal_mask).numpy(), cmap="Greys", vmin=0, vmax=1.6)
ax_mask.set_title("causal mask\n(grey: $-\\infty$, white: 0)", fontsize=10)
ax_mask.set_xlabel("key position")
ax_mask.set_ylabel("query position")
(causal_ax,) = netviz.plot.attention(
    causal_heads[previous_head : previous_head + 1], ax_causal, tokens=labels, colorbar=False
).axes.flat
causal_ax.set_title(f"head {previous_head} under the mask", fontsize=10)
causal_ax.set_xlabel("key (position:digit)", fontsize=9)
causal_ax.set_ylabel("query (position:digit)", fontsize=9)
right.suptitle(
    f"causal model trained with the mask: $y_i = x_{{i-1}}$\n"
    f"(accuracy {causal_accuracy:.0%}); query i looks at keys i − 1 and i",
    fontsize=12,
)
fig.suptitle("E7 · Attention heads of 1-layer transformers: reversal, and a causal mask")

# %%
# Token attribution: which input digits does the reverser's output at position
# i depend on? Integrated gradients of the predicted digit's score with
# respect to the token embeddings (from an all-zero embedding), summed over
# the embedding, one row of coloured tokens per output position.


class FromEmbeddings(nn.Module):
    """The reverser from its token embeddings on, scoring output position ``position``."""

    def __init__(self, model: Reverser, position: int):
        super().__init__()
        self.model, self.position = model, position

    def forward(self, embedded: torch.Tensor) -> torch.Tensor:
        m = self.model
        return m.out(m.encoder(embedded + m.get_buffer("positions")))[:, self.position]


sequence = test_tokens[:1]
with torch.no_grad():
    embedded = model.embed(sequence)
token_rows = []
token_delta = []
for position in range(seq_len):
    res = netviz.attribution(FromEmbeddings(model, position), embedded, None, n_steps=pick(64, 32))
    token_rows.append(res.attr[0].sum(-1))  # one score per input token
    token_delta.append(float(res.delta.abs().max()))
token_attr = torch.stack(token_rows)  # (output position, input token)

fig2, strips = plt.subplots(seq_len, 1, figsize=(12.8, 7.2 * 0.8), layout="constrained")
scale = float(token_attr.abs().max())
for position, ax in enumerate(strips):
    netviz.plot.token_attribution(
        token_attr[position], ax, tokens=labels, vmax=scale, colorbar=False, fontsize=11
    )
    ax.set_ylabel(f"output {position}", rotation=0, ha="right", va="center", fontsize=10)
fig2.colorbar(
    strips[0].images[0], ax=strips, shrink=0.8, label="attribution to the predicted digit"
)
strips[-1].set_xlabel("input token (position:digit)")
fig2.suptitle(
    "E7 · Which input tokens the reverser's output uses: integrated gradients per token "
    "(netviz.attribution)"
)

# %%
# Checks: captured rows are probability distributions; after training the
# heads (averaged over 64 sequences) look at position 7 - i from position i;
# with the causal mask every weight above the diagonal is exactly zero, and
# the causal model puts its weight on keys i - 1 (the answer) and i. Output i's largest token
# attribution is input token 7 - i.
assert torch.allclose(heads.sum(-1), torch.ones(n_heads, seq_len), atol=1e-5)
assert torch.allclose(causal_heads.sum(-1), torch.ones(n_heads, seq_len), atol=1e-5)
assert torch.equal(torch.triu(causal_heads, diagonal=1), torch.zeros_like(causal_heads))
assert torch.equal(torch.isinf(causal_mask), torch.ones(seq_len, seq_len).triu(1).bool())
assert token_attr.shape == (seq_len, seq_len)
if not fast():
    assert test_accuracy > 0.95, test_accuracy
    assert causal_accuracy > 0.95, causal_accuracy
    assert mean_attention.argmax(-1).tolist() == list(range(seq_len - 1, -1, -1))
    answer = per_head_causal[previous_head].diagonal(offset=-1)  # weight on key i - 1
    itself = per_head_causal[previous_head].diagonal()[1:]  # weight on key i
    assert (answer > 0.3).all() and (answer + itself > 0.8).all(), (answer, itself)
    assert token_attr.argmax(-1).tolist() == list(range(seq_len - 1, -1, -1))
    assert max(token_delta) < 0.05 * scale, (token_delta, scale)

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
