"""``weight_stats``: parameter norms and the update ratio between recorded steps."""

from __future__ import annotations

import numpy as np
import torch

from netviz._compat import foreach_copy_, foreach_sub
from netviz.capture.probe import Probe, ProbeContext
from netviz.capture.probes.gradients import local_tensor, stacked_sum_squares
from netviz.capture.stats import Scratch, buffer_dtype, readable_tensor

__all__ = ["WeightStats"]


class WeightStats(Probe):
    """``l2`` of a module's own parameters and ``update_ratio``.

    ``update_ratio = ||w_now - w_prev|| / ||w_prev||`` where ``w_prev`` are the
    weights at the previous *recorded* step (the cs231n rule of thumb: about
    1e-3). The first recorded step has no previous weights and reports
    ``l2`` only. Keeps one copy of the watched parameters to do so.
    """

    name = "weight_stats"
    raw_fields = ("sum_sq", "diff_sum_sq", "prev_sum_sq", "has_prev")
    stats = ("l2", "update_ratio")
    optional_stats = ("update_ratio",)

    def __init__(self) -> None:
        self._prev: dict[str, list[torch.Tensor]] = {}
        self._scratch = Scratch()  # CPU norms come from the moments kernel

    def setup(self, ctx: ProbeContext) -> None:
        self._prev = {}
        self._scratch.prepare(ctx.model)

    def on_step_end(self, ctx: ProbeContext) -> None:
        for name, module in ctx.modules:
            params = [local_tensor(p.detach()) for p in module.parameters(recurse=False)]
            if not params:
                continue
            reason = next((r for p, _ in params if (r := readable_tensor(p)[2])), "")
            if reason:  # meta or fake parameters hold no values
                ctx.skip(name, reason)
                continue
            now = [p for p, _ in params]
            sharded = any(s for _, s in params)
            dt = buffer_dtype(now[0].device)
            sq = stacked_sum_squares(now, self._scratch).sum()
            prev = self._prev.get(name)
            if prev is not None and [p.shape for p in prev] == [p.shape for p in now]:
                diffs = foreach_sub(now, prev)
                dsq = stacked_sum_squares(diffs, self._scratch).sum()
                psq = stacked_sum_squares(prev, self._scratch).sum()
                foreach_copy_(prev, now)
                has = torch.ones((), dtype=dt, device=sq.device)
            else:
                self._prev[name] = [p.clone() for p in now]
                dsq = psq = torch.zeros((), dtype=dt, device=sq.device)
                has = torch.zeros((), dtype=dt, device=sq.device)
            ctx.emit(name, torch.stack([sq, dsq, psq, has]), sharded=sharded)

    def finalize(self, raw: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.sqrt(raw[:, 1]) / np.sqrt(raw[:, 2])
        ratio = np.where(raw[:, 3] > 0, ratio, np.nan)
        return np.stack([np.sqrt(raw[:, 0]), ratio], axis=1)

    def merge(self, raw: np.ndarray, sharded: np.ndarray) -> np.ndarray:
        summed = raw.sum(axis=0)
        summed[:, 3] = raw[0, :, 3]
        return np.where(sharded[:, None], summed, raw[0])
