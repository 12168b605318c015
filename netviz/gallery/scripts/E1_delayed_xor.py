"""
E1 · Delayed XOR: CNN vs LSTM
=============================

*Lecture topic:* Using convolutional nets as TDNN, RNNs (notes 000)

On random bit sequences the target is :math:`y_t = \\mathrm{XOR}(x_t, x_{t-\\tau})`.
A causal CNN only sees a fixed window of the input, its receptive field
(here 5 steps, computed with :func:`netviz.layermath.receptive_field` and
checked with gradients): once :math:`\\tau` reaches the field, :math:`x_{t-\\tau}`
is invisible and the CNN is at chance "no matter what". An LSTM carries a
state and solves every delay. Both networks predict all delays
:math:`\\tau = 1 \\dots 8` at once (one output per delay).
"""

# %%
# Data: random bits, one target column per delay (positions t >= max delay).
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from netviz.gallery import fast, pick, setup
from netviz.layermath import receptive_field
from netviz.plot.theme import PALETTE

setup()

taus = list(range(1, 9))
seq_len, batch_size = 24, 64
train_steps = pick(200, 40)
t0 = max(taus)  # first position where every target is defined


def make_batch(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Bits ``x`` (n, seq_len) and targets (n, seq_len - t0, len(taus))."""
    x = torch.randint(0, 2, (n, seq_len), generator=generator).float()
    y = torch.stack([(x[:, t0:] != x[:, t0 - tau : seq_len - tau]).float() for tau in taus], -1)
    return x, y


# %%
# A causal CNN: two kernel-3 convolutions padded on both sides; output t of
# the first ``seq_len`` outputs sees inputs t-4 ... t. netviz's layer math gives
# the receptive field and where it starts.
cnn_layers = nn.Sequential(
    nn.Conv1d(1, 16, 3, padding=2),
    nn.ReLU(),
    nn.Conv1d(16, 16, 3, padding=2),
    nn.ReLU(),
    nn.Conv1d(16, len(taus), 1),
)
cnn_rf = receptive_field(cnn_layers, input_size=seq_len)[-1]
cnn_receptive_field = cnn_rf.size


class CausalCNN(nn.Module):
    def __init__(self, layers: nn.Sequential):
        super().__init__()
        self.layers = layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (n, T) -> (n, T, len(taus))
        return self.layers(x[:, None])[..., : x.shape[1]].transpose(1, 2)


class LSTMTagger(nn.Module):
    def __init__(self, hidden: int = 32):
        super().__init__()
        self.lstm = nn.LSTM(1, hidden, batch_first=True)
        self.out = nn.Linear(hidden, len(taus))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.lstm(x[..., None])[0])


def train(model: nn.Module) -> torch.Tensor:
    """Train on fresh batches; return the test accuracy for every delay."""
    generator = torch.Generator().manual_seed(1)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(train_steps):
        x, y = make_batch(batch_size, generator)
        loss = F.binary_cross_entropy_with_logits(model(x)[:, t0:], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        logits = model(x_test)[:, t0:]
    return ((logits > 0).float() == y_test).float().mean(dim=(0, 1))


x_test, y_test = make_batch(512, torch.Generator().manual_seed(2))
cnn = CausalCNN(cnn_layers)
lstm = LSTMTagger()
cnn_accuracy = train(cnn)
lstm_accuracy = train(lstm)

# %%
# The receptive field measured with autograd: which inputs move output t?
x_probe = x_test[:1].clone().requires_grad_(True)
t_probe = seq_len - 1
cnn(x_probe)[0, t_probe].sum().backward()
assert x_probe.grad is not None
seen_inputs = (x_probe.grad[0] != 0).nonzero().flatten().tolist()

# %%
# Left: accuracy per delay. Right: one test sequence at delay 6.
fig, (ax_acc, ax_seq) = plt.subplots(
    1, 2, figsize=(12.8, 7.2 * 0.62), layout="constrained", gridspec_kw={"width_ratios": [1, 1.25]}
)
ax_acc.axvspan(cnn_receptive_field - 0.5, max(taus) + 0.5, color="0.92", zorder=0)
ax_acc.text(cnn_receptive_field - 0.3, 0.56, "τ ≥ CNN receptive field", fontsize=10)
ax_acc.plot(taus, lstm_accuracy.tolist(), "o-", color=PALETTE[0], label="LSTM (32 units)")
ax_acc.plot(
    taus,
    cnn_accuracy.tolist(),
    "s-",
    color=PALETTE[3],
    label=f"causal CNN (field {cnn_receptive_field})",
)
ax_acc.axhline(0.5, color="0.4", ls="--", lw=1)
ax_acc.text(1, 0.51, "chance", color="0.3", fontsize=10)
ax_acc.set_xlabel("delay τ")
ax_acc.set_ylabel("test accuracy")
ax_acc.set_ylim(0.4, 1.05)
ax_acc.set_xticks(taus)
ax_acc.legend(loc="center left")
ax_acc.set_title("$y_t$ = XOR($x_t$, $x_{t-τ}$)")

tau_show = 6
k = taus.index(tau_show)
with torch.no_grad():
    sample = x_test[:1]
    rows = torch.stack(
        [
            sample[0, t0:],
            y_test[0, :, k],
            (cnn(sample)[0, t0:, k] > 0).float(),
            (lstm(sample)[0, t0:, k] > 0).float(),
        ]
    )
ax_seq.imshow(rows.numpy(), cmap="Greys", vmin=-0.3, vmax=1.3, aspect="auto")
for i, row in enumerate(rows.tolist()):
    for j, bit in enumerate(row):
        ax_seq.text(j, i, f"{bit:.0f}", ha="center", va="center", color="white" if bit else "black")
        if i >= 2 and bit != rows[1, j].item():  # a wrong prediction: red frame
            ax_seq.add_patch(
                plt.Rectangle((j - 0.45, i - 0.45), 0.9, 0.9, fill=False, ec=PALETTE[3], lw=3)
            )
ax_seq.set_yticks(range(4), ["input $x_t$", f"target (τ={tau_show})", "CNN", "LSTM"])
ax_seq.set_xticks(range(0, rows.shape[1], 4), [str(t) for t in range(t0, seq_len, 4)])
ax_seq.set_xlabel("time step t (wrong predictions framed)")
ax_seq.tick_params(axis="y", labelsize=11)
ax_seq.set_title(f"one test sequence, delay τ = {tau_show}")
fig.suptitle("E1 · Delayed XOR: a CNN's finite receptive field vs an LSTM's state")

# %%
# Checks. The receptive field from layer math equals the one autograd sees
# (inputs t-4 ... t). Beyond it the CNN has no information, so it is at chance
# in every mode; after full training it solves the short delays and the LSTM
# solves all of them.
assert cnn_receptive_field == 5 and cnn_rf.start == -4
assert seen_inputs == list(range(t_probe - cnn_receptive_field + 1, t_probe + 1))
for tau, acc in zip(taus, cnn_accuracy.tolist()):
    if tau >= cnn_receptive_field:
        assert abs(acc - 0.5) < 0.05, (tau, acc)
if not fast():
    assert all(
        acc > 0.95 for tau, acc in zip(taus, cnn_accuracy.tolist()) if tau < cnn_receptive_field
    )
    assert all(acc > 0.9 for acc in lstm_accuracy.tolist()), lstm_accuracy
    assert all(
        lstm_accuracy[i] > cnn_accuracy[i] + 0.3
        for i, tau in enumerate(taus)
        if tau >= cnn_receptive_field
    )

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
