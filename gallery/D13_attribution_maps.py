"""
D13 · Attribution maps: saliency and integrated gradients
=========================================================

*Lecture topic:* What does the network look at? (notes 002, 003)

Which pixels of a digit drive the small CNN's decision? *Saliency* is the
absolute gradient of the class score with respect to the input pixels.
*Integrated gradients* (Sundararajan et al. 2017) average the gradient along
the straight path from a black image to the digit and multiply by the pixel
values; the attributions add up to the change in the class score,
:math:`\\sum_i \\mathrm{IG}_i = f(x) - f(0)` (completeness). Both are computed
with Captum; red pixels push towards the predicted class, blue ones away.
"""

# %%
# Train the shared digits CNN (gallery/_digits.py) and pick one test digit per
# class among the first ones.
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from captum.attr import IntegratedGradients, Saliency

from netviz.gallery import fast, pick, setup
from netviz.plot._style import CMAP_DIVERGING

setup()

if str(Path(__file__).resolve().parent) not in sys.path:  # the shared gallery/_digits.py
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _digits import train_digits_cnn

model, data, losses = train_digits_cnn(steps=pick(150, 40))
examples = [int((data.y_test == c).nonzero()[0]) for c in (0, 2, 3, 4, 7, 9)]
inputs = data.x_test[examples]
with torch.no_grad():
    predicted = model(inputs).argmax(dim=1)

# %%
# Captum: saliency (``|d score / d pixel|``) and integrated gradients from a black
# baseline, for the predicted class.
inputs.requires_grad_(True)
saliency = Saliency(model).attribute(inputs, target=predicted)
integrated_gradients, convergence_delta = IntegratedGradients(model).attribute(
    inputs,
    baselines=torch.zeros_like(inputs),
    target=predicted,
    n_steps=pick(100, 50),
    return_convergence_delta=True,
)

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
# One column per digit: the input, its saliency, its integrated gradients.
inputs = inputs.detach()
saliency, integrated_gradients = saliency.detach(), integrated_gradients.detach()
saliency_max, ig_max = float(saliency.max()), float(integrated_gradients.abs().max())
inputs = inputs.detach()
saliency, integrated_gradients = saliency.detach(), integrated_gradients.detach()
saliency_max, ig_max = float(saliency.max()), float(integrated_gradients.abs().max())
fig, axes = plt.subplots(3, len(examples), figsize=(12.8, 7.2), layout="constrained")
for k in range(len(examples)):
    axes[0, k].imshow(inputs[k, 0].numpy(), cmap="gray_r", vmin=0, vmax=1)
    axes[0, k].set_title(
        f"label {int(data.y_test[examples[k]])}, predicted {int(predicted[k])}", fontsize=11
    )
    sal = axes[1, k].imshow(saliency[k, 0].numpy(), cmap="viridis", vmin=0, vmax=saliency_max)
    ig = axes[2, k].imshow(
        integrated_gradients[k, 0].numpy(), cmap=CMAP_DIVERGING, vmin=-ig_max, vmax=ig_max
    )
    axes[2, k].set_xlabel(
        f"Σ IG = {ig_sums[k]:.2f}\nf(x) − f(0) = {score_gain[k]:.2f}", fontsize=10
    )
    for a in axes[:, k]:
        a.set_xticks([])
        a.set_yticks([])
axes[0, 0].set_ylabel("input", fontsize=12)
axes[1, 0].set_ylabel("saliency |∂f/∂x|", fontsize=12)
axes[2, 0].set_ylabel("integrated gradients", fontsize=12)
fig.colorbar(sal, ax=axes[1, :], shrink=0.8, label="|gradient|")
fig.colorbar(ig, ax=axes[2, :], shrink=0.8, label="attribution")
fig.suptitle("D13 · Attribution maps of the digits CNN (Captum): saliency and integrated gradients")

# %%
# Checks: Captum's saliency is the absolute autograd gradient; integrated
# gradients satisfy completeness (sum of attributions = f(x) - f(baseline))
# up to the Riemann-sum error Captum reports as the convergence delta.
assert torch.allclose(saliency, manual_gradient.abs(), atol=1e-6)
assert torch.allclose(ig_sums, score_gain, rtol=0.02, atol=0.05), (ig_sums, score_gain)
assert convergence_delta.abs().max() < 0.05 * score_gain.abs().max()
if not fast():
    assert torch.equal(predicted, data.y_test[examples])
