"""
D9 · Learned filters and feature maps of a small CNN
====================================================

*Lecture topic:* Convolutional networks, visualising the weights (notes 002, 003)

The small digits CNN (8 then 16 filters of 3x3, max pooling, one linear layer)
after training. Left: its 8 first-layer filters, drawn with
``netviz.plot.filters`` from ``netviz.conv_filter_weights``; like AlexNet's first
layer they are small edge and stroke detectors (red positive, blue negative
weights). Right: what one test digit looks like after each layer, captured in
one forward pass with ``netviz.capture_activations`` and drawn with
``netviz.plot.feature_maps``: each filter lights up the strokes of its
orientation, ReLU keeps the positive part, pooling halves the resolution.
"""

# %%
# Train the shared digits CNN (scripts/_digits.py).
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import netviz
from netviz.gallery import fast, pick, setup

setup()

if str(Path(__file__).resolve().parent) not in sys.path:  # the shared _digits.py beside this script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _digits import train_digits_cnn

model, data, losses = train_digits_cnn(steps=pick(150, 40))
with torch.no_grad():
    test_accuracy = (model(data.x_test).argmax(1) == data.y_test).float().mean().item()

# %%
# Filters of the first convolution, and every layer's output for one digit.
first_filters = netviz.conv_filter_weights(model[0])  # (8, 1, 3, 3)
digit = data.x_test[:1]
with torch.no_grad():
    activations = netviz.capture_activations(model, digit, modules=["0", "1", "2", "3", "4"])
layer_names = {"0": "conv1", "1": "ReLU", "2": "conv2", "3": "ReLU", "4": "max pool"}
shown_maps = {f"{layer_names[k]} [{k}]": v for k, v in activations.items()}

# %%
# One figure: the digit, the filters, the feature maps.
fig = plt.figure(figsize=(12.8, 7.2), layout="constrained")
left, right = fig.subfigures(1, 2, squeeze=False, width_ratios=[1, 2.3])[0]
top_left, bottom_left = left.subfigures(2, 1, squeeze=False, height_ratios=[1.8, 1])[:, 0]
ax_digit = top_left.subplots()
ax_digit.imshow(digit[0, 0].numpy(), cmap="gray_r", vmin=0, vmax=1)
ax_digit.set_axis_off()
ax_digit.set_title(f"input: a test digit (label {int(data.y_test[0])})")
netviz.plot.filters(model[0], ax=bottom_left.subplots(), ncols=4, title="first-layer filters (3x3)")
map_grid = netviz.plot.feature_maps(shown_maps, ax=right.subplots(), max_channels=8)
for row in map_grid.axes:
    row[0].yaxis.label.set_fontsize(10)
right.suptitle("feature maps, first 8 channels per layer", fontsize=12)
fig.suptitle(
    f"D9 · Learned filters and feature maps of a small digits CNN (test accuracy {test_accuracy:.0%})"
)

# %%
# Checks: netviz's filters are the module's weights; the captured conv1 output
# is the convolution of the digit with those filters (computed here with
# F.conv2d), and the shapes follow the layer arithmetic (8x8 -> 8x8 -> 4x4).
assert torch.equal(first_filters, model[0].weight.detach())
expected_conv1 = F.conv2d(digit, model[0].weight, model[0].bias, padding=1)
assert torch.allclose(activations["0"], expected_conv1, atol=1e-6)
assert torch.equal(activations["1"], expected_conv1.clamp_min(0))
assert [tuple(v.shape[1:]) for v in activations.values()] == [
    (8, 8, 8),
    (8, 8, 8),
    (16, 8, 8),
    (16, 8, 8),
    (16, 4, 4),
]
if not fast():
    assert test_accuracy > 0.95, test_accuracy

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
