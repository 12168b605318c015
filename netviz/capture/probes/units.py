"""``unit_activity``: dead ReLU units and saturated sigmoid/tanh outputs, per module.

Used by :func:`netviz.diagnose`; pass ``UnitActivity()`` to
``netviz.watch(probes=[...])`` to diagnose recorded training runs the same way.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from netviz._leaf import first_tensor
from netviz.capture.probe import Probe, ProbeContext
from netviz.capture.stats import buffer_dtype

__all__ = ["BOUNDED", "RELU_FAMILY", "UnitActivity"]

#: Modules whose output is exactly zero for negative inputs (units can die).
RELU_FAMILY: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6)
#: Bounded modules whose outputs can saturate: ``(type, low, high)``.
BOUNDED: tuple[tuple[type[nn.Module], float, float], ...] = (
    (nn.Sigmoid, 0.0, 1.0),
    (nn.Tanh, -1.0, 1.0),
    (nn.Hardtanh, -1.0, 1.0),
)


class UnitActivity(Probe):
    """Share of dead units (ReLU family) and of saturated outputs (sigmoid, tanh).

    A *unit* is an index along dimension 1 of the output (the features of a
    ``Linear``, the channels of a ``Conv``; every element for 1-D outputs). A
    unit is **dead** when it is positive for at most ``dead_tol`` of the
    positions of the batch (all other dimensions); ``dead_frac`` is the share of
    such units. ``saturated_frac`` is the share of output elements within
    ``eps`` of the bounds (sigmoid: below 0.01 or above 0.99; tanh and
    hardtanh: :math:`|y| > 0.99`). Computed on the output's device, no host sync.

    Parameters
    ----------
    dead_tol
        Largest active share of a unit that still counts as dead (default 0.01).
    eps
        Distance from a bound that counts as saturated (default 0.01).

    Examples
    --------
    >>> import torch, netviz
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU())
    >>> with torch.no_grad():
    ...     _ = net[0].bias.fill_(-100.0)  # every unit of the ReLU is dead
    >>> with netviz.watch(net, probes=[UnitActivity()]) as mon:
    ...     _ = net(torch.randn(8, 3))
    >>> mon.to_pandas()[["module", "stat", "value"]].values.tolist()
    [['1', 'dead_frac', 1.0]]
    """

    name: ClassVar[str] = "unit_activity"
    raw_fields: ClassVar[tuple[str, ...]] = ("units", "dead", "saturated", "numel", "family")
    stats: ClassVar[tuple[str, ...]] = ("dead_frac", "saturated_frac")
    optional_stats: ClassVar[tuple[str, ...]] = ("dead_frac", "saturated_frac")
    needs_forward: ClassVar[bool] = True

    def __init__(self, dead_tol: float = 0.01, eps: float = 0.01):
        if not 0 <= dead_tol < 1:
            raise ValueError(f"`dead_tol` must be in [0, 1), got {dead_tol!r}")
        if not 0 < eps < 0.5:
            raise ValueError(f"`eps` must be in (0, 0.5), got {eps!r}")
        self.dead_tol = float(dead_tol)
        self.eps = float(eps)

    def on_forward(
        self, ctx: ProbeContext, name: str, module: nn.Module, args: tuple, output: Any
    ) -> None:
        x = first_tensor(output)
        if x is None or x.numel() == 0 or not (x.is_floating_point()):
            return
        x = x.detach()
        dt = buffer_dtype(x.device)
        nan = torch.full((), float("nan"), dtype=dt, device=x.device)
        if isinstance(module, RELU_FAMILY):
            # count positive positions per unit (int64; no float copy of the activation)
            if x.dim() >= 2:
                others = [d for d in range(x.dim()) if d != 1]
                active = (x > 0).sum(dim=others)
                n_units, positions = x.shape[1], x.numel() // x.shape[1]
            else:
                active = (x > 0).to(torch.int64)
                n_units, positions = x.numel(), 1
            dead = (active <= self.dead_tol * positions).sum().to(dt)
            raw = [torch.full((), n_units, dtype=dt, device=x.device), dead, nan]
            family = 1.0
        else:
            bounds = next(((lo, hi) for t, lo, hi in BOUNDED if isinstance(module, t)), None)
            if bounds is None:
                return
            lo, hi = bounds
            sat = ((x <= lo + self.eps) | (x >= hi - self.eps)).sum().to(dt)
            raw = [nan, nan, sat]
            family = 2.0
        numel = torch.full((), x.numel(), dtype=dt, device=x.device)
        fam = torch.full((), family, dtype=dt, device=x.device)
        ctx.emit(name, torch.stack([*raw, numel, fam]), call=ctx.call_index(name), sharded=True)

    def finalize(self, raw: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            dead_frac = np.where(raw[:, 4] == 1, raw[:, 1] / raw[:, 0], np.nan)
            sat_frac = np.where(raw[:, 4] == 2, raw[:, 2] / raw[:, 3], np.nan)
        return np.stack([dead_frac, sat_frac], axis=1)

    def merge(self, raw: np.ndarray, sharded: np.ndarray) -> np.ndarray:
        # Ranks see parts of one batch: counts of saturated elements add up;
        # a unit's deadness is per rank, so dead counts are averaged.
        out = raw[0].copy()
        out[:, 1] = raw[:, :, 1].mean(axis=0)
        out[:, 2] = raw[:, :, 2].sum(axis=0)
        out[:, 3] = raw[:, :, 3].sum(axis=0)
        return out
