"""
D10 · Batch norm: activations and training curves
=================================================

*Lecture topic:* Batch norm, "with and without batchnorm" (notes 000)

A scaled-down version of the lecture's ResNet-18/CIFAR-10 experiment: the same
deep MLP (4 hidden layers of 64 ReLU units) on the 8x8 scikit-learn digits,
with and without :class:`torch.nn.BatchNorm1d` before each ReLU, same
initialisation, same SGD steps. ``netviz.watch`` records every ReLU's output
statistics at every step. With PyTorch's default initialisation the plain
network's activations shrink layer after layer and its loss sits on a plateau
before it starts falling; with batch norm every pre-activation has zero mean
and unit variance over the batch, the scale is the same in every layer, and
the loss falls at once.
"""

# %%
# Data and the two models.
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

import netviz
from netviz.gallery import fast, pick, setup
from netviz.plot.theme import PALETTE

setup()

digits = load_digits()
inputs = torch.tensor(digits.data, dtype=torch.float32) / 16.0
targets = torch.tensor(digits.target)
depth, width = 4, 64
train_steps = pick(150, 30)
batch_size = 128


def make_mlp(batch_norm: bool) -> nn.Sequential:
    torch.manual_seed(0)  # identical Linear weights in both models
    layers: list[nn.Module] = []
    fan_in = 64
    for _ in range(depth):
        layers.append(nn.Linear(fan_in, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU())
        fan_in = width
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def train(model: nn.Sequential):
    """SGD on minibatches; per-step loss and netviz's activation_stats records."""
    generator = torch.Generator().manual_seed(1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    with netviz.watch(model, probes="activation_stats", modules=nn.ReLU, optimizer=opt) as monitor:
        for _ in range(train_steps):
            idx = torch.randint(0, len(inputs), (batch_size,), generator=generator)
            loss = F.cross_entropy(model(inputs[idx]), targets[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()  # closes the monitor's step
            losses.append(loss.item())
    return losses, monitor.to_pandas()


plain, with_bn = make_mlp(False), make_mlp(True)
plain_loss, plain_records = train(plain)
bn_loss, bn_records = train(with_bn)

# %%
# Per-layer standard deviation of the ReLU outputs, first and last step.


def layer_std(records, step: int) -> list[float]:
    """Std of each ReLU's output at ``step``, input side first (modules are "1", "3", ...)."""
    rows = records[(records.stat == "std") & (records.step == step)]
    by_module = dict(zip(rows.module, rows.value))
    return [float(by_module[name]) for name in sorted(by_module, key=int)]


first, last = 0, train_steps - 1
plain_std_first, plain_std_last = layer_std(plain_records, first), layer_std(plain_records, last)
bn_std_first, bn_std_last = layer_std(bn_records, first), layer_std(bn_records, last)

# Pre-activations of a fixed batch after training, for the distribution plot.
plain.eval()
with_bn.eval()
with torch.no_grad():
    # The input of each ReLU: the Linear output, or the BatchNorm1d output.
    plain_pre = netviz.capture_activations(plain, inputs[:512], modules=nn.Linear)
    bn_pre = netviz.capture_activations(with_bn, inputs[:512], modules=nn.BatchNorm1d)
    plain_accuracy = (plain(inputs).argmax(1) == targets).float().mean().item()
    bn_accuracy = (with_bn(inputs).argmax(1) == targets).float().mean().item()
plain_acts = {f"layer {i + 1}": t for i, t in enumerate(list(plain_pre.values())[:depth])}
bn_acts = {f"layer {i + 1}": t for i, t in enumerate(bn_pre.values())}

# %%
# Top: training loss, and each ReLU's output std from netviz's records at the
# first and last step. Bottom: the distribution of each layer's activations
# pre-activations after training (``netviz.plot.activation_distributions``).
fig = plt.figure(figsize=(12.8, 7.2), layout="constrained")
top, bottom = fig.subfigures(2, 1, squeeze=False, height_ratios=[1, 1.15])[:, 0]
ax_loss, ax_std = top.subplots(1, 2)
colours = {"plain": PALETTE[3], "bn": PALETTE[0]}
ax_loss.plot(
    plain_loss, color=colours["plain"], label=f"no batch norm (train acc. {plain_accuracy:.0%})"
)
ax_loss.plot(bn_loss, color=colours["bn"], label=f"with batch norm (train acc. {bn_accuracy:.0%})")
ax_loss.set_xlabel("SGD step")
ax_loss.set_ylabel("cross-entropy (minibatch)")
ax_loss.set_title("training curves")
ax_loss.legend()

layers = range(1, depth + 1)
ax_std.plot(layers, plain_std_first, "o--", color=colours["plain"], label="no BN, step 0")
ax_std.plot(layers, plain_std_last, "o-", color=colours["plain"], label=f"no BN, step {last}")
ax_std.plot(layers, bn_std_first, "s--", color=colours["bn"], label="BN, step 0")
ax_std.plot(layers, bn_std_last, "s-", color=colours["bn"], label=f"BN, step {last}")
ax_std.set_yscale("log")
ax_std.set_xticks(list(layers))
ax_std.set_xlabel("hidden layer (ReLU output)")
ax_std.set_ylabel("activation std (netviz.watch)")
ax_std.set_title("activation scale per layer")
ax_std.legend(ncols=2, fontsize=9)

ax_plain, ax_bn = bottom.subplots(1, 2, sharex=True)
netviz.plot.activation_distributions(plain_acts, ax=ax_plain, range=(-4.0, 4.0))
netviz.plot.activation_distributions(bn_acts, ax=ax_bn, range=(-4.0, 4.0))
ax_plain.set_title("ReLU inputs after training: Linear outputs (no BN)")
ax_bn.set_title("ReLU inputs after training: BatchNorm1d outputs")
fig.suptitle("D10 · Batch norm: same MLP, same steps, with and without BatchNorm1d")

# %%
# Checks. With batch norm each pre-activation is normalised over the batch
# (zero mean, unit variance), so a ReLU of it has std sqrt(1/2 - 1/(2 pi))
# = 0.58 at step 0 in every layer; without it the scale shrinks with depth.
# After full training batch norm reaches a lower loss.
relu_of_normal_std = (0.5 - 1 / (2 * torch.pi)) ** 0.5
assert all(abs(s - relu_of_normal_std) < 0.08 for s in bn_std_first), bn_std_first
assert plain_std_first[-1] < 0.5 * plain_std_first[0], plain_std_first
if not fast():
    tail = 20
    assert sum(bn_loss[-tail:]) < sum(plain_loss[-tail:]), (bn_loss[-tail:], plain_loss[-tail:])

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
