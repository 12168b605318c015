"""Helpers every gallery script calls: seeding, style, and fast mode.

Fast mode (environment variable ``NETVIZ_GALLERY_FAST=1``, used by the test
suite) runs the same code paths with fewer training steps; figures built for
publication use the full settings.
"""

from __future__ import annotations

import os
import random
from typing import TypeVar

T = TypeVar("T")

__all__ = ["fast", "pick", "setup"]

SEED = 0


def fast() -> bool:
    """Whether the gallery runs in fast mode (``NETVIZ_GALLERY_FAST=1``)."""
    return os.environ.get("NETVIZ_GALLERY_FAST", "") not in ("", "0")


def pick(full: T, quick: T) -> T:
    """``full`` normally, ``quick`` in fast mode (e.g. training steps)."""
    return quick if fast() else full


def setup(seed: int = SEED) -> None:
    """Make a gallery script deterministic and styled.

    Applies the netviz style globally (rcParams), seeds Python, NumPy and
    PyTorch and uses one CPU thread. The gallery runs on the CPU, where one
    thread makes every reduction order fixed; it does not call
    ``torch.use_deterministic_algorithms``, which only matters on
    accelerators and imports ``torch._dynamo`` (seconds per script).

    It leaves the matplotlib backend alone: a script run by hand
    (``python netviz/gallery/scripts/A1_xor_not_separable.py``) uses the
    user's backend (``MPLBACKEND``, matplotlibrc or matplotlib's default).
    Only the runners choose Agg: ``netviz gallery build`` and its worker
    processes, the Sphinx build (``docs/conf.py``) and the test suite.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    import torch
    from cycler import cycler

    from netviz.plot.theme import PALETTE, RC

    plt.rcdefaults()
    plt.rcParams.update(RC)
    plt.rcParams["axes.prop_cycle"] = cycler(color=list(PALETTE))
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (scripts may use the legacy global RNG)
    torch.manual_seed(seed)
    torch.set_num_threads(1)
