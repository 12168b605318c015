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
# One small panel per optimizer (its path in colour, the others in faint grey
# for comparison), and the loss per step of all five with distinct hues and
# dash styles.
fig = plt.figure(figsize=(12.8, 7.6), layout="constrained")
gs = fig.add_gridspec(2, 3)
colours = ["#0173b2", "#de8f05", "#029e73", "#cc78bc", "black"]  # blue, orange, green, pink, black
dashes = ["-", "--", "-.", ":", (0, (6, 1.5, 1, 1.5))]
markers = ["o", "s", "^", "D", "v"]
g1, g2 = np.meshgrid(np.linspace(-3.4, 3.4, 241), np.linspace(-2.4, 2.4, 181))
path_axes: list[plt.Axes] = []
for k, (name, p) in enumerate(paths.items()):
    row, col = divmod(k, 3)
    share = path_axes[0] if path_axes else None
    ax = fig.add_subplot(gs[row, col], sharex=share, sharey=share)
    path_axes.append(ax)
    ax.contour(
        g1, g2, 3 * g1**2 + g2**2, levels=[0.25, 1, 2, 4, 7, 11, 16, 22, 29, 37], colors="0.85"
    )
    for other, q in paths.items():
        if other != name:
            ax.plot(q[:, 0], q[:, 1], color="0.6", lw=0.8, alpha=0.6)
    ax.plot(p[:, 0], p[:, 1], color=colours[k], marker=markers[k], ms=3, lw=1.6)
    ax.plot(*start, "ks", ms=6)
    ax.plot(0, 0, "k*", ms=11)
    ax.set_aspect("equal")
    ax.set_title(name, fontsize=11, color=colours[k])
    if row == 1 or col == 2:
        ax.set_xlabel("w1 (steep)")
    if col == 0:
        ax.set_ylabel("w2 (shallow)")
path_axes[0].set_xlim(-3.4, 3.4)
path_axes[0].set_ylim(-2.4, 2.4)
ax_loss = fig.add_subplot(gs[1, 2])
for k, (name, loss) in enumerate(losses.items()):
    ax_loss.semilogy(loss, color=colours[k], ls=dashes[k], lw=1.8, label=name.split(" (")[0])
ax_loss.set_xlabel("step")
ax_loss.set_ylabel("L(w)")
ax_loss.set_title("loss per step", fontsize=11)
ax_loss.legend(loc="lower left", fontsize=9)
fig.suptitle(
    f"C2 · Momentum, AdaGrad, RMSProp and Adam on L(w) = 3 w1² + w2², "
    f"{steps} steps from w0 = {start} (grey: the other paths)"
)

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

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
