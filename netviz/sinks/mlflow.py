"""MLflow sink: ``MlflowClient.log_batch`` per recorded step, chunked at 1000 metrics.

MLflow accepts metric names matching ``^[/\\w.\\- :]*$`` without a leading,
trailing or double ``/``. netviz maps what it knows breaks that (the root
module, brackets, spaces, other characters -> ``_``) and checks every new
name *before* logging, so a step is never half-logged: a name that is still
invalid, or two series that map to the same name, raise
:class:`netviz.NetvizValueError` (a ``ValueError``) naming the module (rename with ``tag_fn=``). MLflow has no histograms.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import pandas as pd

from netviz.errors import NetvizRuntimeError, NetvizValueError
from netviz.sinks.base import TrackerSink
from netviz.sinks.series import ROOT_NAME, SeriesSpec, TagFn, tag

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = ["MAX_METRICS_PER_BATCH", "MLflow", "mlflow_name"]

#: MLflow's limit of metrics per ``log_batch`` request.
MAX_METRICS_PER_BATCH = 1000

_ALLOWED = re.compile(r"^[/\w.\- :]*$")
_BAD_CHAR = re.compile(r"[^/\w.\- :]")


def mlflow_name(probe: str, stat: str, module: str, phase: str = "train") -> str:
    """The default MLflow metric name of a series (``(root)`` -> ``_root_``, brackets -> ``_``)."""
    name = tag(probe, stat, module.replace("/", "_") if module else "", phase)
    name = name.replace(ROOT_NAME, "_root_")
    return _BAD_CHAR.sub("_", name)


def check_name(name: str, source: str) -> None:
    """Raise :class:`netviz.NetvizValueError` if MLflow would reject ``name``."""
    problem = None
    if not name:
        problem = "it is empty"
    elif not _ALLOWED.match(name):
        problem = "it has characters outside letters, digits, '_', '-', '.', ' ', ':' and '/'"
    elif name.startswith("/") or name.endswith("/") or "//" in name:
        problem = "it starts or ends with '/' or has '//'"
    if problem:
        raise NetvizValueError(
            f"MLflow would reject the metric name {name!r} for {source}: {problem}; "
            "pass tag_fn=... to netviz.sinks.MLflow to name it differently"
        )


class MLflow(TrackerSink):
    """Log recorded steps to an MLflow run.

    Parameters
    ----------
    run_id
        The run to log to; ``None`` takes ``mlflow.active_run()``.
    client
        An ``mlflow.tracking.MlflowClient`` (default: a new one for the
        current tracking URI).
    series, tag_fn, step_offset
        See :class:`netviz.sinks.base.TrackerSink`; the default names are
        :func:`mlflow_name`.
    """

    def __init__(
        self,
        run_id: str | None = None,
        series: SeriesSpec = "compact",
        *,
        client: MlflowClient | None = None,
        tag_fn: TagFn | None = None,
        step_offset: int = 0,
    ) -> None:
        super().__init__(series, tag_fn if tag_fn is not None else mlflow_name, step_offset)
        if client is None:
            from mlflow.tracking import MlflowClient

            client = MlflowClient()
        if run_id is None:
            import mlflow

            active = mlflow.active_run()
            if active is None:
                raise NetvizRuntimeError(
                    "netviz.sinks.MLflow(run_id=None) needs an active run: call "
                    "mlflow.start_run() first or pass run_id=..."
                )
            run_id = active.info.run_id
        self.client = client
        self.run_id = run_id
        self._seen: set[tuple[object, ...]] = set()  # series already checked
        self._names: dict[str, str] = {}  # metric name -> the series it comes from
        self._name_of: TagFn = tag_fn if tag_fn is not None else mlflow_name

    def _check(self, table: pd.DataFrame) -> None:
        """Check the names of series not seen before, before anything is logged."""
        from netviz.sinks.series import select_rows

        rows = select_rows(table, self._wanted)
        cols = ["probe", "stat", "module"] + (["phase"] if "phase" in rows.columns else [])
        for combo in rows[cols].drop_duplicates().itertuples(index=False, name=None):
            if combo in self._seen:
                continue
            probe, stat, module = combo[:3]
            phase = str(combo[3]) if len(combo) > 3 else "train"
            name = self._name_of(probe, stat, module, phase)
            source = f"module {module!r} ({probe}.{stat}, {phase})"
            check_name(name, source)
            other = self._names.get(name)
            if other is not None and other != source:
                raise NetvizValueError(
                    f"{other} and {source} both map to the MLflow metric name {name!r}; "
                    "pass tag_fn=... to name them apart"
                )
            self._names[name] = source
            self._seen.add(combo)

    def write(self, step: int, table: pd.DataFrame) -> None:
        from mlflow.entities import Metric

        self._check(table)
        scalars = self.scalars(table)
        at = step + self.step_offset
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, at) for k, v in scalars.items()]
        for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            self.client.log_batch(
                self.run_id, metrics=metrics[start : start + MAX_METRICS_PER_BATCH]
            )
