r"""
B5 · RNN gradients through time
===============================

*Lecture topic:* Recurrent networks, vanishing and exploding gradients (notes 001, 003)

Back-propagation through time multiplies the gradient by the recurrent
Jacobian :math:`\partial h_{t+1}/\partial h_t = \mathrm{diag}(\tanh')\,W_{hh}`
once per step. With the recurrent matrix :math:`W_{hh} = s\,Q` (:math:`Q`
orthogonal, so every singular value is :math:`s`) and the tanh in its linear
range, :math:`\lVert \partial L/\partial h_t \rVert \approx s^{T-1-t}\,\lVert
\partial L/\partial h_{T-1} \rVert`: it vanishes towards the first steps for
:math:`s < 1` and explodes for :math:`s > 1`. An LSTM whose forget gates start nearly
open (bias 3, :math:`\sigma(3) = 0.95`) carries the gradient back through its
additive cell state and keeps it far more level. The norms come from netviz's ``timestep_grad`` probe.
"""

# %%
# Three recurrent nets on the same input sequence; the loss reads the last
# output only, so any gradient at earlier steps came through the recurrence.
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

import netviz
from netviz.gallery import pick, setup

setup()

seq_len, batch, n_in, hidden = 30, pick(16, 8), 4, 32
inputs = 1e-3 * torch.randn(seq_len, batch, n_in)  # small: tanh stays in its linear range
readout = torch.randn(hidden)


def vanilla_rnn(scale: float) -> nn.RNN:
    rnn = nn.RNN(n_in, hidden, nonlinearity="tanh")
    q, _ = torch.linalg.qr(torch.randn(hidden, hidden))
    with torch.no_grad():
        rnn.get_parameter("weight_hh_l0").copy_(scale * q)
        rnn.get_parameter("bias_hh_l0").zero_()
        rnn.get_parameter("bias_ih_l0").zero_()
    return rnn


lstm = nn.LSTM(n_in, hidden)
with torch.no_grad():  # forget gates start nearly open, sigmoid(3) = 0.95; gate order i, f, g, o
    lstm.get_parameter("bias_ih_l0")[hidden : 2 * hidden].fill_(3.0)
nets = {
    "RNN, $s = 0.8$ (vanishing)": vanilla_rnn(0.8),
    "RNN, $s = 1.2$ (exploding)": vanilla_rnn(1.2),
    "LSTM, forget bias 3": lstm,
}
records, grad_norms = {}, {}
for name, net in nets.items():
    with netviz.watch(net, probes="timestep_grad") as monitor:
        output, _ = net(inputs)
        loss = (output[-1] @ readout).sum()
        loss.backward()
        monitor.step()
    rec = monitor.to_pandas()
    records[name] = rec
    grad_norms[name] = rec.sort_values("call").value.to_numpy()  # call = time step t

# %%
# The norms on a log scale, with the s^(T-1-t) prediction for the RNNs.
fig, ax = plt.subplots(figsize=(9.6, 5.4))
first, *rest = nets
netviz.plot.timestep_gradients(
    records[first], ax=ax, label=first, compare={k: records[k] for k in rest}
)
t = np.arange(seq_len)
for name, s in [(first, 0.8), (rest[0], 1.2)]:
    ax.plot(t, grad_norms[name][-1] * s ** (seq_len - 1 - t), ls=":", color="0.3", lw=1.5)
ax.plot([], [], ls=":", color="0.3", label=r"prediction $s^{T-1-t}$")
ax.legend(fontsize=9)
ax.set_title(r"$\|\partial L / \partial h_t\|$ through time, loss on the last step only")
fig.suptitle("B5 · RNN gradients through time")
fig.tight_layout()

# %%
# The gradient at t = 0 relative to t = T-1 follows s^(T-1) (0.8^29 = 1.5e-3,
# 1.2^29 = 197) within a few percent; the LSTM's falls far less than the
# vanishing RNN's.
decay = {name: float(g[0] / g[-1]) for name, g in grad_norms.items()}
assert all(len(g) == seq_len for g in grad_norms.values())
assert abs(decay[first] / 0.8 ** (seq_len - 1) - 1) < 0.05
assert abs(decay[rest[0]] / 1.2 ** (seq_len - 1) - 1) < 0.05
assert decay[first] < 1e-2 < 1e2 < decay[rest[0]]
assert decay[rest[1]] > 10 * decay[first]

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
