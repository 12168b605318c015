"""The step buffer: one step's raw entries through gather, host copy and finalise.

The :class:`~netviz.capture.monitor.Monitor` decides *when* (hooks, the step
life cycle); a :class:`StepBuffer` holds *what* one step recorded: the raw
device vectors the probes emitted, tagged with their phase, micro-batch and
call, and the snapshots. :meth:`StepBuffer.flush` concatenates a step into one
buffer, gathers it across ranks (one collective) and starts one host copy;
:meth:`StepBuffer.materialize` finalises pending steps on the host into the
:class:`~netviz.records.store.RecordStore`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from netviz.capture.distributed import StepGather
from netviz.capture.probe import Probe
from netviz.records.histograms import HistogramStore
from netviz.records.store import RecordStore
from netviz.sinks.base import SinkSet  # issue #15: sinks (framework-free module)

__all__ = ["EVAL", "PHASES", "TRAIN", "Gather", "StepBuffer"]

#: ``gather(buffer) -> (ranks, len)``: how a step buffer is collected from ranks.
Gather = Callable[[torch.Tensor], torch.Tensor]

TRAIN, EVAL = 0, 1
#: Names of the phases, indexed by ``TRAIN`` / ``EVAL``.
PHASES = ("train", "eval")


class _Entry:
    """One emitted vector, or a block of ``n`` rows (``module``/``call``/``sharded`` lists)."""

    __slots__ = ("call", "micro", "module", "n", "phase", "probe", "raw", "sharded")

    def __init__(
        self,
        probe: int,
        module: str,
        call: int,
        raw: torch.Tensor,
        sharded: bool,
        phase: int,
        micro: int,
    ):
        self.probe, self.module, self.call, self.raw = probe, module, call, raw
        self.sharded, self.phase, self.micro = sharded, phase, micro
        self.n = 0  # 0: a single row; k > 0: a block of k rows


def _block(
    probe: int,
    modules: list[str],
    calls: list[int],
    raw: torch.Tensor,
    sharded: list[bool],
    phase: int,
    micro: int,
) -> _Entry:
    entry = _Entry(probe, modules, calls, raw.reshape(-1), sharded, phase, micro)  # type: ignore[arg-type]
    entry.n = len(modules)
    return entry


class _PendingStep:
    """A flushed step whose host copy may still be in flight (CUDA, pinned memory)."""

    __slots__ = ("entries", "event", "has_flag", "host", "orders", "step")

    def __init__(
        self,
        step: int,
        entries: list[_Entry],
        host: torch.Tensor,
        event: Any,
        orders: dict[str, int],
        has_flag: bool,
    ):
        self.step, self.entries, self.host, self.event = step, entries, host, event
        self.orders, self.has_flag = orders, has_flag


def _rows(e: _Entry) -> list[tuple[str, int, bool]]:
    """``(module, call, sharded)`` of each row of an entry."""
    if e.n:
        return list(zip(e.module, e.call, e.sharded))  # type: ignore[arg-type]
    return [(e.module, e.call, e.sharded)]


def _to_host(buffer: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """Start copying ``buffer`` to the host; the copy is asynchronous on CUDA."""
    if buffer.is_cuda:
        host = torch.empty(buffer.shape, dtype=buffer.dtype, pin_memory=True)
        host.copy_(buffer, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        return host, event
    return buffer.to("cpu"), None


class StepBuffer:
    """Entries and snapshots of the open step, and steps waiting for their host copy."""

    def __init__(
        self,
        probes: Sequence[Probe],
        gather: Gather | None,
        sinks: Sequence[Any] = (),
        keep: bool = True,
    ):
        self.sinks = SinkSet(sinks)  # issue #15
        self.keep = keep
        self._probes = list(probes)
        self._gather = gather
        self.entries: list[_Entry] = []
        self.snapshots_open: list[tuple[int, str, int, torch.Tensor]] = []
        self._pending: list[_PendingStep] = []
        self.records = RecordStore()
        self.histograms = HistogramStore()  # probes with table = "histograms" (#14)
        self.snapshots: dict[int, dict[tuple[str, str, int], torch.Tensor]] = {}

    # ------------------------------------------------------------- the open step
    def add(
        self,
        probe: int,
        module: str,
        call: int,
        raw: torch.Tensor,
        sharded: bool,
        phase: int,
        micro: int,
    ) -> None:
        self.entries.append(_Entry(probe, module, call, raw, sharded, phase, micro))

    def add_block(
        self,
        probe: int,
        modules: list[str],
        calls: list[int],
        raw: torch.Tensor,
        sharded: list[bool],
        phase: int,
        micro: int,
    ) -> None:
        """``len(modules)`` rows at once: ``raw`` is ``(len(modules), width)``."""
        self.entries.append(_block(probe, modules, calls, raw, sharded, phase, micro))

    def add_snapshot(
        self,
        probe: int,
        module: str,
        call: int,
        tensor: torch.Tensor,
        phase: int = TRAIN,
        micro: int = 0,
    ) -> None:
        self.snapshots_open.append((probe, module, call, tensor.detach().clone(), phase, micro))

    def mark(self) -> tuple[int, int]:
        """A position to :meth:`rollback` to (start of a forward pass)."""
        return len(self.entries), len(self.snapshots_open)

    def rollback(self, mark: tuple[int, int]) -> None:
        """Drop what was added since ``mark`` (a forward that raised)."""
        del self.entries[mark[0] :]
        del self.snapshots_open[mark[1] :]

    def probes_seen(self) -> set[int]:
        """Indices of the probes with at least one entry or snapshot in the open step."""
        return {e.probe for e in self.entries} | {s[0] for s in self.snapshots_open}

    def clear(self) -> None:
        self.entries = []
        self.snapshots_open = []

    @property
    def empty(self) -> bool:
        return not self.entries and not self.snapshots_open

    # --------------------------------------------------------------------- flush
    def flush(self, step: int, orders: dict[str, int], flag: torch.Tensor | None) -> None:
        """Close ``step``: one buffer, one collective (if distributed), one host copy.

        ``orders`` maps module names to their execution order in the step;
        ``flag`` (a 1-element device tensor or ``None``) is stored as the
        step's ``skipped`` mark (> 0: the optimizer step was skipped).
        """
        entries = self.entries
        has_flag = flag is not None
        if self._gather is not None:
            # Every rank takes part in the collective, even with nothing to send.
            buffer = self._pack(entries, flag)
            if isinstance(self._gather, StepGather):
                layout = [
                    (e.probe, e.phase, e.micro, m, c, sh) for e in entries for m, c, sh in _rows(e)
                ]
                if has_flag:
                    layout.append(("skipped",))
                gathered = self._gather.gather_step(buffer, step, layout)
                if not self._gather.keeps_records:  # only rank 0 of the group stores
                    entries, gathered = [], gathered[:, :0]
            else:
                gathered = self._gather(buffer)
            host, event = _to_host(gathered) if entries else (None, None)
        elif entries:
            host, event = _to_host(self._pack(entries, flag))
        else:
            host, event = None, None
        if host is not None:
            self._pending.append(_PendingStep(step, entries, host, event, orders, has_flag))
        if self.snapshots_open:
            # One snapshot per (probe, module, call) and step: that of the first
            # training forward (micro-batch 0); a step without a training
            # forward keeps its first eval forward's.
            names = [p.name for p in self._probes]
            kept: dict[tuple[str, str, int], torch.Tensor] = {}
            ranked = sorted(self.snapshots_open, key=lambda s: (s[4], s[5]))  # stable
            for p, m, c, t, _, _ in ranked:
                kept.setdefault((names[p], m, c), t)
            # in call order, as the forward produced them
            order = {(names[p], m, c): i for i, (p, m, c, *_) in enumerate(self.snapshots_open)}
            self.snapshots[step] = {
                k: kept[k].to("cpu") for k in sorted(kept, key=lambda k: order[k])
            }
        self.clear()
        if len(self._pending) > 1:
            self.materialize(keep_last=True)

    def _pack(self, entries: list[_Entry], flag: torch.Tensor | None) -> torch.Tensor:
        raws = [e.raw for e in entries]
        if flag is not None:
            raws.append(flag.reshape(1))
        if not raws:
            return torch.zeros(0, dtype=torch.float64)
        first = raws[0]
        # A model split over devices emits on each; gather on the first one.
        return torch.cat([r.to(device=first.device, dtype=first.dtype) for r in raws])

    def materialize(self, keep_last: bool = False) -> None:
        """Finalise pending steps on the host (waits for their copies)."""
        todo = self._pending[:-1] if keep_last else self._pending
        self._pending = self._pending[-1:] if keep_last else []
        for pending in todo:
            if pending.event is not None:
                pending.event.synchronize()
            self._store(pending)

    @property
    def pending(self) -> int:
        """Number of flushed steps not yet finalised on the host."""
        return len(self._pending)

    def _store(self, pending: _PendingStep) -> None:
        flat = pending.host.numpy().astype(np.float64, copy=False)
        if flat.ndim == 1:
            flat = flat[None, :]
        skipped = False
        if pending.has_flag:
            skipped = bool(flat[0, -1] > 0)
            flat = flat[:, :-1]
        # per probe: flat offsets of its rows, and the rows' keys
        by_probe: dict[int, dict[str, list]] = {}
        offset = 0
        for e in pending.entries:
            width = len(self._probes[e.probe].raw_fields)
            acc = by_probe.get(e.probe)
            if acc is None:
                acc = by_probe[e.probe] = {
                    "offset": [], "module": [], "call": [], "sharded": [], "phase": [],
                    "micro": [],
                }  # fmt: skip
            if e.n:
                acc["offset"].extend(range(offset, offset + e.n * width, width))
                acc["module"].extend(e.module)
                acc["call"].extend(e.call)
                acc["sharded"].extend(e.sharded)
                acc["phase"].extend([e.phase] * e.n)
                acc["micro"].extend([e.micro] * e.n)
                offset += e.n * width
            else:
                acc["offset"].append(offset)
                acc["module"].append(e.module)
                acc["call"].append(e.call)
                acc["sharded"].append(e.sharded)
                acc["phase"].append(e.phase)
                acc["micro"].append(e.micro)
                offset += width
        per_rank = getattr(self._gather, "per_rank", False)
        orders = pending.orders
        grids = []
        for pi, acc in by_probe.items():
            probe = self._probes[pi]
            width = len(probe.raw_fields)
            n = len(acc["offset"])
            idx = np.asarray(acc["offset"])[:, None] + np.arange(width)[None, :]
            raw = flat[:, idx]  # (ranks, n, width)
            if getattr(probe, "table", None) == "histograms":  # a table of their own
                self._store_histograms(pending, probe, acc, raw, skipped)
                continue
            if per_rank:  # each rank's own statistics, finalized separately
                parts = list(enumerate(raw))
            elif raw.shape[0] > 1:
                parts = [(-1, probe.merge(raw, np.asarray(acc["sharded"], dtype=bool)))]
            else:
                parts = [(-1, raw[0])]
            keys = {
                "module": acc["module"],
                "call": acc["call"],
                "phase": acc["phase"],
                "micro": acc["micro"],
                "order": [orders.setdefault(m, len(orders)) for m in acc["module"]],
            }
            optional = np.array([s in probe.optional_stats for s in probe.stats], dtype=bool)
            for rank, merged in parts:
                final = np.asarray(probe.finalize(merged), dtype=np.float64)
                final = final.reshape(n, len(probe.stats))
                # optional statistics that are undefined (NaN) produce no row
                keep = ~(np.isnan(final) & optional[None, :])
                grids.append((keys, probe.name, probe.stats, final, keep, rank))
        self._keep_step(pending.step, grids, per_rank, skipped)

    # ------------------------------------------------- sinks (issue #15 hook-up)
    def _keep_step(self, step: int, grids: list[tuple], per_rank: bool, skipped: bool) -> None:
        """Store one finalised step and hand its host-side table to the sinks.

        Sinks run here, after the step's single transfer, never inside hooks. A
        step that a sink failed to take stays in memory even with ``keep=False``.
        """
        delivered = True
        if self.sinks:
            one = RecordStore()
            one.append_grids(step, grids, per_rank=per_rank, skipped=skipped)
            table = one.to_pandas()
            # this step's histogram-probe blocks (dense counts), appended just before
            blocks = self.histograms._blocks
            n_hist = next(
                (i for i, b in enumerate(reversed(blocks)) if b.step != step), len(blocks)
            )
            table.attrs["histograms"] = blocks[len(blocks) - n_hist :]
            delivered = self.sinks.write(step, table)  # histograms stay in memory (keep: records)
        if self.keep or not delivered:
            self.records.append_grids(step, grids, per_rank=per_rank, skipped=skipped)

    def _store_histograms(
        self,
        pending: _PendingStep,
        probe: Probe,
        acc: dict[str, list],
        raw: np.ndarray,
        skipped: bool,
    ) -> None:
        """Counts ``raw`` ``(ranks, n, fields)`` of a histogram probe into :attr:`histograms`."""
        orders = pending.orders
        if getattr(self._gather, "per_rank", False):
            parts: list[tuple[int | None, np.ndarray]] = list(enumerate(raw))
        elif raw.shape[0] > 1:
            parts = [(None, probe.merge(raw, np.asarray(acc["sharded"], dtype=bool)))]
        else:
            parts = [(None, raw[0])]
        for rank, counts in parts:
            self.histograms.append(
                pending.step,
                probe.name,
                probe.grid.edges,  # type: ignore[attr-defined]
                counts,
                acc["module"],
                acc["call"],
                phases=[PHASES[p] for p in acc["phase"]],
                micros=acc["micro"],
                orders=[orders.setdefault(m, len(orders)) for m in acc["module"]],
                skipped=skipped,
                rank=rank,
            )
