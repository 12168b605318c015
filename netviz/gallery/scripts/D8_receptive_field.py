r"""
D8 · Receptive field growth
===========================

*Lecture topic:* Convolutional networks, dilation (notes 002, 004)

How many input cells one output unit sees after L stacked 3-wide
convolutions: plain (grows by 2 per layer, :math:`2L + 1`), stride 2, and
dilation 1, 2, 4, ... (both :math:`2^{L+1} - 1`, exponential; dilation keeps
the full resolution, the stride halves it each layer). The lines are
``netviz.layermath.receptive_field``; the markers are measured: the span of
input cells with a non-zero gradient for one output unit of the real
``nn.Conv1d`` stack. Right: the gradient of the centre unit of three
3x3-layer ``nn.Conv2d`` stacks (weights all one) on a 33x33 input, i.e.
how many paths lead from each input cell to it. For one unit the strided and
the dilated stack compute the same thing; the strided one just has far fewer
units.
"""

# %%
# Receptive fields from netviz's layer math, and measured with autograd.
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from netviz.gallery import setup
from netviz.layermath import receptive_field

setup()

max_depth = 5
length = 160


def stack(kind: str, depth: int, conv=nn.Conv1d) -> nn.Sequential:
    """``depth`` 3-wide convolutions with weights 1: plain, stride 2, or dilation 2^l."""
    layers = []
    for layer in range(depth):
        stride = 2 if kind == "stride 2" else 1
        dilation = 2**layer if kind == "dilation 1, 2, 4, ..." else 1
        conv_layer = conv(1, 1, 3, stride=stride, dilation=dilation, bias=False)
        nn.init.ones_(conv_layer.weight)
        layers.append(conv_layer)
    return nn.Sequential(*layers)


def gradient_support(net: nn.Module, shape: tuple[int, ...], unit: tuple[int, ...]) -> torch.Tensor:
    """Gradient of output ``unit`` with respect to the input (zeros outside its field)."""
    x = torch.zeros(1, 1, *shape, requires_grad=True)
    net(x)[(0, 0, *unit)].backward()
    assert x.grad is not None
    return x.grad[0, 0]


kinds = ["plain", "stride 2", "dilation 1, 2, 4, ..."]
depths = np.arange(1, max_depth + 1)
predicted = {
    k: [receptive_field(stack(k, max_depth), input_size=length)[d - 1] for d in depths]
    for k in kinds
}
predicted_size = {k: [rf.size for rf in v] for k, v in predicted.items()}
measured_size: dict[str, list[int]] = {}
measured_start: dict[str, list[int]] = {}
for kind in kinds:
    measured_size[kind], measured_start[kind] = [], []
    for d in depths:
        unit = 1  # output unit 1, so the field's position (start + jump) is checked too
        grad = gradient_support(stack(kind, int(d)), (length,), (unit,))
        support = torch.nonzero(grad).flatten()
        measured_size[kind].append(int(support.max() - support.min() + 1))
        measured_start[kind].append(int(support.min()))

depth_2d = 3
centre_grads, output_sizes_2d = {}, {}
for kind in kinds:
    net2d = stack(kind, depth_2d, conv=nn.Conv2d)
    size = 33
    out_size = net2d(torch.zeros(1, 1, size, size)).shape[-1]
    output_sizes_2d[kind] = (out_size, out_size)
    centre_grads[kind] = gradient_support(net2d, (size, size), (out_size // 2, out_size // 2))

# %%
# Size against depth, and the 2-D gradient maps.
fig = plt.figure(figsize=(12.8, 5.4))
grid = fig.add_gridspec(2, 4, width_ratios=[1.5, 1, 1, 1], height_ratios=[1, 0.05])
half = 8  # show 17x17 input cells around each field's centre, the same for all three
ax = fig.add_subplot(grid[:, 0])
markers = {"plain": "o", "stride 2": "s", "dilation 1, 2, 4, ...": "^"}
lines = {"plain": "-", "stride 2": "-", "dilation 1, 2, 4, ...": "--"}  # the last two coincide
for i, kind in enumerate(kinds):
    ax.plot(depths, predicted_size[kind], lines[kind], color=f"C{i}", lw=2.5 if i == 1 else 2,
            label=f"{kind} (layer math)")  # fmt: skip
    ax.plot(depths, measured_size[kind], markers[kind], color=f"C{i}", ms=9, mfc="none", mew=2,
            label=f"{kind} (measured)")  # fmt: skip
ax.set_xlabel("number of 3-wide conv layers L")
ax.set_ylabel("receptive field (input cells)")
ax.set_yscale("log", base=2)
ax.set_yticks([3, 5, 7, 11, 15, 31, 63], ["3", "5", "7", "11", "15", "31", "63"])
ax.set_xticks(depths)
ax.set_title("receptive field size")
ax.legend(loc="upper left", fontsize=9)
for j, kind in enumerate(kinds):
    ax = fig.add_subplot(grid[0, j + 1])
    support = torch.nonzero(centre_grads[kind])
    cy, cx = ((support.min(0).values + support.max(0).values) // 2).tolist()
    g = centre_grads[kind].numpy()[cy - half : cy + half + 1, cx - half : cx + half + 1]
    im = ax.imshow(np.ma.masked_equal(g, 0), cmap="viridis")
    ax.set_facecolor("0.93")
    for spine in ax.spines.values():
        spine.set_visible(False)
    last = receptive_field(stack(kind, depth_2d, conv=nn.Conv2d), input_size=(33, 33))[-1]
    field, out = last.size, last.output_size
    assert out == output_sizes_2d[kind]  # netviz's output size = the real module's
    ax.set_title(f"{kind}, L = {depth_2d}\nfield {field[0]}×{field[1]}, output {out[0]}×{out[1]}",
                 fontsize=11)  # fmt: skip
    ax.set_xticks([])
    ax.set_yticks([])
    cax = fig.add_subplot(grid[1, j + 1])
    fig.colorbar(im, cax=cax, orientation="horizontal", label="paths to the centre unit")
fig.suptitle("D8 · Receptive field growth: stacked, strided and dilated convolutions")
fig.tight_layout()

# %%
# Checks: netviz's receptive field equals the measured gradient support, in
# size and position, for every stack and depth; the closed forms hold.
for kind in kinds:
    assert predicted_size[kind] == measured_size[kind]
    assert [rf.start + 1 * rf.jump for rf in predicted[kind]] == measured_start[kind]
assert predicted_size["plain"] == [2 * d + 1 for d in depths]
assert predicted_size["stride 2"] == [2 ** (d + 1) - 1 for d in depths]
assert predicted_size["dilation 1, 2, 4, ..."] == [2 ** (d + 1) - 1 for d in depths]
for kind in kinds:  # the 2-D field is the square of the 1-D one
    support = torch.nonzero(centre_grads[kind])
    side = predicted_size[kind][depth_2d - 1]
    assert (support.max(0).values - support.min(0).values + 1).tolist() == [side, side]

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
