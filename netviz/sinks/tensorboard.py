"""TensorBoard sink: one combined ``Summary`` per recorded step.

Scalars go into a single ``Summary`` proto written through the writer's own
``FileWriter`` (800 separate ``add_scalar`` calls cost 150-250 ms per step,
one summary about 10 ms), so everything lands in the writer's run directory;
``add_scalars`` is never used (it opens one run per key). Histograms go
through ``add_histogram_raw``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, TypeAlias

import pandas as pd

from netviz._compat import is_summary_writer, tensorboard_file_writer
from netviz.errors import NetvizTypeError
from netviz.sinks.base import TrackerSink
from netviz.sinks.series import Hist, HistogramMode, SeriesSpec, TagFn

if TYPE_CHECKING:
    import tensorboardX
    from torch.utils.tensorboard import SummaryWriter

    #: A writer the sink writes into (torch's or tensorboardX's).
    Writer: TypeAlias = SummaryWriter | tensorboardX.SummaryWriter

__all__ = ["TensorBoard"]


def _summary_class(writer: Writer) -> Any:
    # The proto classes must come from the same package as the writer's FileWriter.
    if type(writer).__module__.startswith("tensorboardX"):
        from tensorboardX.proto.summary_pb2 import Summary
    else:
        from tensorboard.compat.proto.summary_pb2 import Summary
    return Summary


class TensorBoard(TrackerSink):
    """Write recorded steps to TensorBoard.

    Parameters
    ----------
    writer_or_logdir
        A ``torch.utils.tensorboard.SummaryWriter`` (or a ``tensorboardX``
        one) to write into, or a directory for a new writer that this sink
        owns and closes.
    series, tag_fn, step_offset
        See :class:`netviz.sinks.base.TrackerSink`.
    histograms
        ``"auto"`` (default): the counts of the histogram probes
        (``watch(probes=[..., "activation_hist", "grad_hist"])``), one histogram
        ``netviz/{probe}/{module}`` per module and step (training forwards, calls
        and micro-batches added up, finite values only, trimmed to the non-empty
        bins), nothing if no histogram probe ran. ``"moments"``: per module a
        one-bucket histogram ``[min, max]`` of the finite activations with their
        exact count, sum and sum of squares, from ``activation_stats``
        (TensorBoard shows their range and mass, not their shape). ``False``: none.
    """

    def __init__(
        self,
        writer_or_logdir: Writer | str | os.PathLike[str],
        series: SeriesSpec = "compact",
        *,
        histograms: HistogramMode = "auto",
        tag_fn: TagFn | None = None,
        step_offset: int = 0,
    ) -> None:
        super().__init__(series, tag_fn, step_offset, histograms)
        if isinstance(writer_or_logdir, (str, os.PathLike)):
            from torch.utils.tensorboard import SummaryWriter

            self.writer: Writer = SummaryWriter(log_dir=os.fspath(writer_or_logdir))
            self._owned = True
        elif is_summary_writer(writer_or_logdir):
            self.writer = writer_or_logdir
            self._owned = False
        else:
            raise NetvizTypeError(
                "TensorBoard(...) takes a log directory or a SummaryWriter (torch.utils.tensorboard "
                f"or tensorboardX), got {type(writer_or_logdir).__name__}"
            )
        self._summary = _summary_class(self.writer)

    def write(self, step: int, table: pd.DataFrame) -> None:
        at = step + self.step_offset
        scalars = self.scalars(table)
        if scalars:
            summary = self._summary(
                value=[self._summary.Value(tag=k, simple_value=v) for k, v in scalars.items()]
            )
            tensorboard_file_writer(self.writer).add_summary(summary, at)
        for hist in self.histograms(table):
            self.write_hist(at, hist)

    def write_hist(self, step: int, hist: Hist) -> None:
        """Write one histogram at tracker step ``step`` (bucket limits are upper edges)."""
        self.writer.add_histogram_raw(
            hist.tag,
            min=hist.min,
            max=hist.max,
            num=hist.num,
            sum=hist.sum,
            sum_squares=hist.sum_squares,
            bucket_limits=[float(e) for e in hist.edges[1:]],
            bucket_counts=[float(c) for c in hist.counts],
            global_step=step,
        )

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.flush()
        if self._owned:
            self.writer.close()
