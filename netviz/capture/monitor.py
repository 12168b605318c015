"""The :class:`Monitor`: hooks, the step buffer and the flush of one watched model."""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from netviz.capture.distributed import StepGather
from netviz.capture.probe import Probe, ProbeContext
from netviz.records.io import save_frame
from netviz.records.store import RecordStore

__all__ = ["Gather", "Monitor"]


#: ``gather(buffer) -> (ranks, len)``: how a step buffer is collected from ranks.
Gather = Callable[[torch.Tensor], torch.Tensor]


class _Entry:
    __slots__ = ("call", "module", "probe", "raw", "sharded")

    def __init__(self, probe: int, module: str, call: int, raw: torch.Tensor, sharded: bool):
        self.probe, self.module, self.call, self.raw, self.sharded = (
            probe,
            module,
            call,
            raw,
            sharded,
        )


class _PendingStep:
    """A flushed step whose host copy may still be in flight (CUDA, pinned memory)."""

    __slots__ = ("entries", "event", "host", "step")

    def __init__(self, step: int, entries: list[_Entry], host: torch.Tensor, event: Any):
        self.step, self.entries, self.host, self.event = step, entries, host, event


def _to_host(buffer: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """Start copying ``buffer`` to the host; the copy is asynchronous on CUDA."""
    if buffer.is_cuda:
        host = torch.empty(buffer.shape, dtype=buffer.dtype, pin_memory=True)
        host.copy_(buffer, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        return host, event
    return buffer.to("cpu"), None


def _make_forward_hook(monitor_ref: weakref.ref, name: str) -> Callable:
    # The hook holds only a weak reference to the monitor: a model never keeps
    # a monitor alive, and no reference cycle runs through the hooks.
    def hook(module: nn.Module, args: tuple, output: Any) -> None:
        monitor = monitor_ref()
        if monitor is not None and monitor._recording:
            monitor._on_forward(name, module, args, output)

    return hook


def _remove_all(handles: list) -> None:
    while handles:
        handles.pop().remove()


class Monitor:
    """Probes attached to a model; create with :func:`watch`.

    Use as a context manager (leaving it detaches, also on an exception) or
    call :meth:`detach`. Call :meth:`step` once per training step (or pass
    ``optimizer=`` to :func:`watch`), then read :meth:`to_pandas` or
    :meth:`save`.
    """

    def __init__(
        self,
        model: nn.Module,
        probes: Sequence[Probe],
        modules: list[tuple[str, nn.Module]],
        every: int,
        optimizer: torch.optim.Optimizer | None = None,
        gather: Gather | None = None,
    ):
        self._probes = list(probes)
        self._probe_index = {id(p): i for i, p in enumerate(self._probes)}  # hot path: per emit
        self._modules = modules
        self._every = every
        self._step = 0
        self._recording = True
        self._gather = gather
        self._handles: list = []
        self._step_handles: list = []  # removed when the step closes
        self._entries: list[_Entry] = []
        self._snapshots_open: list[tuple[int, str, int, torch.Tensor]] = []
        self._calls: dict[str, int] = {}
        self._pending: list[_PendingStep] = []
        self._records = RecordStore()
        self._snapshots: dict[int, dict[tuple[str, str, int], torch.Tensor]] = {}
        # issue #12: statistics not taken, {(module, probe, reason): count}; see skips()
        self._skips: dict[tuple[str, str, str], int] = {}
        self._attached = False
        self._contexts = [ProbeContext(self, p) for p in self._probes]
        self._model_name = type(model).__name__
        self._model_ref = weakref.ref(model)  # for probes that need the whole model
        # Removes the hooks if the monitor is garbage-collected while attached.
        self._finalizer = weakref.finalize(self, _remove_all, self._handles)
        try:
            self._attach(optimizer)
        except BaseException:
            self.detach(flush=False)
            raise

    # ------------------------------------------------------------------ attach
    def _attach(self, optimizer: torch.optim.Optimizer | None) -> None:
        ref = weakref.ref(self)
        self._forward_probes = [
            (p, c) for p, c in zip(self._probes, self._contexts) if p.needs_forward
        ]
        if self._forward_probes:
            for name, module in self._modules:
                self._handles.append(module.register_forward_hook(_make_forward_hook(ref, name)))
        if optimizer is not None:

            def after_step(opt: Any, args: Any, kwargs: Any) -> None:
                monitor = ref()
                if monitor is not None:
                    monitor.step()

            self._handles.append(optimizer.register_step_post_hook(after_step))
        self._attached = True
        for probe, ctx in zip(self._probes, self._contexts):
            probe.setup(ctx)

    @property
    def attached(self) -> bool:
        """Whether hooks are currently attached."""
        return self._attached

    def detach(self, flush: bool = True) -> None:
        """Remove every hook of this monitor. Idempotent.

        An open step that already holds recorded values is closed first (so a
        run that stops without a final :meth:`step` loses nothing), unless
        ``flush=False``.
        """
        try:
            if flush and self._attached and (self._entries or self._snapshots_open):
                self.step()
        finally:
            _remove_all(self._handles)
            self._step_handles = []
            self._attached = False
            self._modules = []
            self._entries = []
            self._snapshots_open = []

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # In a distributed run a flush is a collective: after an exception the
        # other ranks may never join it, so the open step is dropped.
        self.detach(flush=exc_type is None or not isinstance(self._gather, StepGather))

    # ----------------------------------------------------------------- capture
    def _selected_modules(self) -> list[tuple[str, nn.Module]]:
        return self._modules

    def _current_call(self, name: str) -> int:
        return self._calls.get(name, 1) - 1

    def _on_forward(self, name: str, module: nn.Module, args: tuple, output: Any) -> None:
        self._calls[name] = self._calls.get(name, 0) + 1
        for probe, ctx in self._forward_probes:
            probe.on_forward(ctx, name, module, args, output)

    def _emit(self, probe: Probe, module: str, call: int, raw: torch.Tensor, sharded: bool) -> None:
        if raw.dim() != 1 or raw.numel() != len(probe.raw_fields):
            raise ValueError(
                f"probe {probe.name!r} emitted a tensor of shape {tuple(raw.shape)}; "
                f"expected ({len(probe.raw_fields)},) for raw fields {probe.raw_fields}"
            )
        self._entries.append(_Entry(self._probe_index[id(probe)], module, call, raw, sharded))

    def _snapshot(self, probe: Probe, module: str, call: int, tensor: torch.Tensor) -> None:
        self._snapshots_open.append(
            (self._probe_index[id(probe)], module, call, tensor.detach().clone())
        )

    def _track_handle(self, handle: Any) -> None:
        self._handles.append(handle)

    def _track_step_handle(self, handle: Any) -> None:
        self._step_handles.append(handle)
        self._handles.append(handle)  # also removed by detach / the finalizer

    # -------------------------------------------------------------------- step
    @property
    def step_index(self) -> int:
        """Index of the step currently open (starts at 0)."""
        return self._step

    @property
    def every(self) -> int:
        """Record every N-th step."""
        return self._every

    def step(self) -> None:
        """Close the current step: flush its statistics and advance the step counter.

        On a recorded step this reads gradients and weights, moves all of the
        step's statistics to the host in one transfer and stores them; on other
        steps it only advances the counter.
        """
        if self._recording and self._attached:
            for probe, ctx in zip(self._probes, self._contexts):
                probe.on_step_end(ctx)
            self._flush()
        self._entries = []
        self._snapshots_open = []
        self._calls = {}
        if self._step_handles:
            done = {id(h) for h in self._step_handles}
            for handle in self._step_handles:
                handle.remove()
            self._handles[:] = [h for h in self._handles if id(h) not in done]
            self._step_handles = []
        self._step += 1
        self._recording = self._step % self._every == 0

    def _flush(self) -> None:
        entries = self._entries
        if self._gather is not None:
            # Every rank takes part in the collective, even with nothing to send.
            buffer = self._pack(entries)
            if isinstance(self._gather, StepGather):
                layout = [(e.probe, e.module, e.call, e.sharded) for e in entries]
                gathered = self._gather.gather_step(buffer, self._step, layout)
                if not self._gather.keeps_records:  # only rank 0 of the group stores
                    entries, gathered = [], gathered[:, :0]
            else:
                gathered = self._gather(buffer)
            host, event = _to_host(gathered) if entries else (None, None)
        elif entries:
            host, event = _to_host(self._pack(entries))
        else:
            host, event = None, None
        if host is not None:
            self._pending.append(_PendingStep(self._step, entries, host, event))
        if self._snapshots_open:
            names = [p.name for p in self._probes]
            self._snapshots[self._step] = {
                (names[p], m, c): t.to("cpu") for p, m, c, t in self._snapshots_open
            }
        if len(self._pending) > 1:
            self._materialize(keep_last=True)

    def _pack(self, entries: list[_Entry]) -> torch.Tensor:
        if not entries:
            return torch.zeros(0, dtype=torch.float64)
        first = entries[0].raw
        # A model split over devices emits on each; gather on the first one.
        return torch.cat([e.raw.to(device=first.device, dtype=first.dtype) for e in entries])

    def _materialize(self, keep_last: bool = False) -> None:
        """Finalise pending steps on the host (waits for their copies)."""
        todo = self._pending[:-1] if keep_last else self._pending
        self._pending = self._pending[-1:] if keep_last else []
        for pending in todo:
            if pending.event is not None:
                pending.event.synchronize()
            self._store(pending)

    def _store(self, pending: _PendingStep) -> None:
        flat = pending.host.numpy().astype(np.float64, copy=False)
        if flat.ndim == 1:
            flat = flat[None, :]
        offset = 0
        by_probe: dict[int, list[tuple[_Entry, int]]] = {}
        for e in pending.entries:
            by_probe.setdefault(e.probe, []).append((e, offset))
            offset += len(self._probes[e.probe].raw_fields)
        per_rank = getattr(self._gather, "per_rank", False)
        grids = []
        for pi, items in by_probe.items():
            probe = self._probes[pi]
            width = len(probe.raw_fields)
            idx = np.array([o for _, o in items])[:, None] + np.arange(width)[None, :]
            raw = flat[:, idx]  # (ranks, n, width)
            if per_rank:  # each rank's own statistics, finalized separately
                parts = list(enumerate(raw))
            elif raw.shape[0] > 1:
                sharded = np.array([e.sharded for e, _ in items], dtype=bool)
                parts = [(-1, probe.merge(raw, sharded))]
            else:
                parts = [(-1, raw[0])]
            modules = [e.module for e, _ in items]
            calls = [e.call for e, _ in items]
            optional = np.array([s in probe.optional_stats for s in probe.stats], dtype=bool)
            for rank, merged in parts:
                final = np.asarray(probe.finalize(merged), dtype=np.float64)
                final = final.reshape(len(items), len(probe.stats))
                # optional statistics that are undefined (NaN) produce no row
                keep = ~(np.isnan(final) & optional[None, :])
                grids.append((modules, calls, probe.name, probe.stats, final, keep, rank))
        self._records.append_grids(pending.step, grids, per_rank=per_rank)

    # ----------------------------------------------------------------- results
    def to_pandas(self) -> pd.DataFrame:
        """All records so far as a tidy DataFrame.

        Columns: ``step`` (int), ``module`` (qualified name), ``call`` (0-based
        call index within the step), ``probe``, ``stat``, ``value`` (float).
        """
        self._materialize()
        return self._records.to_pandas()

    def save(self, path: str | os.PathLike) -> os.PathLike | None:
        """Write the records to ``path``: Parquet (``.parquet``) or CSV (``.csv``).

        In a distributed run only rank 0 of the monitor's group keeps records
        (unless ``watch(..., all_ranks=True)``): on the other ranks this
        writes nothing and returns ``None``.
        """
        if isinstance(self._gather, StepGather) and not self._gather.keeps_records:
            return None
        return save_frame(self.to_pandas(), path)

    # --- issue #12: skipped statistics ---------------------------------------
    def _skip(self, probe: Probe, module: str, reason: str) -> None:
        key = (module, probe.name, reason)
        count = self._skips.get(key, 0)
        self._skips[key] = count + 1
        if count == 0:
            import warnings

            warnings.warn(
                f"netviz: {probe.name} of {module or '<root>'!r} not recorded: {reason} "
                "(said once per module and reason; counts in Monitor.skips())",
                RuntimeWarning,
                stacklevel=2,
            )

    def skips(self) -> pd.DataFrame:
        """Statistics not taken: one row per ``(module, probe, reason)`` with its ``count``.

        A hook never raises for an unusual tensor or context (meta or fake
        tensors, unreadable tensor subclasses, ...): it skips the statistic,
        warns once per module and reason, and counts it here.
        """
        rows = [(m, p, r, c) for (m, p, r), c in self._skips.items()]
        frame = pd.DataFrame(rows, columns=["module", "probe", "reason", "count"])
        return frame.astype({"count": "int64"})

    # --------------------------------------------------------------- snapshots
    def snapshots(self) -> dict[int, dict[tuple[str, str, int], torch.Tensor]]:
        """Tensors kept by snapshot probes: ``{step: {(probe, module, call): tensor}}`` (on CPU)."""
        return {s: dict(v) for s, v in self._snapshots.items()}

    @property
    def probes(self) -> list[Probe]:
        """The probe objects of this monitor."""
        return list(self._probes)

    @property
    def module_names(self) -> list[str]:
        """Qualified names of the selected modules (empty after detach)."""
        return [n for n, _ in self._modules]

    def __repr__(self) -> str:
        state = "attached" if self._attached else "detached"
        return (
            f"<netviz.Monitor {state} on {self._model_name}: probes="
            f"{[p.name for p in self._probes]}, {len(self._modules)} modules, "
            f"step={self._step}, every={self._every}>"
        )
