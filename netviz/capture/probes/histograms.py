"""``activation_hist``, ``grad_hist``, ``weight_hist``: histograms on a fixed grid.

Each emits one vector of counts per tensor (the bins of its
:class:`~netviz.capture.histogram.HistogramGrid`, then the NaN, +Inf and -Inf
counts) into the step's device buffer, so histograms travel to the host with
the other statistics in the step's one transfer. Their records go to a table
of their own, :meth:`Monitor.histograms() <netviz.Monitor.histograms>`
(:mod:`netviz.records.histograms`), not to the ``stat``/``value`` table.

Under DDP/FSDP the counts of the ranks are added: activation histograms
describe the global batch; gradient and weight histograms of replicated
tensors are taken from rank 0 (every rank holds the same values), those of
sharded tensors (FSDP) are the sum over the shards, i.e. the full tensor.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from netviz._leaf import first_tensor
from netviz.capture._fused_hist import SharedRead
from netviz.capture._fused_hist import get as _get_kernel
from netviz.capture.histogram import HistogramGrid, tensor_histogram
from netviz.capture.probe import Probe, ProbeContext
from netviz.capture.probes.activation import ActivationStats
from netviz.capture.probes.gradients import local_tensor, module_grads
from netviz.capture.stats import KERNELS, Scratch
from netviz.errors import NetvizValueError

__all__ = ["ActivationHist", "GradHist", "HistogramProbe", "WeightHist"]


class HistogramProbe(Probe):
    """Base of the histogram probes: a grid, a kernel, counts as raw fields.

    Parameters
    ----------
    bins
        The grid: ``None`` for the default signed log-magnitude grid
        (:meth:`HistogramGrid.log`), a :class:`HistogramGrid`, or
        ``(lo, hi)`` / ``(lo, hi, bins)`` for a linear grid.
    kernel
        ``"auto"`` (default) counts CPU tensors with the one-pass C kernel
        where it can be built, ``"fused"`` requires it, ``"eager"`` uses torch
        operations only (CUDA always does).
    every
        Count only on steps whose index is a multiple of ``every`` (among the
        steps the monitor records): histograms cost more than moments, and a
        picture over training rarely needs every step.
    """

    #: Records of this probe go to the histogram table (``Monitor.histograms()``).
    table: ClassVar[str] = "histograms"

    def __init__(self, bins: Any = None, kernel: str = "auto", every: int = 1) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise NetvizValueError(f"`every` must be a positive int, got {every!r}")
        if kernel not in KERNELS:
            raise NetvizValueError(
                f"`kernel` must be one of {', '.join(map(repr, KERNELS))}, got {kernel!r}"
            )
        self.grid = HistogramGrid.coerce(bins)
        self.kernel = kernel
        self.every = every
        # per instance (the monitor reads them from the probe object): the
        # number of raw fields depends on the grid
        self.raw_fields = self.grid.fields  # type: ignore[misc]
        self.stats = self.grid.fields  # type: ignore[misc]
        if kernel == "fused":
            _get_kernel(kernel)  # fail here, not in the first hook

    def due(self, ctx: ProbeContext) -> bool:
        """Whether this step is one to count (``step % every == 0``)."""
        return ctx.step % self.every == 0

    def counts(self, x: Any) -> Any:
        """Device vector of counts of a tensor (or tensors counted together)."""
        return tensor_histogram(x, self.grid, self.kernel)

    def emit_groups(
        self, ctx: ProbeContext, groups: list[tuple[str, list[torch.Tensor], bool]]
    ) -> None:
        """Emit the counts of each ``(module, tensors, sharded)``, CPU groups in one kernel call."""
        if not groups:
            return
        kernel = _get_kernel(self.kernel)
        if kernel is not None and all(t.device.type == "cpu" for _, ts, _ in groups for t in ts):
            out = kernel.histograms([ts for _, ts, _ in groups], self.grid)
            if out is not None:
                ctx.emit_many([n for n, _, _ in groups], out, sharded=[s for _, _, s in groups])
                return
        for name, tensors, sharded in groups:
            ctx.emit(name, self.counts(tensors), sharded=sharded)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(bins={self.grid!r}, kernel={self.kernel!r}, every={self.every})"
        )


class ActivationHist(HistogramProbe):
    """Histogram of each selected module's output (first tensor of a tuple/list/dict).

    Taken when the module returns, like ``activation_stats``. Where the same
    monitor also has ``activation_stats`` and both use the C kernels (CPU),
    the two read each output once between them
    (:class:`~netviz.capture._fused_hist.SharedRead`).
    """

    name = "activation_hist"
    needs_forward = True

    def __init__(self, bins: Any = None, kernel: str = "auto", every: int = 1) -> None:
        super().__init__(bins, kernel, every)
        self._shared: SharedRead | None = None

    def setup(self, ctx: ProbeContext) -> None:
        self._shared = None
        if self.kernel == "eager":
            return
        probes = ctx.probes
        mine = next(i for i, p in enumerate(probes) if p is self)
        for i, probe in enumerate(probes):
            scratch = getattr(probe, "_scratch", None)
            if not isinstance(probe, ActivationStats) or not isinstance(scratch, Scratch):
                continue
            kernel = _get_kernel(self.kernel)
            if kernel is None or scratch.fused() is None:
                return  # no C kernels: nothing to share
            self._shared = SharedRead(
                kernel, self.grid, functools.partial(self._counting, ctx), hist_first=i > mine
            )
            scratch.share = self._shared.moments  # replaces a share of an earlier monitor
            return

    def _counting(self, ctx: ProbeContext) -> bool:
        """Whether this step is counted (``False`` once the monitor of ``ctx`` is gone)."""
        try:
            return self.due(ctx)
        except RuntimeError:  # the monitor no longer exists; its stats probe lives on
            return False

    def on_forward(
        self, ctx: ProbeContext, name: str, module: nn.Module, args: tuple, output: Any
    ) -> None:
        x = first_tensor(output)
        shared = self._shared
        if x is None or not self.due(ctx):
            if shared is not None:
                shared.clear()
            return
        counts = shared.counts(x) if shared is not None else None
        if counts is None:
            counts = self.counts(x)
        ctx.emit(name, counts, call=ctx.call_index(name), sharded=True)

    def merge(self, raw: np.ndarray, sharded: np.ndarray) -> np.ndarray:
        # every rank's activations are part of the global batch
        return raw.sum(axis=0)


class GradHist(HistogramProbe):
    """Histogram of the entries of a module's own parameter gradients (all together).

    Read from ``.grad`` when the step closes, like ``grad_stats``.
    """

    name = "grad_hist"

    def on_step_end(self, ctx: ProbeContext) -> None:
        if not self.due(ctx):
            return
        self.emit_groups(ctx, module_grads(ctx))


class WeightHist(HistogramProbe):
    """Histogram of the entries of a module's own parameters when the step closes."""

    name = "weight_hist"

    def on_step_end(self, ctx: ProbeContext) -> None:
        if not self.due(ctx):
            return
        groups = []
        for name, module in ctx.modules:
            params = [local_tensor(p.detach()) for p in module.parameters(recurse=False)]
            if params:
                groups.append((name, [p for p, _ in params], any(s for _, s in params)))
        self.emit_groups(ctx, groups)
