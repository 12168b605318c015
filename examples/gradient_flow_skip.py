"""Gradient per layer of the 7-layer sigmoid network, without and with skip connections.

Trains both networks of ``examples/sigmoid7.py`` on two circles for a few
hundred Adam steps while ``netviz.watch`` records each layer's gradient norm,
then draws the distribution over the steps per layer side by side (the
lecture's "gradient distribution with respect to layers").

Writes ``docs/img/gradient_flow_skip.png`` (or the path given as argument)::

    python examples/gradient_flow_skip.py [OUT.png]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sigmoid7 import SevenLayer, circles

import netviz
from netviz.plot import gradient_flow, savefig

STEPS = 300


def train(skip: bool, steps: int = STEPS):
    """Records of ``grad_norm`` over ``steps`` full-batch Adam steps (learning rate 0.01)."""
    torch.manual_seed(0)
    model = SevenLayer(skip=skip)
    x, y = circles()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    with netviz.watch(model, probes=["grad_norm"], optimizer=opt) as mon:
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    return mon.to_pandas()


def main(out: str = "docs/img/gradient_flow_skip.png") -> Path:
    torch.set_num_threads(1)  # tiny networks: threads only add overhead
    ax = gradient_flow(
        train(skip=False), label="plain", compare={"skip connections": train(skip=True)}
    )
    ax.set_title(f"Gradient norm per layer over {STEPS} training steps")
    path = savefig(ax.figure, out, bbox_inches="tight")
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main(*sys.argv[1:2])
