"""
E7 · Attention heads of a small transformer, and the causal mask
================================================================

*Lecture topic:* Multi-head self-attention, the transformer decoder (notes 001)

A one-layer ``nn.TransformerEncoder`` (2 heads, d = 32, sinusoidal positions
from ``netviz.sinusoidal_encoding``) learns to *reverse* a sequence of 8 digits.
``netviz.capture_attention`` records its attention in eval mode: both heads
attend from position ``i`` to position ``7 - i``, an anti-diagonal, which is
exactly where the answer is. On the right, the decoder's causal mask
(``nn.Transformer.generate_square_subsequent_mask``): with it, position ``i``
may only attend to positions ``<= i`` and the captured attention is
lower-triangular.
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


model = Reverser()
generator = torch.Generator().manual_seed(1)
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
for _ in range(train_steps):
    tokens = torch.randint(0, vocab, (64, seq_len), generator=generator)
    loss = F.cross_entropy(model(tokens).reshape(-1, vocab), tokens.flip(1).reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()

# %%
# Capture the attention in eval mode, without and with the causal mask.
model.eval()
test_tokens = torch.randint(0, vocab, (256, seq_len), generator=torch.Generator().manual_seed(2))
causal_mask = nn.Transformer.generate_square_subsequent_mask(seq_len)
with torch.no_grad():
    test_accuracy = (model(test_tokens).argmax(-1) == test_tokens.flip(1)).float().mean().item()
    attention = netviz.capture_attention(model, test_tokens[:64])
    causal_attention = netviz.capture_attention(model, test_tokens[:1], mask=causal_mask)
heads = attention["encoder.layers.0.self_attn"][0]  # first sequence: (heads, query, key)
mean_attention = attention["encoder.layers.0.self_attn"].mean(
    dim=(0, 1)
)  # over sequences and heads
causal_heads = causal_attention["encoder.layers.0.self_attn"][0]
labels = [str(t) for t in test_tokens[0].tolist()]

# %%
# Left: the two heads of the trained reverser. Right: the causal mask and the
# attention of head 0 under it.
fig = plt.figure(figsize=(12.8, 7.2 * 0.62), layout="constrained")
left, right = fig.subfigures(1, 2, width_ratios=[1.1, 1])
netviz.plot.attention(attention, tokens=labels, ax=left.subplots(), ncols=2)
left.suptitle(f"reversal, 2 heads (test accuracy {test_accuracy:.0%})", fontsize=12)
ax_mask, ax_causal = right.subplots(1, 2)
ax_mask.imshow(torch.isinf(causal_mask).numpy(), cmap="Greys", vmin=0, vmax=1.6)
ax_mask.set_title("causal mask\n(grey: $-\\infty$, white: 0)", fontsize=11)
ax_mask.set_xlabel("key")
ax_mask.set_ylabel("query")
netviz.plot.attention(causal_heads[:1], tokens=labels, ax=ax_causal, colorbar=False)
right.suptitle("decoder-style masked self-attention (head 0)", fontsize=12)
fig.suptitle("E7 · Attention heads of a 1-layer transformer trained to reverse 8 digits")

# %%
# Checks: captured rows are probability distributions; after training the
# heads (averaged over 64 sequences) look at position 7 - i from position i;
# with the causal mask every
# weight above the diagonal is exactly zero.
assert torch.allclose(heads.sum(-1), torch.ones(n_heads, seq_len), atol=1e-5)
assert torch.allclose(causal_heads.sum(-1), torch.ones(n_heads, seq_len), atol=1e-5)
assert torch.equal(torch.triu(causal_heads, diagonal=1), torch.zeros_like(causal_heads))
assert torch.equal(torch.isinf(causal_mask), torch.ones(seq_len, seq_len).triu(1).bool())
if not fast():
    assert test_accuracy > 0.95, test_accuracy
    assert mean_attention.argmax(-1).tolist() == list(range(seq_len - 1, -1, -1))
