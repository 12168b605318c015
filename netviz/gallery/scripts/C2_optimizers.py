r"""
C2 · Momentum, AdaGrad, RMSProp and Adam
========================================

*Lecture topic:* Optimisation, optimizers (notes 000, 002)

The same bowl :math:`L(w) = 3 w_1^2 + w_2^2` as in C1, started from one point
and minimised with ``torch.optim``'s SGD, SGD with momentum, Adagrad, RMSprop
and Adam. Momentum low-pass filters the gradient (it builds up speed along the
shallow :math:`w_2` direction and overshoots); the adaptive methods divide each
coordinate's step by a running size of its own gradient, so their first steps
move both coordinates by the same amount, whatever the slope: they head
diagonally instead of straight down the steep :math:`w_1` wall.
"""

# %%
# One run per optimizer from the same start; autograd gives the gradient.
import matplotlib.pyplot as plt
import numpy as np
import torch

from netviz.gallery import setup

setup()


def loss_fn(w: torch.Tensor) -> torch.Tensor:
    """:math:`L(w) = 3 w_1^2 + w_2^2`."""
    return 3 * w[0] ** 2 + w[1] ** 2


def descend(make_optimizer, steps: int, start: tuple[float, float]) -> np.ndarray:
    """Iterates ``w_0 .. w_steps`` of the optimizer built by ``make_optimizer([w])``."""
    w = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = make_optimizer([w])
    path = [w.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(w).backward()
        opt.step()
        path.append(w.detach().clone())
    return torch.stack(path).numpy()


start = (-3.0, 2.0)
steps = 50
lr_sgd = 0.02
momentum = 0.9
rmsprop_alpha = 0.9
optimizers = {
    f"SGD (η = {lr_sgd})": lambda p: torch.optim.SGD(p, lr=lr_sgd),
    f"momentum (η = {lr_sgd}, μ = {momentum})": lambda p: torch.optim.SGD(
        p, lr=lr_sgd, momentum=momentum
    ),
    "AdaGrad (η = 0.5)": lambda p: torch.optim.Adagrad(p, lr=0.5),
    f"RMSProp (η = 0.1, γ = {rmsprop_alpha})": lambda p: torch.optim.RMSprop(
        p, lr=0.1, alpha=rmsprop_alpha
    ),
    "Adam (η = 0.25)": lambda p: torch.optim.Adam(p, lr=0.25),
}
paths = {name: descend(make, steps, start) for name, make in optimizers.items()}
losses = {name: 3 * p[:, 0] ** 2 + p[:, 1] ** 2 for name, p in paths.items()}
# First update of every optimizer, per coordinate (w1, w2).
first_steps = {name: p[1] - p[0] for name, p in paths.items()}
start_gradient = np.array([6 * start[0], 2 * start[1]])

# %%
# Paths on the contours, and the loss per step.
fig, (ax, ax_loss) = plt.subplots(
    1, 2, figsize=(12.8, 5.2), gridspec_kw={"width_ratios": [1.45, 1]}
)
g1, g2 = np.meshgrid(np.linspace(-3.4, 3.4, 241), np.linspace(-2.4, 2.4, 181))
ax.contour(g1, g2, 3 * g1**2 + g2**2, levels=[0.25, 1, 2, 4, 7, 11, 16, 22, 29, 37], colors="0.75")
markers = ["o", "s", "^", "D", "v"]
widths = [1.5, 1.5, 5, 1.5, 1.5]  # AdaGrad wide and underneath: RMSProp starts on the same line
for (name, p), mk, lw in zip(paths.items(), markers, widths):
    ax.plot(p[:, 0], p[:, 1], marker=mk, ms=3.5 if lw < 2 else 6, lw=lw, label=name)
ax.plot(*start, "ks", ms=7)
ax.plot(0, 0, "k*", ms=12)
ax.set_xlim(-3.4, 3.4)
ax.set_ylim(-2.4, 2.4)
ax.set_aspect("equal")
ax.set_xlabel("w1 (steep: ∂L/∂w1 = 6 w1)")
ax.set_ylabel("w2 (shallow: ∂L/∂w2 = 2 w2)")
ax.set_title(f"paths from w0 = {start}, {steps} steps")
ax.legend(loc="lower right", framealpha=0.9)
for (name, loss), mk in zip(losses.items(), markers):
    ax_loss.semilogy(loss, marker=mk, ms=3, lw=1.4, markevery=4, label=name.split(" (")[0])
ax_loss.set_xlabel("step")
ax_loss.set_ylabel("L(w)")
ax_loss.set_title("loss per step")
ax_loss.legend(loc="lower left")
fig.suptitle("C2 · Momentum, AdaGrad, RMSProp and Adam on L(w) = 3 w1² + w2²")
fig.tight_layout()

# %%
# Checks. Adaptive methods normalise per coordinate: their first step has the
# same size along w1 and w2 although the gradient is 9x larger along w1
# (Adam and AdaGrad: η·sign(g); RMSProp: η/sqrt(1-γ)·sign(g)). Plain SGD steps
# along -η g. Momentum accelerates SGD at the same learning rate.
names = list(optimizers)
sgd, mom, ada, rms, adam = (first_steps[n] for n in names)
np.testing.assert_allclose(sgd, -lr_sgd * start_gradient, rtol=1e-12)
np.testing.assert_allclose(mom, -lr_sgd * start_gradient, rtol=1e-12)  # no velocity yet
np.testing.assert_allclose(ada, -0.5 * np.sign(start_gradient), rtol=1e-8)
np.testing.assert_allclose(adam, -0.25 * np.sign(start_gradient), rtol=1e-8)
np.testing.assert_allclose(
    rms, -0.1 / np.sqrt(1 - rmsprop_alpha) * np.sign(start_gradient), rtol=1e-6
)
assert all(loss.min() < 1e-2 * loss[0] for loss in losses.values())  # all make progress
# Momentum gets 10x lower than plain SGD at the same η, for all its overshooting.
assert losses[names[1]].min() < 0.1 * losses[names[0]].min()
