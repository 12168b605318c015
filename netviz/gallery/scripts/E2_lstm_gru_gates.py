"""
E2 · LSTM and GRU gate activations
==================================

*Lecture topic:* RNNs with gates (notes 000, 001, 003)

A tiny LSTM and a tiny GRU are trained on *sample and hold*: the input is a
random value and a "write" flag, and the target is the value seen at the last
flag. The gates are recomputed step by step from the modules' own weights
(``weight_ih_l0``, ``weight_hh_l0``, ...) with the lecture's equations, and the
recomputed hidden states are checked against ``nn.LSTM`` / ``nn.GRU``. At each
flag the LSTM's input gate opens and its forget gate closes; the GRU's update
gate drops, letting the new value in.
"""

# %%
# Data: value channel (uniform in [-1, 1]) and a write flag; target = value at
# the last flag.
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from netviz.gallery import fast, pick, setup
from netviz.plot.theme import CMAP_DIVERGING, CMAP_SEQUENTIAL, PALETTE

setup()

seq_len, hidden, batch_size = 30, 8, 64
train_steps = pick(150, 30)


def make_batch(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (n, seq_len, 2) = (value, flag) and the held value (n, seq_len)."""
    value = torch.rand(n, seq_len, generator=generator) * 2 - 1
    flag = (torch.rand(n, seq_len, generator=generator) < 0.12).float()
    flag[:, 0] = 1.0
    last_flag = torch.cummax(flag * torch.arange(seq_len), dim=1).values.long()
    return torch.stack([value, flag], dim=-1), torch.gather(value, 1, last_flag)


class Holder(nn.Module):
    def __init__(self, cell: type[nn.LSTM] | type[nn.GRU]):
        super().__init__()
        self.rnn = cell(2, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.rnn(x)[0])[..., 0]


def train(model: nn.Module) -> float:
    """Adam on fresh batches; returns the test R^2."""
    generator = torch.Generator().manual_seed(1)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(train_steps):
        x, y = make_batch(batch_size, generator)
        loss = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return 1 - F.mse_loss(model(x_test), y_test).item() / y_test.var().item()


x_test, y_test = make_batch(256, torch.Generator().manual_seed(2))
lstm_model, gru_model = Holder(nn.LSTM), Holder(nn.GRU)
lstm_r2, gru_r2 = train(lstm_model), train(gru_model)

# %%
# Recompute the gates from the weights. PyTorch stacks the LSTM rows as
# (i, f, g, o) and the GRU rows as (r, z, n):
#
# LSTM: i, f, o = sigma(W x + b + U h + b'), g = tanh(...),
# c_t = f * c_{t-1} + i * g, h_t = o * tanh(c_t).
#
# GRU: r, z = sigma(...), n = tanh(W_n x + b_n + r * (U_n h + b'_n)),
# h_t = (1 - z) * n + z * h_{t-1}. Here z plays the role of the notes' f_t
# (the fraction of the old state kept); PyTorch applies r after U_n.


def lstm_gates(lstm: nn.RNNBase, x: torch.Tensor) -> dict[str, torch.Tensor]:
    w_ih, w_hh = lstm.get_parameter("weight_ih_l0"), lstm.get_parameter("weight_hh_l0")
    b = lstm.get_parameter("bias_ih_l0") + lstm.get_parameter("bias_hh_l0")
    h = x.new_zeros(hidden)
    c = x.new_zeros(hidden)
    out: dict[str, list[torch.Tensor]] = {
        k: [] for k in ("input gate i", "forget gate f", "output gate o", "cell c", "h")
    }
    for x_t in x:
        pre_i, pre_f, pre_g, pre_o = (w_ih @ x_t + w_hh @ h + b).chunk(4)
        i, f, g, o = pre_i.sigmoid(), pre_f.sigmoid(), pre_g.tanh(), pre_o.sigmoid()
        c = f * c + i * g
        h = o * c.tanh()
        for key, val in zip(out, (i, f, o, c, h)):
            out[key].append(val)
    return {k: torch.stack(v) for k, v in out.items()}


def gru_gates(gru: nn.RNNBase, x: torch.Tensor) -> dict[str, torch.Tensor]:
    w_ir, w_iz, w_in = gru.get_parameter("weight_ih_l0").chunk(3)
    w_hr, w_hz, w_hn = gru.get_parameter("weight_hh_l0").chunk(3)
    b_ir, b_iz, b_in = gru.get_parameter("bias_ih_l0").chunk(3)
    b_hr, b_hz, b_hn = gru.get_parameter("bias_hh_l0").chunk(3)
    h = x.new_zeros(hidden)
    out: dict[str, list[torch.Tensor]] = {
        k: [] for k in ("update gate z", "reset gate r", "candidate n", "h")
    }
    for x_t in x:
        r = (w_ir @ x_t + b_ir + w_hr @ h + b_hr).sigmoid()
        z = (w_iz @ x_t + b_iz + w_hz @ h + b_hz).sigmoid()
        n = (w_in @ x_t + b_in + r * (w_hn @ h + b_hn)).tanh()
        h = (1 - z) * n + z * h
        for key, val in zip(out, (z, r, n, h)):
            out[key].append(val)
    return {k: torch.stack(v) for k, v in out.items()}


example = x_test[0]
with torch.no_grad():
    lstm_trace = lstm_gates(lstm_model.rnn, example)
    gru_trace = gru_gates(gru_model.rnn, example)
    lstm_h_torch = lstm_model.rnn(example[None])[0][0]
    gru_h_torch = gru_model.rnn(example[None])[0][0]
    lstm_pred = lstm_model(example[None])[0]
    gru_pred = gru_model(example[None])[0]

flag_times = example[:, 1].nonzero().flatten().tolist()

# %%
# Per model: input and prediction, then each gate as a (unit x time) heatmap.
fig, axes = plt.subplots(4, 2, figsize=(12.8, 7.2), sharex=True, layout="constrained")
t = torch.arange(seq_len).numpy()
for col, (name, pred, trace, keys) in enumerate(
    [
        ("LSTM", lstm_pred, lstm_trace, ("input gate i", "forget gate f", "output gate o")),
        ("GRU", gru_pred, gru_trace, ("update gate z", "reset gate r", "candidate n")),
    ]
):
    ax = axes[0, col]
    ax.plot(t, example[:, 0].numpy(), ".", color="0.55", label="input value")
    ax.step(t, y_test[0].numpy(), where="mid", color="black", lw=1.5, label="target (held value)")
    ax.plot(t, pred.numpy(), color=PALETTE[0], lw=2, label=f"{name} output")
    ax.set_ylim(-1.15, 1.9)
    ax.set_title(f"{name}, {hidden} units")
    for ft in flag_times:  # flags: full lines on top, short marks on the heatmaps
        ax.axvline(ft, color=PALETTE[1], lw=1.2, alpha=0.8)
        for a in axes[1:, col]:
            a.axvline(ft, ymin=0.93, ymax=1.0, color=PALETTE[1], lw=4)
    for row, key in enumerate(keys, start=1):
        ax = axes[row, col]
        signed = key.startswith("candidate")
        im = ax.imshow(
            trace[key].T.numpy(),
            aspect="auto",
            cmap=CMAP_DIVERGING if signed else CMAP_SEQUENTIAL,
            vmin=-1 if signed else 0,
            vmax=1,
            interpolation="nearest",
        )
        ax.set_ylabel(f"{key}\nunit", fontsize=10)
        ax.set_yticks([0, hidden - 1])
    fig.colorbar(im, ax=axes[3, col], shrink=0.9, pad=0.01)
for ax in axes[0]:
    ax.legend(loc="upper center", ncols=3, fontsize=9, frameon=False)
axes[-1, 0].set_xlabel("time step (orange marks: write flag)")
axes[-1, 1].set_xlabel("time step (orange marks: write flag)")
fig.suptitle("E2 · LSTM and GRU gates on sample-and-hold, recomputed from the modules' weights")

# %%
# Checks: the step-by-step recomputation reproduces PyTorch's hidden states,
# and gates are in (0, 1). After full training both models hold the value
# (R^2 > 0.9), and the LSTM's input gate is on average more open at flags.
assert torch.allclose(lstm_trace["h"], lstm_h_torch, atol=1e-6)
assert torch.allclose(gru_trace["h"], gru_h_torch, atol=1e-6)
for key in ("input gate i", "forget gate f", "output gate o"):
    assert lstm_trace[key].min() > 0 and lstm_trace[key].max() < 1
if not fast():
    assert lstm_r2 > 0.9 and gru_r2 > 0.9, (lstm_r2, gru_r2)
    is_flag = example[:, 1].bool()
    i_gate = lstm_trace["input gate i"].mean(1)
    z_gate = gru_trace["update gate z"].mean(1)
    assert i_gate[is_flag].mean() > i_gate[~is_flag].mean()
    assert z_gate[is_flag].mean() < z_gate[~is_flag].mean()

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
