r"""
B6 · Residual blocks keep the gradient alive
============================================

*Lecture topic:* Residual networks, the skip connection (notes 001, 004)

Twenty blocks of ``Linear -> ReLU -> Linear`` (64 units, PyTorch's default
initialisation), stacked plainly, :math:`x_{l+1} = \mathrm{ReLU}(F_l(x_l))`,
or as residual blocks, :math:`x_{l+1} = \mathrm{ReLU}(x_l + F_l(x_l))`. The
identity shortcut adds a term 1 to each block's Jacobian, so the gradient
reaches the first block about as strong as the last; without it the gradient
shrinks by a constant factor per block and the first blocks get almost
nothing. The plain stack's vanishing comes from PyTorch's default
initialisation (``nn.Linear``'s uniform weights of variance 1/(3 fan_in),
a sixth of He's 2/fan_in for ReLU), as the figure's title says. Gradient
norms of each block's first layer over several batches, recorded with
``netviz.watch(probes="grad_norm")``.
"""

# %%
# The two networks (same weights) and a regression loss on random batches.
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

import netviz
from netviz.gallery import pick, setup

setup()

n_blocks, width = 20, 64


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class DeepNet(nn.Module):
    def __init__(self, residual: bool):
        super().__init__()
        self.residual = residual
        self.blocks = nn.ModuleList(Block() for _ in range(n_blocks))
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = torch.relu(x + block(x)) if self.residual else torch.relu(block(x))
        return self.head(x).squeeze(-1)


nets = {"plain": DeepNet(residual=False), "residual": DeepNet(residual=True)}
nets["residual"].load_state_dict(nets["plain"].state_dict())  # identical weights
n_batches = pick(20, 5)
batches = [(torch.randn(128, width), torch.randn(128)) for _ in range(n_batches)]

records = {}
for name, net in nets.items():
    with netviz.watch(net, probes="grad_norm", modules="blocks.*.fc1") as monitor:
        for xb, yb in batches:
            net.zero_grad()
            nn.functional.mse_loss(net(xb), yb).backward()
            monitor.step()
    rec = monitor.to_pandas()
    rec["module"] = rec.module.str.replace(".fc1", "", regex=False)  # "blocks.3" -> per block
    records[name] = rec

block_order = [f"blocks.{i}" for i in range(n_blocks)]
median_norm = {
    name: r.groupby("module").value.median()[block_order].to_numpy() for name, r in records.items()
}
first_to_last = {name: float(m[0] / m[-1]) for name, m in median_norm.items()}

# %%
# Per block: the distribution over batches of the gradient norm.
fig, ax = plt.subplots(figsize=(12.8, 5.4))
netviz.plot.gradient_flow(
    records["plain"],
    ax=ax,
    label="plain",
    compare={"residual (identity shortcut)": records["residual"]},
)
ax.set_xticks(np.arange(n_blocks), [str(i + 1) for i in range(n_blocks)], rotation=0)
ax.set_xlabel("block (input → output)")
ax.set_ylabel("gradient norm of the block's first layer")
ax.set_title(
    f"first / last block: plain {first_to_last['plain']:.1e}, "
    f"residual {first_to_last['residual']:.2g}"
)
fig.suptitle(
    "B6 · Residual blocks keep the gradient alive "
    "(20 blocks, PyTorch's default initialisation: the plain stack's gradient vanishes)"
)
fig.tight_layout()

# %%
# Without shortcuts the first block's gradient is orders of magnitude below
# the last block's; with them it is of the same order.
assert first_to_last["plain"] < 1e-3
assert 0.1 < first_to_last["residual"] < 10

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
