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

from array import array
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from netviz.capture._fused import clean_context
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
    """One emitted device vector, or a block of ``n`` rows (``module``/``call``/``sharded`` lists).

    Only for vectors that are not plain CPU tensors (CUDA, MPS, traced by
    ``torch.compile``): CPU rows go to the probe's :class:`_Slab`. ``module``
    is an index into the buffer's module table.
    """

    __slots__ = ("call", "micro", "module", "n", "phase", "probe", "raw", "sharded")

    def __init__(
        self,
        probe: int,
        module: Any,
        call: Any,
        raw: torch.Tensor,
        sharded: Any,
        phase: int,
        micro: int,
        n: int = 0,
    ):
        self.probe, self.module, self.call, self.raw = probe, module, call, raw
        self.sharded, self.phase, self.micro = sharded, phase, micro
        self.n = n  # 0: a single row; k > 0: a block of k rows (lists)


class _Slab:
    """The CPU rows of one probe in the open step, written in place.

    A float64 ``(capacity, width)`` tensor reused step after step (it grows
    by doubling) and one flat integer array per key column: a row costs a few
    appends and, for the fused kernel, a pointer (:meth:`row`) that the C
    kernel writes the row's raw statistics to; no tensor or object per row.
    Rows emitted as tensors (:meth:`late_rows`) are copied in at the flush,
    all in one operation, outside the user's forward and its modes.
    """

    __slots__ = (
        "call",
        "cap",
        "data",
        "late",
        "micro",
        "module",
        "n",
        "phase",
        "ptr",
        "sharded",
        "stride",
        "width",
    )  # fmt: skip

    def __init__(self, width: int, cap: int = 64):
        self.n = 0
        self.width = width
        self.stride = width * 8  # bytes per row (float64)
        self.module, self.call, self.micro = array("q"), array("q"), array("q")
        self.phase, self.sharded = array("b"), array("b")
        self.late: list[tuple[int, torch.Tensor]] = []  # (first row, raw (k, width))
        self.data: torch.Tensor | None = None
        self.cap, self.ptr = 0, 0
        self._grow(cap)

    def _grow(self, cap: int) -> None:
        # never an inference tensor, a functorch-wrapped or a mode's tensor
        with clean_context():
            data = torch.empty((cap, self.width), dtype=torch.float64)
            if self.data is not None and self.n:
                data[: self.n] = self.data[: self.n]
        self.data, self.cap, self.ptr = data, cap, data.data_ptr()

    def row(self, module: int, call: int, sharded: bool, phase: int, micro: int) -> int:
        """Add a row; its address (float64 ``width`` values, to be written before the flush)."""
        n = self.n
        if n == self.cap:
            self._grow(2 * n)
        self.n = n + 1
        self.module.append(module)
        self.call.append(call)
        self.sharded.append(sharded)
        self.phase.append(phase)
        self.micro.append(micro)
        return self.ptr + n * self.stride

    def late_rows(
        self,
        modules: list[int],
        calls: list[int],
        sharded: list[bool],
        phase: int,
        micro: int,
        raw: torch.Tensor,
    ) -> None:
        """Add ``len(modules)`` rows whose values ``raw`` are copied in at the flush."""
        n, k = self.n, len(modules)
        if n + k > self.cap:
            self._grow(max(2 * self.cap, n + k))
        self.late.append((n, raw.reshape(k, self.width)))
        self.n = n + k
        self.module.extend(modules)
        self.call.extend(calls)
        self.sharded.extend(array("b", sharded))
        self.phase.extend(array("b", [phase]) * k)
        self.micro.extend(array("q", [micro]) * k)

    def values(self) -> torch.Tensor:
        """The rows' values ``(n, width)`` (a view; valid until the slab is reused)."""
        data = self.data
        assert data is not None
        if self.late:
            # at the flush: outside the user's forward (like the torch.cat of the rows)
            with torch.no_grad():
                if len(self.late) <= 8:  # a block or a few rows: slices, no index tensor
                    for s, r in self.late:
                        data[s : s + len(r)] = r
                else:
                    rows = torch.cat([torch.arange(s, s + len(r)) for s, r in self.late])
                    data[rows] = torch.cat([r.to(torch.float64) for _, r in self.late])
            self.late = []
        return data[: self.n]

    def truncate(self, n: int) -> None:
        if n < self.n:
            self.n = n
            for col in (self.module, self.call, self.sharded, self.phase, self.micro):
                del col[n:]
            self.late = [(s, r) for s, r in self.late if s < n]

    def keys(self) -> _Keys:
        """The rows' key columns as numpy arrays (copies: the slab is reused)."""
        return _Keys(
            np.array(self.module, dtype=np.int64),
            np.array(self.call, dtype=np.int64),
            np.array(self.sharded, dtype=bool),
            np.array(self.phase, dtype=np.int64),
            np.array(self.micro, dtype=np.int64),
        )


class _Keys:
    """Key columns of some rows (numpy arrays of equal length)."""

    __slots__ = ("call", "micro", "module", "phase", "sharded")

    def __init__(
        self,
        module: np.ndarray,
        call: np.ndarray,
        sharded: np.ndarray,
        phase: np.ndarray,
        micro: np.ndarray,
    ):
        self.module, self.call, self.sharded = module, call, sharded
        self.phase, self.micro = phase, micro

    def __len__(self) -> int:
        return len(self.module)


def _entry_keys(entries: list[_Entry]) -> _Keys:
    """Key columns of the rows of ``entries``, in order."""
    cols: tuple[list, list, list, list, list] = ([], [], [], [], [])
    for e in entries:
        if e.n:
            parts = (e.module, e.call, e.sharded, [e.phase] * e.n, [e.micro] * e.n)
            for col, part in zip(cols, parts):
                col.extend(part)
        else:
            for col, v in zip(cols, (e.module, e.call, e.sharded, e.phase, e.micro)):
                col.append(v)
    m, c, s, p, mi = cols
    return _Keys(
        np.asarray(m, dtype=np.int64),
        np.asarray(c, dtype=np.int64),
        np.asarray(s, dtype=bool),
        np.asarray(p, dtype=np.int64),
        np.asarray(mi, dtype=np.int64),
    )


def _cat_keys(parts: list[_Keys]) -> _Keys:
    if len(parts) == 1:
        return parts[0]
    return _Keys(
        *(
            np.concatenate([getattr(k, f) for k in parts])
            for f in ("module", "call", "sharded", "phase", "micro")
        )
    )


class _PendingStep:
    """A flushed step whose host copy may still be in flight (CUDA, pinned memory).

    ``parts`` lists, in buffer order, ``(probe, offset, keys)`` runs of rows
    (an entry's rows or a slab's); ``orders`` is the execution order of each
    module of the table (``-1``: not assigned yet).
    """

    __slots__ = ("event", "has_flag", "host", "orders", "parts", "step")

    def __init__(
        self,
        step: int,
        parts: list[tuple[int, int, _Keys]],
        host: torch.Tensor,
        event: Any,
        orders: np.ndarray,
        has_flag: bool,
    ):
        self.step, self.parts, self.host, self.event = step, parts, host, event
        self.orders, self.has_flag = orders, has_flag


def _to_host(buffer: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """Start copying ``buffer`` to the host; the copy is asynchronous on CUDA."""
    if buffer.is_cuda:
        host = torch.empty(buffer.shape, dtype=buffer.dtype, pin_memory=True)
        host.copy_(buffer, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        return host, event
    return buffer.to("cpu"), None


def _plain_cpu(raw: torch.Tensor) -> bool:
    return type(raw) is torch.Tensor and raw.is_cpu and not torch.compiler.is_compiling()


class StepBuffer:
    """Entries and snapshots of the open step, and steps waiting for their host copy.

    ``names`` is the table of module names rows refer to by index (the
    monitor's selected modules, in order); other names are added on first use.
    """

    def __init__(
        self,
        probes: Sequence[Probe],
        gather: Gather | None,
        sinks: Sequence[Any] = (),
        keep: bool = True,
        names: Sequence[str] = (),
    ):
        self.sinks = SinkSet(sinks)  # issue #15
        self.keep = keep
        self._probes = list(probes)
        self._widths = [len(p.raw_fields) for p in self._probes]
        self._gather = gather
        self.names: list[str] = list(names)
        self._ids = {n: i for i, n in enumerate(self.names)}
        self.entries: list[_Entry] = []
        self.slabs: dict[int, _Slab] = {}
        self._first: list[int] = []  # probes in the order of their first row this step
        self.snapshots_open: list[tuple[int, str, int, torch.Tensor, int, int]] = []
        self._pending: list[_PendingStep] = []
        self.records = RecordStore()
        self.histograms = HistogramStore()  # probes with table = "histograms" (#14)
        self.snapshots: dict[int, dict[tuple[str, str, int], torch.Tensor]] = {}

    # ------------------------------------------------------------- the open step
    def module_id(self, name: str) -> int:
        """Index of ``name`` in the module table (added if new)."""
        i = self._ids.get(name)
        if i is None:
            i = self._ids[name] = len(self.names)
            self.names.append(name)
        return i

    def slab(self, probe: int) -> _Slab:
        """The CPU rows of ``probe`` in the open step."""
        slab = self.slabs.get(probe)
        if slab is None:
            slab = self.slabs[probe] = _Slab(self._widths[probe])
        if not slab.n and probe not in self._first:
            self._first.append(probe)
        return slab

    def row(self, probe: int, module: int, call: int, sharded: bool, phase: int, micro: int) -> int:
        """Address of a new CPU row of ``probe`` (float64, ``len(raw_fields)`` values)."""
        slab = self.slabs.get(probe)
        if slab is None or not slab.n:
            slab = self.slab(probe)
        return slab.row(module, call, sharded, phase, micro)

    def add(
        self,
        probe: int,
        module: int,
        call: int,
        raw: torch.Tensor,
        sharded: bool,
        phase: int,
        micro: int,
    ) -> None:
        if _plain_cpu(raw):
            self.slab(probe).late_rows([module], [call], [sharded], phase, micro, raw)
            return
        if probe not in self._first:
            self._first.append(probe)
        self.entries.append(_Entry(probe, module, call, raw, sharded, phase, micro))

    def add_block(
        self,
        probe: int,
        modules: list[int],
        calls: list[int],
        raw: torch.Tensor,
        sharded: list[bool],
        phase: int,
        micro: int,
    ) -> None:
        """``len(modules)`` rows at once: ``raw`` is ``(len(modules), width)``."""
        if _plain_cpu(raw):
            self.slab(probe).late_rows(modules, calls, sharded, phase, micro, raw)
            return
        if probe not in self._first:
            self._first.append(probe)
        block = _Entry(probe, modules, calls, raw.reshape(-1), sharded, phase, micro, len(modules))
        self.entries.append(block)

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

    def mark(self) -> tuple[int, int, dict[int, int]]:
        """A position to :meth:`rollback` to (start of a forward pass)."""
        return len(self.entries), len(self.snapshots_open), {p: s.n for p, s in self.slabs.items()}

    def rollback(self, mark: tuple[int, int, dict[int, int]]) -> None:
        """Drop what was added since ``mark`` (a forward that raised)."""
        del self.entries[mark[0] :]
        del self.snapshots_open[mark[1] :]
        for p, slab in self.slabs.items():
            slab.truncate(mark[2].get(p, 0))

    def probes_seen(self) -> set[int]:
        """Indices of the probes with at least one entry or snapshot in the open step."""
        seen = {e.probe for e in self.entries} | {s[0] for s in self.snapshots_open}
        return seen | {p for p, s in self.slabs.items() if s.n}

    def clear(self) -> None:
        self.entries = []
        self.snapshots_open = []
        self._first = []
        for slab in self.slabs.values():
            slab.truncate(0)

    @property
    def empty(self) -> bool:
        return (
            not self.entries
            and not self.snapshots_open
            and not any(s.n for s in self.slabs.values())
        )

    # --------------------------------------------------------------------- flush
    def _parts(self) -> tuple[list[tuple[int, int, _Keys]], list[torch.Tensor]]:
        """The open step's rows as ``(probe, offset, keys)`` runs and their raw tensors."""
        parts: list[tuple[int, int, _Keys]] = []
        raws: list[torch.Tensor] = []
        offset = 0
        by_probe: dict[int, list[_Entry]] = {}
        for e in self.entries:
            by_probe.setdefault(e.probe, []).append(e)
        for p in self._first:
            width = self._widths[p]
            group = by_probe.get(p)
            if group:
                keys = _entry_keys(group)
                parts.append((p, offset, keys))
                raws.extend(e.raw.reshape(-1) for e in group)
                offset += len(keys) * width
            slab = self.slabs.get(p)
            if slab is not None and slab.n:
                parts.append((p, offset, slab.keys()))
                raws.append(slab.values().reshape(-1))
                offset += slab.n * width
        return parts, raws

    def flush(self, step: int, orders: np.ndarray, flag: torch.Tensor | None) -> None:
        """Close ``step``: one buffer, one collective (if distributed), one host copy.

        ``orders`` gives the execution order in the step of each module of the
        table (by index; ``-1`` where not assigned); ``flag`` (a 1-element
        device tensor or ``None``) is stored as the step's ``skipped`` mark
        (> 0: the optimizer step was skipped).
        """
        parts, raws = self._parts()
        has_flag = flag is not None
        if self._gather is not None:
            # Every rank takes part in the collective, even with nothing to send.
            buffer = self._pack(raws, flag)
            if isinstance(self._gather, StepGather):
                names = self.names
                layout: list[tuple[Any, ...]] = [
                    (p, int(ph), int(mi), names[m], int(c), bool(sh))
                    for p, _, k in parts
                    for m, c, sh, ph, mi in zip(k.module, k.call, k.sharded, k.phase, k.micro)
                ]
                if has_flag:
                    layout.append(("skipped",))
                gathered = self._gather.gather_step(buffer, step, layout)
                if not self._gather.keeps_records:  # only rank 0 of the group stores
                    parts, gathered = [], gathered[:, :0]
            else:
                gathered = self._gather(buffer)
            host, event = _to_host(gathered) if parts else (None, None)
        elif parts:
            host, event = _to_host(self._pack(raws, flag))
        else:
            host, event = None, None
        if host is not None:
            self._pending.append(_PendingStep(step, parts, host, event, orders, has_flag))
        if self.snapshots_open:
            # One snapshot per (probe, module, call) and step: that of the first
            # training forward (micro-batch 0); a step without a training
            # forward keeps its first eval forward's.
            pnames = [p.name for p in self._probes]
            kept: dict[tuple[str, str, int], torch.Tensor] = {}
            ranked = sorted(self.snapshots_open, key=lambda s: (s[4], s[5]))  # stable
            for p, m, c, t, _, _ in ranked:
                kept.setdefault((pnames[p], m, c), t)
            # in call order, as the forward produced them
            order = {(pnames[p], m, c): i for i, (p, m, c, *_) in enumerate(self.snapshots_open)}
            self.snapshots[step] = {
                k: kept[k].to("cpu") for k in sorted(kept, key=lambda k: order[k])
            }
        self.clear()
        if len(self._pending) > 1:
            self.materialize(keep_last=True)

    @staticmethod
    def _pack(raws: list[torch.Tensor], flag: torch.Tensor | None) -> torch.Tensor:
        if flag is not None:
            raws = [*raws, flag.reshape(1)]
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
        # runs of one probe next to each other (entries first, then the slab)
        by_probe: dict[int, list[tuple[int, _Keys]]] = {}
        for p, offset, keys in pending.parts:
            by_probe.setdefault(p, []).append((offset, keys))
        per_rank = getattr(self._gather, "per_rank", False)
        orders = np.full(len(self.names), -1, dtype=np.int64)
        orders[: len(pending.orders)] = pending.orders
        grids = []
        for pi, runs in by_probe.items():
            probe = self._probes[pi]
            width = self._widths[pi]
            raws = [
                flat[:, off : off + len(k) * width].reshape(flat.shape[0], len(k), width)
                for off, k in runs
            ]
            raw = raws[0] if len(raws) == 1 else np.concatenate(raws, axis=1)  # (ranks, n, w)
            keys = _cat_keys([k for _, k in runs])
            n = len(keys)
            order = self._orders(orders, keys.module)
            if getattr(probe, "table", None) == "histograms":  # a table of their own
                self._store_histograms(pending.step, probe, keys, order, raw, skipped)
                continue
            if per_rank:  # each rank's own statistics, finalized separately
                parts = list(enumerate(raw))
            elif raw.shape[0] > 1:
                parts = [(-1, probe.merge(raw, keys.sharded))]
            else:
                parts = [(-1, raw[0])]
            rowkeys = {
                "module": keys.module,
                "module_table": self.names,
                "call": keys.call,
                "phase": keys.phase,
                "micro": keys.micro,
                "order": order,
            }
            optional = np.array([s in probe.optional_stats for s in probe.stats], dtype=bool)
            for rank, merged in parts:
                final = np.asarray(probe.finalize(merged), dtype=np.float64)
                final = final.reshape(n, len(probe.stats))
                # optional statistics that are undefined (NaN) produce no row
                keep = ~(np.isnan(final) & optional[None, :])
                grids.append((rowkeys, probe.name, probe.stats, final, keep, rank))
        self._keep_step(pending.step, grids, per_rank, skipped)

    @staticmethod
    def _orders(orders: np.ndarray, modules: np.ndarray) -> np.ndarray:
        """Execution order of each row's module; modules without one get the next, in row order."""
        order = orders[modules]
        missing = order < 0
        if missing.any():
            new, first = np.unique(modules[missing], return_index=True)
            nxt = int(orders.max(initial=-1)) + 1
            orders[new[np.argsort(first)]] = np.arange(nxt, nxt + len(new))
            order = orders[modules]
        return order

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
        step: int,
        probe: Probe,
        keys: _Keys,
        order: np.ndarray,
        raw: np.ndarray,
        skipped: bool,
    ) -> None:
        """Counts ``raw`` ``(ranks, n, fields)`` of a histogram probe into :attr:`histograms`."""
        if getattr(self._gather, "per_rank", False):
            parts: list[tuple[int | None, np.ndarray]] = list(enumerate(raw))
        elif raw.shape[0] > 1:
            parts = [(None, probe.merge(raw, keys.sharded))]
        else:
            parts = [(None, raw[0])]
        names = self.names
        for rank, counts in parts:
            self.histograms.append(
                step,
                probe.name,
                probe.grid.edges,  # type: ignore[attr-defined]
                counts,
                [names[m] for m in keys.module],
                keys.call.tolist(),
                phases=[PHASES[p] for p in keys.phase],
                micros=keys.micro.tolist(),
                orders=order.tolist(),
                skipped=skipped,
                rank=rank,
            )
