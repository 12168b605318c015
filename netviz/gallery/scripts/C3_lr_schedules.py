r"""
C3 · Learning-rate decay schedules
==================================

*Lecture topic:* Optimisation, training a neural network (notes 002)

"Which one of these learning rates is best to use? Learning rate decay over
time." The three schedules of the notes, produced by
``torch.optim.lr_scheduler``: step decay (halve every 25 epochs, ``StepLR``),
exponential decay :math:`\lambda_0 e^{-kt}` (``ExponentialLR`` with
:math:`\gamma = e^{-k}`) and :math:`1/t` decay :math:`\lambda_0 / (1 + kt)`
(``LambdaLR``). On the right, SGD with noisy gradients on the C1 bowl: a
constant rate stalls at a noise floor set by the rate, decayed rates keep
descending.
"""

# %%
# Schedules from PyTorch's schedulers, stepped once per epoch.
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from netviz.errors import NetvizValueError
from netviz.gallery import pick, setup

setup()

epochs = pick(100, 60)
lr0 = 0.1
step_size, step_gamma = 25, 0.5
k_exp = 0.03
k_inv = 0.1


def make_scheduler(name: str, opt: torch.optim.Optimizer):
    """The scheduler called ``name`` for optimizer ``opt``."""
    if name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=step_size, gamma=step_gamma)
    if name == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=math.exp(-k_exp))
    if name == "1/t":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1.0 + k_inv * t))
    raise NetvizValueError(
        f"unknown schedule {name!r}; use one of 'constant', 'step', 'exponential', '1/t'"
    )


schedule_names = ["constant", "step", "exponential", "1/t"]
labels = {
    "constant": f"constant λ0 = {lr0}",
    "step": f"step: ×{step_gamma} every {step_size} epochs",
    "exponential": f"exponential: λ0·exp(-{k_exp} t)",
    "1/t": f"1/t: λ0 / (1 + {k_inv} t)",
}


n_runs = 64  # independent noisy runs, optimised together (SGD is elementwise)


def noisy_sgd(name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Learning rate and mean loss per epoch of SGD on ``3 w1^2 + w2^2`` with noisy gradients."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.tensor([[1.0, 2.0]] * n_runs, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=lr0)
    sched = make_scheduler(name, opt)
    lrs, losses = [], []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.zero_grad()
        per_run = 3 * w[:, 0] ** 2 + w[:, 1] ** 2
        losses.append(per_run.mean().item())
        per_run.sum().backward()
        assert w.grad is not None
        w.grad += torch.randn(w.shape, generator=gen, dtype=torch.float64)  # minibatch noise
        opt.step()
        sched.step()
    return np.array(lrs), np.array(losses)


runs = {name: noisy_sgd(name) for name in schedule_names}
learning_rates = {name: lr for name, (lr, _) in runs.items()}
noisy_losses = {name: loss for name, (_, loss) in runs.items()}
# Stationary E[L] of constant-rate SGD with unit gradient noise: per coordinate of
# curvature h (L = h w^2 / 2), E[h w^2 / 2] = η / (2 (2 - η h)); here h = 6 and 2.
noise_floor = sum(lr0 / (2 * (2 - lr0 * h)) for h in (6.0, 2.0))

# %%
# The schedules and their effect.
fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=(12.8, 4.8))
t = np.arange(epochs)
styles = {"constant": ":", "step": "-", "exponential": "--", "1/t": "-."}
for name in schedule_names:
    ax.plot(t, learning_rates[name], styles[name], lw=2, label=labels[name])
    ax_loss.semilogy(t, noisy_losses[name], styles[name], lw=2, label=name)
ax_loss.axhline(noise_floor, color="0.4", lw=1)
ax_loss.annotate(
    "predicted noise floor of the constant rate",
    (epochs * 0.3, noise_floor * 1.45),
    color="0.3",
    va="bottom",
)
ax.set_xlabel("epoch t")
ax.set_ylabel("learning rate λ(t)")
ax.set_title("schedules (torch.optim.lr_scheduler)")
ax.legend()
ax_loss.set_xlabel("epoch t")
ax_loss.set_ylabel(f"L(w), mean of {n_runs} runs")
ax_loss.set_title("SGD with noisy gradients on L = 3 w1² + w2²")
ax_loss.legend()
fig.suptitle("C3 · Learning-rate decay schedules")
fig.tight_layout()

# %%
# Check the schedulers against the closed forms of the notes.
np.testing.assert_allclose(learning_rates["step"], lr0 * step_gamma ** (t // step_size), rtol=1e-12)
np.testing.assert_allclose(learning_rates["exponential"], lr0 * np.exp(-k_exp * t), rtol=1e-9)
np.testing.assert_allclose(learning_rates["1/t"], lr0 / (1 + k_inv * t), rtol=1e-12)
assert np.all(learning_rates["constant"] == lr0)
# Decay beats the noise floor of the constant rate (last 10 epochs, averaged).
tail = {name: loss[-10:].mean() for name, loss in noisy_losses.items()}
assert all(tail[name] < tail["constant"] for name in ["step", "exponential", "1/t"])

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
