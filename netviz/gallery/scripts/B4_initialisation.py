r"""
B4 · Initialisation and the activations per layer
=================================================

*Lecture topic:* Weight initialisation, Xavier and He (notes 002)

A 10-layer network (256 units per layer) on standard normal inputs, with three
initialisations of the weights (biases zero): small constants
:math:`w \sim \mathcal N(0, 0.01^2)`, Xavier :math:`\mathrm{var}(w) = 1/\mathrm{fan_{in}}`
and He :math:`\mathrm{var}(w) = 2/\mathrm{fan_{in}}`, each with tanh and ReLU.
Small weights make the activations collapse to zero layer after layer; Xavier
keeps tanh alive but halves the variance of a ReLU net at every layer (ReLU
zeroes half of its input); He's factor 2 exactly compensates, so that
:math:`E[x_l^2]` stays constant with depth. Histograms from
``netviz.capture_activations``, standard deviations from
``netviz.watch(probes="activation_stats")``.
"""

# %%
# The networks and the three initialisations.
import matplotlib.pyplot as plt
import torch
from torch import nn

import netviz
from netviz.gallery import pick, setup

setup()

depth, width = 10, 256
inputs = torch.randn(pick(1000, 200), width)
inits = {
    "small $\\mathcal{N}(0, 0.01^2)$": lambda w: nn.init.normal_(w, 0.0, 0.01),
    "Xavier: var $= 1/n_{in}$": lambda w: nn.init.xavier_normal_(w),  # 2/(in+out) = 1/n for square
    "He: var $= 2/n_{in}$": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
}
nonlinearities = {"tanh": nn.Tanh, "ReLU": nn.ReLU}


def make_net(act: type[nn.Module], init) -> nn.Sequential:
    layers = []
    for _ in range(depth):
        lin = nn.Linear(width, width)
        init(lin.weight)
        nn.init.zeros_(lin.bias)
        layers += [lin, act()]
    return nn.Sequential(*layers)


# %%
# One forward pass per network: the activation statistics with netviz.watch,
# the raw activations (for the histograms) with netviz.capture_activations.
activation_std, histograms = {}, {}
for act_name, act in nonlinearities.items():
    for init_name, init in inits.items():
        net = make_net(act, init)
        with torch.no_grad():
            with netviz.watch(net, probes="activation_stats", modules=act) as monitor:
                net(inputs)
                monitor.step()
            acts = netviz.capture_activations(net, inputs, modules=act)
        rec = monitor.to_pandas()
        std = rec[rec.stat == "std"].set_index("module").value
        names = [str(2 * i + 1) for i in range(depth)]  # the activation modules in order
        activation_std[act_name, init_name] = std[names].to_numpy()
        # ReLU outputs are zero for half of the inputs: histogram the positive part,
        # else the spike at 0 flattens every other bin.
        keep = (lambda a: a[a > 0]) if act is nn.ReLU else (lambda a: a)
        histograms[act_name, init_name] = {
            f"layer {i + 1}": keep(acts[n]) for i, n in enumerate(names)
        }

fig, axes = plt.subplots(2, 3, figsize=(12.8, 9.0))
for r, act_name in enumerate(nonlinearities):
    for c, init_name in enumerate(inits):
        ax = axes[r, c]
        netviz.plot.activation_distributions(histograms[act_name, init_name], ax=ax, bins=50)
        std = activation_std[act_name, init_name]
        what = " (values > 0)" if act_name == "ReLU" else ""
        ax.set_title(
            f"{act_name}{what}, {init_name}\nstd: layer 1 {std[0]:.2g}, layer 10 {std[-1]:.2g}",
            fontsize=10,
        )
        ax.tick_params(axis="y", labelsize=8)
        if c:
            ax.set_yticklabels([])
fig.suptitle("B4 · Initialisation and the activations per layer")
fig.tight_layout()

# %%
# Small weights: the signal vanishes (tanh: x0.16 per layer). Xavier + ReLU:
# the std halves in variance per layer (1/sqrt(2) in std). He + ReLU: constant.
std_ratio = {k: float(v[-1] / v[0]) for k, v in activation_std.items()}
small, xavier, he = inits
assert std_ratio["tanh", small] < 1e-6 and std_ratio["ReLU", small] < 1e-6
assert 0.01 < std_ratio["ReLU", xavier] < 0.1  # (1/sqrt 2)^9 = 0.044
assert 0.5 < std_ratio["ReLU", he] < 2.0
assert activation_std["tanh", xavier][-1] > 0.1

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
