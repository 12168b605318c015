"""
D13 · Attribution maps: saliency, integrated gradients, Grad-CAM
================================================================

*Lecture topic:* What does the network look at? (notes 002, 003)

Which pixels of a digit drive the small CNN's decision? *Saliency* is the
absolute gradient of the class score with respect to the input pixels.
*Integrated gradients* (Sundararajan et al. 2017) average the gradient along
the straight path from a black image to the digit and multiply by the pixel
values; the attributions add up to the change in the class score,
:math:`\\sum_i \\mathrm{IG}_i = f(x) - f(0)` (completeness). *Grad-CAM*
(Selvaraju et al. 2017) weighs the second conv layer's feature maps by their
mean gradient (ReLU of the sum) and upsamples the result to the digit. All three come from
``netviz.attribution`` (backed by Captum) and are drawn with
``netviz.plot.attribution``; red pixels push towards the predicted class,
blue ones away.
"""

# %%
# Train the shared digits CNN (scripts/_digits.py) and pick one test digit per
# class among the first ones.
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize

import netviz
from netviz.gallery import fast, pick, setup

setup()

if str(Path(__file__).resolve().parent) not in sys.path:  # the shared _digits.py beside this script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _digits import train_digits_cnn

model, data, losses = train_digits_cnn(steps=pick(150, 40))
examples = [int((data.y_test == c).nonzero()[0]) for c in (0, 2, 3, 4, 7, 9)]
inputs = data.x_test[examples]
with torch.no_grad():
    predicted = model(inputs).argmax(dim=1)

# %%
# netviz.attribution: saliency (``|d score / d pixel|``), integrated gradients
# from a black baseline and Grad-CAM on the second conv layer (16 maps of 8x8,
# the input's size, so its upsampling changes nothing here), all for the
# predicted class. With this flatten-and-linear head, Grad-CAM of the pooled
# 4x4 maps is negative almost everywhere (the ReLU leaves nothing): the mean
# gradient it weighs the maps with hides the sign changes of a linear head.
saliency = netviz.attribution(model, inputs, predicted, "saliency").attr
ig = netviz.attribution(model, inputs, predicted, "integrated_gradients", n_steps=pick(100, 50))
integrated_gradients, convergence_delta = ig.attr, ig.delta
cam = netviz.attribution(model, inputs, predicted, "grad_cam", layer=model[2])
grad_cam = cam.attr

# Independent references: the autograd gradient, and f(x) - f(baseline).
x = inputs.clone().requires_grad_(True)
scores = model(x).gather(1, predicted[:, None]).sum()
(manual_gradient,) = torch.autograd.grad(scores, x)
with torch.no_grad():
    score_gain = (
        model(inputs).gather(1, predicted[:, None])
        - model(torch.zeros_like(inputs)).gather(1, predicted[:, None])
    ).flatten()
ig_sums = integrated_gradients.sum(dim=(1, 2, 3))

# %%
# One column per digit: the input, its saliency, its integrated gradients and
# its Grad-CAM map over the digit. One colour scale per row (Grad-CAM: each
# map scaled to its own maximum, as Grad-CAM is usually shown).
saliency_max, ig_max = float(saliency.max()), float(integrated_gradients.abs().max())
fig, axes = plt.subplots(4, len(examples), figsize=(12.8, 8.6), layout="constrained")
for k in range(len(examples)):
    axes[0, k].imshow(inputs[k, 0].numpy(), cmap="gray_r", vmin=0, vmax=1)
    axes[0, k].set_xticks([])
    axes[0, k].set_yticks([])
    axes[0, k].spines[:].set_visible(False)
    axes[0, k].set_title(
        f"label {int(data.y_test[examples[k]])}, predicted {int(predicted[k])}", fontsize=11
    )
    netviz.plot.attribution(saliency[k], axes[1, k], kind="abs", vmax=saliency_max, colorbar=False)
    netviz.plot.attribution(
        integrated_gradients[k], axes[2, k], kind="signed", vmax=ig_max, colorbar=False
    )
    axes[2, k].set_xlabel(
        f"Σ IG = {ig_sums[k]:.2f}\nf(x) − f(0) = {score_gain[k]:.2f}", fontsize=10
    )
    netviz.plot.attribution(
        grad_cam[k] / grad_cam[k].max(),
        axes[3, k],
        image=inputs[k],
        kind="blend",
        vmax=1.0,
        colorbar=False,
    )
axes[0, 0].set_ylabel("input", fontsize=12)
axes[1, 0].set_ylabel("saliency |∂f/∂x|", fontsize=12)
axes[2, 0].set_ylabel("integrated\ngradients", fontsize=12)
axes[3, 0].set_ylabel("Grad-CAM, conv 2\n(over the digit)", fontsize=12)
fig.colorbar(axes[1, -1].images[-1], ax=axes[1, :], shrink=0.8, label="|gradient|")
fig.colorbar(axes[2, -1].images[-1], ax=axes[2, :], shrink=0.8, label="attribution")
fig.colorbar(
    ScalarMappable(Normalize(0, 1), "Reds"),
    ax=axes[3, :],
    shrink=0.8,
    label="Grad-CAM / its max",
)
fig.suptitle(
    "D13 · Attribution maps of the digits CNN (netviz.attribution, Captum): "
    "saliency, integrated gradients, Grad-CAM"
)

# %%
# Checks: saliency is the absolute autograd gradient; integrated gradients
# satisfy completeness (sum of attributions = f(x) - f(baseline)) up to the
# Riemann-sum error Captum reports as the convergence delta; Grad-CAM is
# non-negative (ReLU) and has the input's size.
assert torch.allclose(saliency, manual_gradient.abs(), atol=1e-6)
assert torch.allclose(ig_sums, score_gain, rtol=0.02, atol=0.05), (ig_sums, score_gain)
assert convergence_delta.abs().max() < 0.05 * score_gain.abs().max()
assert grad_cam.shape == inputs.shape and float(grad_cam.min()) >= 0
assert cam.layer_attr.shape == (len(examples), 1, 8, 8)
assert (grad_cam.flatten(1).max(dim=1).values > 0).all()  # every map shows something
if not fast():
    assert torch.equal(predicted, data.y_test[examples])

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
