"""The :class:`Monitor`: hooks and the step life cycle of one watched model.

What a step, a phase, a micro-batch, a call and ``order`` are is defined in
``docs/watch.md`` ("What a step is"); this module implements those rules. The
entries of the open step live in a :class:`~netviz.capture.step_buffer.StepBuffer`.
"""

from __future__ import annotations

import contextlib
import os
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from netviz import _compat
from netviz.capture.distributed import StepGather
from netviz.capture.probe import Probe, ProbeContext
from netviz.capture.step_buffer import EVAL, TRAIN, Gather, StepBuffer
from netviz.errors import (
    NetvizRuntimeError,
    NetvizTypeError,
    NetvizValueError,
    NothingRecordedWarning,
)
from netviz.records.histograms import save_histograms
from netviz.records.io import save_frame
from netviz.records.store import STEP_LEVEL

__all__ = ["Gather", "Monitor"]

#: Training forwards in one step without any step close before netviz warns.
_UNCLOSED_WARN_AT = 1000


def _make_forward_hook(monitor_ref: weakref.ref, index: int, name: str) -> Callable:
    # The hook holds only a weak reference to the monitor: a model never keeps
    # a monitor alive, and no reference cycle runs through the hooks. On an
    # unrecorded step it costs one attribute check.
    def hook(module: nn.Module, args: tuple, output: Any) -> None:
        monitor = monitor_ref()
        if monitor is not None and monitor._recording:
            monitor._on_forward(index, name, module, args, output)

    return hook


def _remove_all(handles: list) -> None:
    while handles:
        handles.pop().remove()


class _Restore:
    """A handle whose ``remove()`` runs ``fn`` (restores a patched attribute)."""

    def __init__(self, fn: Callable[[], None]):
        self._fn: Callable[[], None] | None = fn

    def remove(self) -> None:
        fn, self._fn = self._fn, None
        if fn is not None:
            fn()


def _unwrap_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    """The torch optimizer inside framework wrappers (accelerate, Lightning)."""
    optimizer = _compat.unwrap_optimizer(optimizer) or optimizer
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise NetvizTypeError(
            "`optimizer` must be a torch.optim.Optimizer (or a wrapper holding one as "
            f"`.optimizer`), got {type(optimizer).__name__}"
        )
    return optimizer


class Monitor:
    """Probes attached to a model; create with :func:`watch`.

    Use as a context manager (leaving it detaches, also on an exception) or
    call :meth:`detach`. Steps close after each ``optimizer.step()`` (with
    ``watch(optimizer=...)``), after each ``scaler.step(optimizer)`` (with
    ``watch(scaler=...)``), or at each :meth:`step` call; then read
    :meth:`to_pandas` or :meth:`save`. A detached monitor cannot be used again.
    """

    def __init__(
        self,
        model: nn.Module,
        probes: Sequence[Probe],
        modules: list[tuple[str, nn.Module]],
        every: int,
        optimizer: torch.optim.Optimizer | None = None,
        gather: Gather | None = None,
        *,
        scaler: Any = None,
        record_eval: bool = True,
        sinks: Sequence[Any] = (),
        keep: bool = True,
    ):
        self._probes = list(probes)
        self._probe_index = {id(p): i for i, p in enumerate(self._probes)}  # hot path: per emit
        self._modules = modules
        self._every = every
        self._step = 0
        self._recording = True
        self._gather = gather
        self._record_eval = record_eval
        self._handles: list = []
        self._step_handles: list = []  # removed when the step closes
        names = [n for n, _ in modules]
        self._index = {n: i for i, n in enumerate(names)}  # module name -> index (the hooks')
        # issue #15: sinks, keep; rows refer to modules by index
        self._buffer = StepBuffer(self._probes, gather, sinks, keep, names=names)
        # forward-pass state (see docs/watch.md, "What a step is"), by module index
        self._calls = [0] * len(names)  # calls per module within one forward pass
        self._order_of = [-1] * len(names)  # execution order of first calls within the step
        self._order_seq: list[int] = []  # modules in the order of their first call
        self._depth = 0  # nesting of root-model forwards
        self._phase = TRAIN
        self._micro = [0, 0]  # next micro-batch index per phase
        self._cur_micro = 0
        self._closing = False  # inside a step close: emits are step-level
        self._forward_mark: Any = self._buffer.mark()
        self._forward_order_len = 0
        self._forward_ok = False
        self._forward_exit: contextlib.ExitStack | None = None
        self._forward_calls = 0  # module hooks that fired in the current root forward
        self._train_forwards = 0  # completed training forwards in the open step
        self._closed = 0  # steps closed so far
        self._grad_unscale: torch.Tensor | None = None
        self._warned: set[str] = set()
        self._checked = False  # the first recorded training step has been checked
        # issue #12: statistics not taken, {(module, probe, reason): count}; see skips()
        self._skips: dict[tuple[str, str, str], int] = {}
        self._attached = False
        self._contexts = [ProbeContext(self, p) for p in self._probes]
        self._model_name = type(model).__name__
        self._model_ref = weakref.ref(model)  # for probes that need the whole model
        # Removes the hooks if the monitor is garbage-collected while attached.
        self._finalizer = weakref.finalize(self, _remove_all, self._handles)
        try:
            self._attach(model, optimizer, scaler)
        except BaseException:
            self.detach(flush=False)
            raise

    # ------------------------------------------------------------------ attach
    def _attach(self, model: nn.Module, optimizer: Any, scaler: Any) -> None:
        ref = weakref.ref(self)
        self._forward_probes = [
            (p, c) for p, c in zip(self._probes, self._contexts) if p.needs_forward
        ]
        # Module hooks on every selected module (also without forward probes:
        # they give ``order`` its execution order).
        for i, (name, module) in enumerate(self._modules):
            self._handles.append(module.register_forward_hook(_make_forward_hook(ref, i, name)))
        # Root hooks delimit forward passes: phase, micro-batch, failed forwards.
        self._handles.append(model.register_forward_pre_hook(_root_pre(ref)))
        self._handles.append(model.register_forward_hook(_root_ok(ref)))
        self._handles.append(model.register_forward_hook(_root_end(ref), always_call=True))
        if scaler is not None:
            self._handles.append(_wrap_scaler(scaler, ref))
        elif optimizer is not None:
            inner = _unwrap_optimizer(optimizer)

            def after_step(opt: Any, args: Any, kwargs: Any) -> None:
                monitor = ref()
                if monitor is not None and monitor._attached:
                    monitor._close(explicit=True)

            self._handles.append(inner.register_step_post_hook(after_step))
        self._attached = True
        for probe, ctx in zip(self._probes, self._contexts):
            probe.setup(ctx)

    @property
    def attached(self) -> bool:
        """Whether hooks are currently attached."""
        return self._attached

    def detach(self, flush: bool = True) -> None:
        """Remove every hook of this monitor. Idempotent.

        An open step that holds recorded values is closed first (so a run that
        stops without a final :meth:`step` loses nothing), unless
        ``flush=False``. Its gradient and weight statistics are read only if
        the open step ran a training forward (a trailing validation pass adds
        its ``eval`` rows, not a training step).
        """
        try:
            if flush and self._attached:
                if self._closed == 0 and self._train_forwards > 1:
                    self._warn_unclosed()
                if not self._buffer.empty or self._train_forwards:
                    self._close(explicit=False)
            if self._buffer.sinks:  # issue #15: sinks get the last step before detach returns
                self.flush()
        finally:
            self._exit_forward_contexts()
            _remove_all(self._handles)
            self._step_handles = []
            self._attached = False
            self._modules = []
            self._buffer.clear()

    def __enter__(self) -> Monitor:
        if not self._attached:
            raise NetvizRuntimeError(
                "this Monitor is detached and cannot be used again; "
                "call netviz.watch(model, ...) for a new one"
            )
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # In a distributed run a flush is a collective: after an exception the
        # other ranks may never join it, so the open step is dropped.
        self.detach(flush=exc_type is None or not isinstance(self._gather, StepGather))

    # ------------------------------------------------------- forward passes
    def _root_begin(self) -> None:
        self._depth += 1
        if self._depth > 1:
            return
        self._phase = TRAIN if torch.is_grad_enabled() else EVAL
        self._cur_micro = self._micro[self._phase]
        self._calls = [0] * len(self._calls)
        self._forward_mark = self._buffer.mark()
        self._forward_order_len = len(self._order_seq)
        self._forward_ok = False
        self._forward_calls = 0
        if self._phase == EVAL and not self._record_eval:
            self._recording = False
        elif self._recording:
            self._enter_forward_contexts()

    def _root_end(self) -> None:
        self._depth = max(self._depth - 1, 0)
        if self._depth:
            return
        self._exit_forward_contexts()
        if self._forward_ok:
            self._micro[self._phase] += 1
            if self._phase == TRAIN:
                self._train_forwards += 1
                self._after_train_forward()
        else:  # the forward raised: it contributes nothing
            self._buffer.rollback(self._forward_mark)
            seq, keep = self._order_seq, self._forward_order_len
            for i in seq[keep:]:
                self._order_of[i] = -1
            del seq[keep:]
        self._phase = TRAIN
        self._recording = self._step % self._every == 0

    def _enter_forward_contexts(self) -> None:
        stack = None
        for probe, ctx in zip(self._probes, self._contexts):
            cm = probe.forward_context(ctx)
            if cm is not None:
                if stack is None:
                    stack = contextlib.ExitStack()
                try:
                    stack.enter_context(cm)
                except BaseException:
                    stack.close()
                    raise
        self._forward_exit = stack

    def _exit_forward_contexts(self) -> None:
        stack, self._forward_exit = self._forward_exit, None
        if stack is not None:
            stack.close()

    def _after_train_forward(self) -> None:
        if self._train_forwards == _UNCLOSED_WARN_AT and self._closed == 0:
            self._warn_unclosed()
        if (
            self._forward_calls == 0
            and self._recording
            and self._modules
            and "compiled" not in self._warned
        ):
            self._warned.add("compiled")
            compiled = _compat.compiled_original(self._model_ref()) is not None
            why = (
                "the torch.compile'd model ran before watch was attached, and its compiled "
                "code calls no hooks added later: attach watch before the first call of the "
                "compiled model, or call torch._dynamo.reset() (drops all compiled code of "
                "this process) before training on"
                if compiled
                else "the modules' forward hooks are bypassed (a compiled or scripted model, "
                "or code that calls the modules' forward() directly)"
            )
            warnings.warn(
                f"netviz: the training forward of {self._model_name} at step {self._step} "
                f"called none of the {len(self._modules)} watched modules' hooks, so forward "
                f"probes record nothing: {why}",
                NothingRecordedWarning,
                stacklevel=4,
            )

    def _on_forward(
        self, index: int, name: str, module: nn.Module, args: tuple, output: Any
    ) -> None:
        if self._depth == 0:
            # Outside a forward of the root model: a forward re-run during
            # backward is activation checkpointing's recomputation, not a call.
            if _compat.in_backward():
                return
            self._phase = TRAIN if torch.is_grad_enabled() else EVAL
            if self._phase == EVAL and not self._record_eval:
                return
            self._cur_micro = self._micro[self._phase]
        self._forward_calls += 1
        self._calls[index] += 1
        if self._order_of[index] < 0:
            self._order_of[index] = len(self._order_seq)
            self._order_seq.append(index)
        for probe, ctx in self._forward_probes:
            probe.on_forward(ctx, name, module, args, output)

    # -------------------------------------------------------- probe protocol
    def _selected_modules(self) -> list[tuple[str, nn.Module]]:
        return self._modules

    def _current_call(self, name: str) -> int:
        i = self._index.get(name)
        return self._calls[i] - 1 if i is not None and self._calls[i] else 0

    def _row_keys(self) -> tuple[int, int]:
        """``(phase, micro)`` of a row emitted now: step-level rows while the step closes."""
        if self._closing:
            return TRAIN, STEP_LEVEL
        return self._phase, self._cur_micro

    def _row_address(self, probe: Probe, module: str, call: int | None, sharded: bool) -> int:
        """Address of a new CPU row of ``probe`` in the open step (see ``ProbeContext.row_address``)."""
        phase, micro = self._row_keys()
        buf = self._buffer
        i = self._index.get(module)
        if call is None:
            call = self._calls[i] - 1 if i is not None and self._calls[i] else 0
        return buf.row(
            self._probe_index[id(probe)],
            buf.module_id(module) if i is None else i,
            call,
            sharded,
            phase,
            micro,
        )

    def _emit(self, probe: Probe, module: str, call: int, raw: torch.Tensor, sharded: bool) -> None:
        if raw.dim() != 1 or raw.numel() != len(probe.raw_fields):
            raise NetvizValueError(
                f"probe {probe.name!r} emitted a tensor of shape {tuple(raw.shape)}; "
                f"expected ({len(probe.raw_fields)},) for raw fields {probe.raw_fields}"
            )
        phase, micro = self._row_keys()
        buf = self._buffer
        i = self._index.get(module)
        mid = buf.module_id(module) if i is None else i
        buf.add(self._probe_index[id(probe)], mid, call, raw, sharded, phase, micro)

    def _emit_many(
        self, probe: Probe, modules: list[str], raw: torch.Tensor, sharded: list[bool]
    ) -> None:
        width = len(probe.raw_fields)
        if raw.dim() != 2 or raw.shape != (len(modules), width):
            raise NetvizValueError(
                f"probe {probe.name!r} emitted a block of shape {tuple(raw.shape)}; "
                f"expected ({len(modules)}, {width}) for {len(modules)} modules and raw "
                f"fields {probe.raw_fields}"
            )
        if not modules:
            return
        if self._closing:
            phase, micro = TRAIN, STEP_LEVEL
        else:
            phase, micro = self._phase, self._cur_micro
        calls = [0] * len(modules)
        ids = [self._buffer.module_id(m) for m in modules]
        self._buffer.add_block(self._probe_index[id(probe)], ids, calls, raw, sharded, phase, micro)

    def _snapshot(self, probe: Probe, module: str, call: int, tensor: torch.Tensor) -> None:
        self._buffer.add_snapshot(
            self._probe_index[id(probe)], module, call, tensor, self._phase, self._cur_micro
        )

    def _track_handle(self, handle: Any) -> None:
        self._handles.append(handle)

    def _tensor_hook(self, fn: Callable) -> Callable:
        """``fn`` run with the phase and micro-batch of the forward that registered it."""
        phase, micro, ref = self._phase, self._cur_micro, weakref.ref(self)

        def hook(grad: torch.Tensor) -> Any:
            monitor = ref()
            if monitor is None:
                return fn(grad)
            saved = monitor._phase, monitor._cur_micro
            monitor._phase, monitor._cur_micro = phase, micro
            try:
                return fn(grad)
            finally:
                monitor._phase, monitor._cur_micro = saved

        return hook

    def _track_step_handle(self, handle: Any) -> None:
        self._step_handles.append(handle)
        self._handles.append(handle)  # also removed by detach / the finalizer

    @property
    def phase(self) -> str:
        """Phase of the forward pass running now (``"train"`` or ``"eval"``)."""
        return "eval" if self._phase == EVAL else "train"

    @property
    def capturing(self) -> bool:
        """Whether a forward-time capture should record now.

        False on unrecorded steps, in eval forwards when eval recording is off,
        and during activation checkpointing's recomputation in backward.
        """
        if not self._recording:
            return False
        return not (self._depth == 0 and _compat.in_backward())

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

        Raises
        ------
        RuntimeError
            If the monitor is detached.
        """
        if not self._attached:
            raise NetvizRuntimeError(
                "Monitor.step() on a detached monitor: it records nothing more; "
                "call netviz.watch(model, ...) for a new one"
            )
        self._close(explicit=True)

    def _close(
        self,
        explicit: bool,
        flag: torch.Tensor | None = None,
        grad_unscale: torch.Tensor | None = None,
    ) -> None:
        recorded = self._step % self._every == 0
        try:
            if recorded and self._attached:
                # Gradients and weights belong to a step that trained: an
                # explicit close (optimizer step, scaler step, step()) or an
                # open step with a training forward at detach.
                if explicit or self._train_forwards:
                    self._grad_unscale = grad_unscale
                    self._closing = True
                    try:
                        for probe, ctx in zip(self._probes, self._contexts):
                            probe.on_step_end(ctx)
                    finally:
                        self._closing = False
                        self._grad_unscale = None
                if explicit and self._train_forwards and not self._checked:
                    self._checked = True
                    self._check_first_step()
                self._buffer.flush(self._step, self._orders(), flag)
        finally:
            self._buffer.clear()
            self._calls = [0] * len(self._calls)
            self._order_of = [-1] * len(self._order_of)
            self._order_seq = []
            self._micro = [0, 0]
            self._train_forwards = 0
            if self._step_handles:
                done = {id(h) for h in self._step_handles}
                for handle in self._step_handles:
                    handle.remove()
                self._handles[:] = [h for h in self._handles if id(h) not in done]
                self._step_handles = []
            self._step += 1
            self._closed += 1
            self._recording = self._step % self._every == 0

    def _orders(self) -> np.ndarray:
        """Execution order of each watched module in the step; modules not called follow
        in definition order."""
        n = len(self._order_of)
        orders = np.full(n, -1, dtype=np.int64)
        seq = self._order_seq
        orders[seq] = np.arange(len(seq))
        rest = np.flatnonzero(orders < 0)
        orders[rest] = np.arange(len(seq), n)
        return orders

    def _check_first_step(self) -> None:
        """Warn once about probes that recorded nothing in the first recorded training step."""
        seen = self._buffer.probes_seen()
        silent = [p for i, p in enumerate(self._probes) if i not in seen]
        for probe in silent:
            if probe.name in self._warned:
                continue
            self._warned.add(probe.name)
            hint = probe.empty_hint or (
                "no watched module was called in a recorded forward, or the probe finds "
                "nothing it records on this model"
                if probe.needs_forward
                else "no watched module has parameters with a .grad when the step closed "
                "(does backward run before the step closes? are the parameters frozen?)"
            )
            warnings.warn(
                f"netviz: probe {probe.name!r} recorded nothing at step {self._step} "
                f"of {self._model_name}: {hint}",
                NothingRecordedWarning,
                stacklevel=5,
            )

    def _warn_unclosed(self) -> None:
        if "unclosed" in self._warned:
            return
        self._warned.add("unclosed")
        warnings.warn(
            f"netviz: {self._train_forwards} training forwards ran in step {self._step} "
            "without any step close, so they are recorded as micro-batches of one step. "
            "Pass watch(..., optimizer=opt) (or scaler=) or call mon.step() after each "
            "optimizer step.",
            NothingRecordedWarning,
            stacklevel=4,
        )

    # ----------------------------------------------------------------- results
    def to_pandas(self) -> pd.DataFrame:
        """All records so far as a tidy DataFrame.

        Columns (see ``docs/watch.md``, "What a step is"): ``step``,
        ``skipped`` (the scaler skipped this step's optimizer update),
        ``phase`` (``"train"`` / ``"eval"``), ``micro`` (forward pass within
        the step; -1 for step-level rows), ``module``, ``call`` (call within
        one forward pass), ``order`` (execution order within the step),
        ``probe``, ``stat``, ``value``.
        """
        self._buffer.materialize()
        if not self._buffer.keep:  # issue #15: only steps that a sink failed to take are here
            self._warn_not_kept()
        return self._buffer.records.to_pandas()

    # ------------------------------------------------- sinks (issue #15 hook-up)
    def add_sink(self, sink: Any) -> None:
        """Feed every later recorded step to ``sink``.

        ``sink`` is a :class:`netviz.sinks.Sink` or any callable ``(step, table)``
        (``table``: that step's records as a DataFrame).
        """
        self._buffer.sinks.add(sink)

    def flush(self) -> None:
        """Finish pending host copies, hand them to the sinks and flush the sinks."""
        self._buffer.materialize()
        self._buffer.sinks.flush()

    def _warn_not_kept(self) -> None:
        held = self._buffer.records.steps
        if not held:
            raise NetvizRuntimeError(
                "this monitor keeps no records in memory (watch(..., keep=False)); read "
                "them from its sink instead, e.g. netviz.load(<the Parquet sink's folder>)"
            )
        warnings.warn(
            f"watch(..., keep=False): only the {len(held)} step(s) that a sink failed to "
            "take are in memory; the others are in the sinks",
            RuntimeWarning,
            stacklevel=3,
        )

    def _start_at(self, step: int) -> None:
        """Number the open step ``step`` (frameworks that resume at a global step)."""
        self._step = int(step)
        self._recording = self._step % self._every == 0

    def _set_record_eval(self, on: bool) -> None:
        """Switch recording of eval forwards (e.g. off during Lightning's sanity check)."""
        self._record_eval = bool(on)

    def histograms(self) -> pd.DataFrame:
        """Counts of the histogram probes (``activation_hist``, ``grad_hist``, ``weight_hist``).

        A tidy table of its own (:mod:`netviz.records.histograms`): one row per
        non-empty bin with ``step, skipped, phase, micro, module, call, order,
        probe, kind, bin_lo, bin_hi, count``; the NaN, +Inf and -Inf counts
        are rows of ``kind`` ``"nan"``, ``"posinf"``, ``"neginf"``.
        """
        self._buffer.materialize()
        return self._buffer.histograms.to_pandas()

    def save(self, path: str | os.PathLike) -> os.PathLike | None:
        """Write the records to ``path``: Parquet (``.parquet``) or CSV (``.csv``).

        Histograms (histogram probes) go to a sibling file in the same format,
        ``run.parquet`` -> ``run.histograms.parquet``; read them with
        :func:`netviz.load_histograms`.

        In a distributed run only rank 0 of the monitor's group keeps records
        (unless ``watch(..., all_ranks=True)``): on the other ranks this
        writes nothing and returns ``None``.
        """
        if isinstance(self._gather, StepGather) and not self._gather.keeps_records:
            return None
        out = save_frame(self.to_pandas(), path, metadata=self._report_metadata())  # issue-16
        if any(getattr(p, "table", None) == "histograms" for p in self._probes):
            save_histograms(self.histograms(), out)  # run.parquet -> run.histograms.parquet
        return out

    # --- issue #12: skipped statistics ---------------------------------------
    def _skip(self, probe: Probe, module: str, reason: str) -> None:
        key = (module, probe.name, reason)
        count = self._skips.get(key, 0)
        self._skips[key] = count + 1
        if count == 0:
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
        return {s: dict(v) for s, v in self._buffer.snapshots.items()}

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

    # ---- issue-16: run metadata for reports, notebook display (port as one block) ----
    def _report_metadata(self) -> dict[str, Any]:
        """Facts about the run that the records lack (for ``save`` and ``netviz.report``)."""
        from netviz._version import __version__

        return {
            "model": self._model_name,
            "probes": [p.name for p in self._probes],
            "every": self._every,
            "steps": self._step,
            "modules": [n for n, _ in self._modules] or None,
            "netviz": __version__,
            "torch": torch.__version__,
        }

    def _repr_html_(self) -> str:
        from netviz.reporting.display import monitor_html

        return monitor_html(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        from netviz.reporting.display import monitor_text

        p.text(repr(self) if cycle else monitor_text(self))


# ------------------------------------------------------------------ root hooks
def _root_pre(ref: weakref.ref) -> Callable:
    # On steps that are not recorded the root hooks cost one attribute check
    # each, like the module hooks: nothing is tracked then.
    def hook(module: nn.Module, args: tuple) -> None:
        monitor = ref()
        if monitor is not None and (monitor._recording or monitor._depth):
            monitor._root_begin()

    return hook


def _root_ok(ref: weakref.ref) -> Callable:
    # Registered before _root_end: runs only when the forward returned.
    def hook(module: nn.Module, args: tuple, output: Any) -> None:
        monitor = ref()
        if monitor is not None and monitor._depth == 1:
            monitor._forward_ok = True

    return hook


def _root_end(ref: weakref.ref) -> Callable:
    # always_call=True: also runs when the forward raised.
    def hook(module: nn.Module, args: tuple, output: Any) -> None:
        monitor = ref()
        if monitor is not None and monitor._depth:
            monitor._root_end()

    return hook


def _wrap_scaler(scaler: Any, ref: weakref.ref) -> _Restore:
    """Close a step at each ``scaler.step(optimizer)``, also when it skips the update."""
    step_fn = scaler.step
    had_own = "step" in vars(scaler)

    def step(optimizer: Any, *args: Any, **kwargs: Any) -> Any:
        monitor = ref()
        if monitor is None or not monitor._attached:
            return step_fn(optimizer, *args, **kwargs)
        enabled = scaler.is_enabled()
        pre_unscaled = enabled and _compat.grad_scaler_stage_unscaled(scaler, optimizer)
        scale = _compat.grad_scaler_scale(scaler) if enabled else None
        out = step_fn(optimizer, *args, **kwargs)
        flag = _compat.grad_scaler_found_inf(scaler, optimizer) if enabled else None
        unscale = None
        if (
            flag is not None
            and scale is not None
            and not pre_unscaled
            and _compat.optimizer_unscales_itself(optimizer)
        ):
            # A fused optimizer leaves the gradients of a skipped step scaled.
            one = torch.ones((), dtype=torch.float32, device=scale.device)
            unscale = torch.where(flag.to(scale.device) > 0, one / scale.float(), one)
        monitor._close(explicit=True, flag=flag, grad_unscale=unscale)
        return out

    scaler.step = step

    def restore() -> None:
        if had_own:
            scaler.step = step_fn
        else:
            with contextlib.suppress(AttributeError):
                del scaler.step

    return _Restore(restore)
