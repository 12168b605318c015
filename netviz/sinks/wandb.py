"""Weights & Biases sink: one ``run.log`` per recorded step, on netviz's own step axis.

netviz's series are tied to a step metric with ``define_metric`` and logged
without ``step=``, so a netviz step never trips wandb's "step must be
monotonic" drop (records reach the sink one step late on CUDA). Non-finite
values are never logged raw: each becomes a point of its own series
``netviz/nonfinite/{probe}.{stat}/{module}`` (value 1), and
``netviz/nonfinite_count`` counts them per step.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from netviz.errors import NetvizRuntimeError, NetvizValueError
from netviz.sinks.base import TrackerSink
from netviz.sinks.series import Hist, HistogramMode, SeriesSpec, TagFn

if TYPE_CHECKING:
    import wandb

__all__ = ["MAX_BINS", "Wandb"]

#: wandb.Histogram's bin limit.
MAX_BINS = 512


def _rebin(edges: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge adjacent bins until there are at most :data:`MAX_BINS` (counts stay exact)."""
    factor = -(-len(counts) // MAX_BINS)
    if factor <= 1:
        return edges, counts
    pad = (-len(counts)) % factor
    merged = np.concatenate([counts, np.zeros(pad)]).reshape(-1, factor).sum(axis=1)
    new_edges = np.concatenate([edges[:-1:factor], edges[-1:]])
    return new_edges, merged


class Wandb(TrackerSink):
    """Log recorded steps to a wandb run.

    Parameters
    ----------
    run
        A ``wandb`` run; ``None`` takes ``wandb.run`` (call ``wandb.init`` first).
    series, tag_fn, step_offset
        See :class:`netviz.sinks.base.TrackerSink`.
    step_metric
        The x axis of netviz's series: ``"netviz/step"`` by default; inside
        Lightning ``"trainer/global_step"``, inside the Hugging Face Trainer
        ``"train/global_step"`` (with ``step_offset=1``), so curves line up.
    histograms
        ``"auto"`` (default), ``"moments"`` or ``False``, as in
        :class:`netviz.sinks.TensorBoard`; sent as
        ``wandb.Histogram(np_histogram=...)`` with at most 512 bins.
    """

    def __init__(
        self,
        run: wandb.Run | None = None,
        series: SeriesSpec = "compact",
        *,
        step_metric: str = "netviz/step",
        histograms: HistogramMode = "auto",
        tag_fn: TagFn | None = None,
        step_offset: int = 0,
    ) -> None:
        super().__init__(series, tag_fn, step_offset, histograms)
        if not isinstance(step_metric, str) or not step_metric:
            raise NetvizValueError(f"`step_metric` must be a non-empty str, got {step_metric!r}")
        if run is None:
            import wandb

            run = wandb.run
            if run is None:
                raise NetvizRuntimeError(
                    "netviz.sinks.Wandb(run=None) needs an active run: call wandb.init(...) "
                    "first or pass run=..."
                )
        self.run = run
        self.step_metric = step_metric
        self._defined = False

    def _define(self) -> None:
        self.run.define_metric(self.step_metric)
        self.run.define_metric("netviz/*", step_metric=self.step_metric)
        self._defined = True

    def write(self, step: int, table: pd.DataFrame) -> None:
        if not self._defined:
            self._define()
        data: dict[str, Any] = {}
        bad = 0
        for key, value in self.scalars(table).items():
            if math.isfinite(value):
                data[key] = value
            else:
                data["netviz/nonfinite/" + key.removeprefix("netviz/")] = 1.0
                bad += 1
        data["netviz/nonfinite_count"] = bad
        for hist in self.histograms(table):
            data[hist.tag] = self.histogram(hist)
        data[self.step_metric] = step + self.step_offset
        self.run.log(data)

    @staticmethod
    def histogram(hist: Hist) -> wandb.Histogram:
        """A ``wandb.Histogram`` of ``hist`` (bins merged down to at most 512)."""
        import wandb

        edges, counts = _rebin(np.asarray(hist.edges, float), np.asarray(hist.counts, float))
        return wandb.Histogram(np_histogram=(counts.tolist(), edges.tolist()))
