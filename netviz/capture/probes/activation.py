"""``activation_stats``: statistics of each selected module's output."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from netviz._leaf import first_tensor  # re-exported: the helper lives in the leaf
from netviz.capture._fused import in_place_plain
from netviz.capture.probe import Probe, ProbeContext
from netviz.capture.stats import (
    ACTIVATION_STATS,
    MOMENT_FIELDS,
    Scratch,
    finalize_moments,
    merge_moments,
    moments_or_skip,
)

__all__ = ["ActivationStats", "first_tensor"]


class ActivationStats(Probe):
    """Mean, std, min, max, abs_mean (finite elements), zero and non-finite fractions, numel.

    Computed from the module's output at the moment the module returns, so a
    later in-place operation (``ReLU(inplace=True)``) cannot change them.

    ``kernel`` picks how CPU outputs are reduced: ``"auto"`` (default) uses
    the fused one-pass C kernel where it can be built (Linux, PyTorch with
    OpenMP, a C compiler; see :mod:`netviz.capture._fused`) and the eager
    torch kernel elsewhere, ``"fused"`` requires the fused one, ``"eager"``
    never uses it. Both give the same statistics within the bounds stated in
    ``docs/watch.md``; CUDA outputs always use torch ops. The kernel is built
    when the probe is attached; a fallback to the eager kernel is warned
    about then. Outputs without readable values (meta, fake, unreadable
    subclasses) are skipped and counted in ``Monitor.skips()``. Pass ``watch(model, probes=[ActivationStats(kernel="eager")])``
    to choose.
    """

    name = "activation_stats"
    raw_fields = MOMENT_FIELDS
    stats = ACTIVATION_STATS
    needs_forward = True

    def __init__(self, kernel: str = "auto") -> None:
        # Reused work buffers (CPU), not per-step state: see Scratch.
        self._scratch = Scratch(kernel=kernel)
        self._kernels: dict[torch.dtype, Any] | None = None  # the fused kernel's, set at setup

    def setup(self, ctx: ProbeContext) -> None:
        # build and self-test the fused kernel now, never inside a user's forward
        fused = self._scratch.prepare(ctx.model)
        self._kernels = fused.kernels() if fused is not None else None

    def on_forward(
        self, ctx: ProbeContext, name: str, module: nn.Module, args: tuple, output: Any
    ) -> None:
        x = output if type(output) is torch.Tensor else first_tensor(output)
        if x is None:
            return
        kernels = self._kernels
        # With a histogram probe sharing this probe's read (Scratch.share, issue
        # #14), the moments come from that one read (the path below) instead.
        if kernels is not None and self._scratch.share is None:
            fn = kernels.get(x.dtype)
            if fn is not None and in_place_plain(x):
                # the hot path: the fused C kernel writes the moments straight
                # into this step's CPU buffer (no tensor, no entry object)
                n = x.numel()
                if n:
                    fn(x.data_ptr(), n, ctx.row_address(name, sharded=True))  # this call's row
                    return
        moments, reason = moments_or_skip(x, self._scratch)
        if moments is None:  # meta, fake, unreadable: see docs/watch.md
            ctx.skip(name, reason)
            return
        ctx.emit(name, moments, call=ctx.call_index(name), sharded=True)

    def finalize(self, raw: np.ndarray) -> np.ndarray:
        return finalize_moments(raw)

    def merge(self, raw: np.ndarray, sharded: np.ndarray) -> np.ndarray:
        # Activations of different ranks are parts of one global batch.
        return merge_moments(raw)
