"""The sink protocol and the monitor's dispatcher.

A *sink* receives each recorded step after the monitor's single host
transfer: ``sink(step, table)``, where ``table`` is that step's record rows
(a DataFrame with the record columns). A :class:`Sink` also has
:meth:`Sink.flush` and :meth:`Sink.close`; a plain callable is accepted as it
is (for trackio, DVCLive, a CSV file, ...).

This module imports no tracker or framework: the monitor depends on it.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeAlias

import pandas as pd

from netviz.errors import NetvizTypeError

if TYPE_CHECKING:
    from netviz.sinks.series import Hist, HistogramMode, SeriesSpec, TagFn

__all__ = ["Sink", "SinkLike", "SinkSet", "TrackerSink", "as_sink_list"]

#: What ``sinks=`` takes: a :class:`Sink` or any callable ``(step, table)``.
SinkLike: TypeAlias = Callable[[int, pd.DataFrame], object]


class Sink:
    """Base class of the built-in sinks.

    Subclasses implement :meth:`write`; :meth:`flush` and :meth:`close` are
    optional. Calling a sink is the same as :meth:`write`.
    """

    def write(self, step: int, table: pd.DataFrame) -> None:
        """Take the records of one recorded step."""
        raise NotImplementedError

    def flush(self) -> None:
        """Push buffered data to storage (called when the monitor flushes or detaches)."""

    def close(self) -> None:
        """Flush and release what the sink opened itself (never a writer it was given)."""
        self.flush()

    def __call__(self, step: int, table: pd.DataFrame) -> None:
        self.write(step, table)

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class TrackerSink(Sink):
    """A sink that writes one scalar per series and step (TensorBoard, wandb, MLflow).

    ``series``: ``"compact"`` (default, :data:`netviz.sinks.COMPACT_SERIES`),
    ``"all"``, or a list of ``"probe.stat"``/``"probe"`` names. ``tag_fn(probe,
    stat, module, phase)`` renames series (default ``netviz/{probe}.{stat}/{module}``).
    ``step_offset`` is added to netviz's step on the tracker's axis.
    ``histograms``: ``"auto"``, ``"moments"`` or ``False`` (see
    :class:`netviz.sinks.TensorBoard`), for trackers that show histograms.
    """

    def __init__(
        self,
        series: SeriesSpec = "compact",
        tag_fn: TagFn | None = None,
        step_offset: int = 0,
        histograms: HistogramMode = False,
    ) -> None:
        from netviz.sinks.series import check_histograms, resolve_series

        if tag_fn is not None and not callable(tag_fn):
            raise NetvizTypeError(
                f"`tag_fn` must be None or a callable (probe, stat, module, phase) -> str, "
                f"got {tag_fn!r}"
            )
        if isinstance(step_offset, bool) or not isinstance(step_offset, int):
            raise NetvizTypeError(f"`step_offset` must be an int, got {step_offset!r}")
        self._wanted = resolve_series(series)
        self._tag_fn = tag_fn
        self.step_offset = step_offset
        self._histograms = check_histograms(histograms)

    def scalars(self, table: pd.DataFrame) -> dict[str, float]:
        """The ``{tag: value}`` of one step's table."""
        from netviz.sinks.series import step_scalars

        out = step_scalars(table, self._wanted, self._tag_fn)
        if out and "skipped" in table.columns:  # the GradScaler skipped this optimizer step
            out["netviz/skipped"] = float(bool(table["skipped"].any()))
        return out

    def histograms(self, table: pd.DataFrame) -> list[Hist]:
        """The histograms of one step's table (none with ``histograms=False``)."""
        from netviz.sinks.series import step_histograms

        return step_histograms(table, self._histograms) if self._histograms else []


def _check_sink(sink: object) -> SinkLike:
    if not callable(sink):
        raise NetvizTypeError(
            f"a sink must be a netviz.sinks object or a callable (step, table), "
            f"got {type(sink).__name__}: {sink!r:.60}"
        )
    return sink


def as_sink_list(sinks: SinkLike | Iterable[SinkLike] | None) -> list[SinkLike]:
    """``None``, one sink or an iterable of sinks -> a validated list."""
    if sinks is None:
        return []
    if callable(sinks):
        return [sinks]
    if isinstance(sinks, (str, bytes)) or not isinstance(sinks, Iterable):
        raise NetvizTypeError(
            "`sinks` must be a sink, a callable (step, table) or a list of them, "
            f"got {type(sinks).__name__}: {sinks!r:.60}"
        )
    return [_check_sink(s) for s in sinks]


def _name(sink: object) -> str:
    return getattr(sink, "__qualname__", None) or type(sink).__name__


class SinkSet:
    """The sinks of one monitor; a failing sink never stops the others or the run.

    A sink that raises gets a warning the first time (and a count afterwards,
    :attr:`failures`); the monitor then keeps that step in memory, so no record
    is lost even with ``keep=False``.
    """

    def __init__(self, sinks: Iterable[SinkLike] = ()) -> None:
        self._sinks: list[SinkLike] = []
        self.failures: dict[str, int] = {}
        for sink in sinks:
            self.add(sink)

    def add(self, sink: SinkLike) -> None:
        self._sinks.append(_check_sink(sink))

    def __bool__(self) -> bool:
        return bool(self._sinks)

    def __len__(self) -> int:
        return len(self._sinks)

    def __iter__(self) -> Iterator[SinkLike]:
        return iter(self._sinks)

    def _guard(self, sink: SinkLike, what: str, call: Callable[[], object]) -> bool:
        try:
            call()
        except Exception as err:
            key = _name(sink)
            self.failures[key] = self.failures.get(key, 0) + 1
            if self.failures[key] == 1:
                warnings.warn(
                    f"netviz sink {key} failed in {what} ({type(err).__name__}: {err}); the "
                    "records of that step stay in the monitor, and training goes on "
                    "(later failures of this sink are counted, not repeated)",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return False
        return True

    def write(self, step: int, table: pd.DataFrame) -> bool:
        """Give one step to every sink; False if any sink raised."""
        ok = True
        for sink in self._sinks:
            ok &= self._guard(sink, f"step {step}", functools.partial(sink, step, table))
        return ok

    def flush(self) -> None:
        for sink in self._sinks:
            flush = getattr(sink, "flush", None)
            if callable(flush):
                self._guard(sink, "flush()", flush)
