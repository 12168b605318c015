"""The probe interface: what a probe is and what it may do during a step.

A probe decides *what* to record; the :class:`~netviz.capture.monitor.Monitor`
decides *when* and owns every hook. Probes therefore never register hooks
themselves (except through :class:`ProbeContext`, which tracks the handles so
that ``detach`` removes them) and never synchronise with the host: every value a
probe emits is a 1-D device tensor of *raw* statistics. The monitor concatenates
all raw vectors of a step into one buffer, moves that buffer to the host in one
transfer (after one collective in distributed runs), and only then calls
:meth:`Probe.finalize` on the host to turn raw statistics into the reported ones.

Design rule: a probe holds no per-step state beyond what the monitor hands it;
per-step data lives in the monitor's step buffer, so that skipping a step or
detaching never leaves a probe half-way through.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn

from netviz.errors import NetvizRuntimeError, NetvizValueError

if TYPE_CHECKING:  # pragma: no cover
    from netviz.capture.monitor import Monitor

__all__ = ["Probe", "ProbeContext", "merge_sum_first"]


class Probe:
    """Base class of every probe.

    Subclasses set the class attributes and override the hooks they need:

    - :attr:`name`: the probe name used in ``watch(probes=...)`` and in the
      ``probe`` column of the records;
    - :attr:`raw_fields`: names of the raw statistics each emitted vector holds;
    - :attr:`stats`: names of the statistics reported after :meth:`finalize`;
    - :meth:`on_forward`: called from the monitor's forward hook of every
      selected module on recorded steps (only if :attr:`needs_forward`);
    - :meth:`on_step_end`: called when a recorded step closes, before the
      buffer is flushed (gradients and weights are read here);
    - :meth:`finalize`: host-side, vectorised, raw -> reported statistics;
    - :meth:`merge`: host-side, combines the raw vectors of several ranks.
    """

    name: ClassVar[str] = ""
    raw_fields: ClassVar[tuple[str, ...]] = ()
    stats: ClassVar[tuple[str, ...]] = ()
    needs_forward: ClassVar[bool] = False
    #: Statistics whose NaN means "not defined at this step" and is left out
    #: of the records rather than stored (e.g. the first ``update_ratio``).
    optional_stats: ClassVar[tuple[str, ...]] = ()
    #: Why this probe may record nothing on a model, said in the warning netviz
    #: gives when it recorded nothing in the first recorded training step.
    empty_hint: ClassVar[str] = ""

    def setup(self, ctx: ProbeContext) -> None:
        """Called once when the monitor attaches. Register tensor hooks here."""

    def on_forward(
        self, ctx: ProbeContext, name: str, module: nn.Module, args: tuple, output: Any
    ) -> None:
        """Called with each selected module's output on recorded steps."""

    def on_step_end(self, ctx: ProbeContext) -> None:
        """Called when a recorded step closes, before the flush."""

    def forward_context(self, ctx: ProbeContext) -> AbstractContextManager | None:
        """A context entered around each forward of the watched model on recorded steps.

        For patches that must not outlive a forward (the attention probe's
        ``scaled_dot_product_attention`` patch): entered when the root model's
        forward starts and exited when it returns or raises. Default: none.
        """
        return None

    def finalize(self, raw: np.ndarray) -> np.ndarray:
        """Turn raw statistics ``(n, len(raw_fields))`` into ``(n, len(stats))``.

        The default reports the raw fields unchanged (``stats == raw_fields``).
        """
        return raw

    def merge(self, raw: np.ndarray, sharded: np.ndarray) -> np.ndarray:
        """Combine ``raw`` of shape ``(ranks, n, len(raw_fields))`` into ``(n, ...)``.

        ``sharded[i]`` is true where entry ``i`` holds a shard of a tensor
        distributed across ranks (sum the shards) rather than a replicated value
        (identical on every rank, take the first). Probes whose raw fields
        need another rule (activation moments, minima, maxima) override this.
        """
        return merge_sum_first(raw, sharded)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def merge_sum_first(raw: np.ndarray, sharded: np.ndarray) -> np.ndarray:
    """Sum sharded entries across ranks, take rank 0's value for replicated ones."""
    return np.where(sharded[:, None], raw.sum(axis=0), raw[0])


class ProbeContext:
    """What a probe can see and do while attached to a monitor.

    It exposes the selected modules by qualified name and the calls that add
    entries to the current step. It holds no reference to the model itself
    (only to its modules), so a detached monitor never keeps a model alive.
    """

    def __init__(self, monitor: Monitor, probe: Probe):
        # A weak reference: the monitor owns its contexts, and no cycle keeps a
        # dropped monitor (and its hooks) alive until the garbage collector runs.
        self._monitor_ref = weakref.ref(monitor)
        self.probe = probe

    @property
    def _monitor(self) -> Monitor:
        monitor = self._monitor_ref()
        if monitor is None:
            raise NetvizRuntimeError("the monitor of this probe context no longer exists")
        return monitor

    @property
    def probes(self) -> Sequence[Probe]:
        """The monitor's probes, in the order their hooks run."""
        return self._monitor.probes

    @property
    def modules(self) -> Sequence[tuple[str, nn.Module]]:
        """Selected ``(qualified_name, module)`` pairs in model order."""
        return self._monitor._selected_modules()

    @property
    def model(self) -> nn.Module | None:
        """The watched model (held weakly; ``None`` once garbage-collected)."""
        ref = getattr(self._monitor, "_model_ref", None)
        return ref() if ref is not None else None

    @property
    def step(self) -> int:
        """Index of the step currently open."""
        return self._monitor.step_index

    def call_index(self, name: str) -> int:
        """0-based index of the current call of module ``name`` within this forward pass."""
        return self._monitor._current_call(name)

    def emit(self, module: str, raw: torch.Tensor, *, call: int = 0, sharded: bool = False) -> None:
        """Add one raw-statistics vector (1-D, ``len(raw_fields)`` values) to the step.

        ``raw`` stays on its device; nothing is synchronised here.
        """
        self._monitor._emit(self.probe, module, call, raw, sharded)

    def row_address(self, module: str, *, call: int | None = None, sharded: bool = False) -> int:
        """Address of a new row of the step's CPU buffer, for a native kernel to write.

        The row holds ``len(raw_fields)`` float64 values that must be written
        before the hook returns (e.g. by a C kernel given this pointer); it
        then counts as an :meth:`emit` of ``module`` with ``call`` (default:
        :meth:`call_index` of ``module``) and ``sharded``. The hot path of CPU
        probes: no tensor per row.
        """
        return self._monitor._row_address(self.probe, module, call, sharded)

    def emit_many(
        self, modules: Sequence[str], raw: torch.Tensor, *, sharded: Sequence[bool] | bool = False
    ) -> None:
        """Add one row per module at once: ``raw`` is ``(len(modules), len(raw_fields))``.

        For step-level probes that compute all modules' statistics in a few
        batched calls (``call`` is 0); cheaper than one :meth:`emit` per module.
        """
        mods = list(modules)
        flags = [bool(sharded)] * len(mods) if isinstance(sharded, bool) else list(sharded)
        if len(flags) != len(mods):
            raise NetvizValueError(f"`sharded` has {len(flags)} entries for {len(mods)} modules")
        self._monitor._emit_many(self.probe, mods, raw, flags)

    # --- issue #12: skipped statistics ---------------------------------------
    def skip(self, module: str, reason: str) -> None:
        """Record that a statistic of ``module`` was not taken, and why.

        For tensors or contexts a probe cannot read cheaply and exactly (meta
        or fake tensors, unreadable tensor subclasses, ...). The first skip of
        each module and reason warns; all are counted in :meth:`Monitor.skips`.
        """
        self._monitor._skip(self.probe, module, reason)

    def snapshot(self, module: str, tensor: torch.Tensor, *, call: int = 0) -> None:
        """Keep a detached copy of ``tensor`` for this step (feature maps, attention).

        Snapshots are moved to the host when the step closes and are available
        from :meth:`Monitor.snapshots`.
        """
        self._monitor._snapshot(self.probe, module, call, tensor)

    def register_tensor_hook(self, tensor: torch.Tensor, fn: Callable) -> None:
        """Register a gradient hook on ``tensor`` for this step.

        The monitor removes it when the step closes (or on detach), so hooks
        registered during each forward never pile up over a long run.
        """
        monitor = self._monitor
        monitor._track_step_handle(tensor.register_hook(monitor._tensor_hook(fn)))

    def add_step_handle(self, handle: Any) -> None:
        """Hand a removable handle to the monitor, to remove when the step closes."""
        self._monitor._track_step_handle(handle)

    def add_handle(self, handle: Any) -> None:
        """Hand any removable handle (``handle.remove()``) to the monitor to remove on detach."""
        self._monitor._track_handle(handle)

    @property
    def recording(self) -> bool:
        """Whether the current step is recorded (``step % every == 0``)."""
        return self._monitor._recording

    @property
    def capturing(self) -> bool:
        """Whether a forward-time capture should record now.

        False on unrecorded steps, in eval forwards when ``watch(eval=False)``,
        and while activation checkpointing recomputes a forward during backward.
        """
        return self._monitor.capturing

    @property
    def forward_index(self) -> tuple[str, int]:
        """``(phase, micro)`` of the forward pass running now (see ``docs/watch.md``)."""
        return self._monitor.phase, self._monitor._cur_micro

    @property
    def phase(self) -> str:
        """``"train"`` or ``"eval"``: the phase of the forward running now."""
        return self._monitor.phase

    @property
    def grad_unscale(self) -> torch.Tensor | None:
        """Factor (device tensor) to multiply ``.grad`` by at step close, or ``None``.

        Set when a ``GradScaler`` skipped a fused optimizer's step, which leaves
        the gradients scaled; gradient probes apply it (no host sync).
        """
        return self._monitor._grad_unscale
