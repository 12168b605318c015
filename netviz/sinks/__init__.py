"""Sinks: where each recorded step goes once it is on the host.

``netviz.watch(model, ..., sinks=[...])`` or :meth:`netviz.Monitor.add_sink`
take any of these, or any callable ``(step, table)``:

- :class:`TensorBoard` (``netviz[tensorboard]``): one combined summary per step;
- :class:`Wandb` (``netviz[wandb]``): one ``run.log`` per step on its own step axis;
- :class:`MLflow` (``netviz[mlflow]``): ``log_batch`` in chunks of 1000, names checked;
- :class:`Parquet` (``netviz[parquet]``): streams all rows to a folder of parts,
  readable by :func:`netviz.load` during the run and after a crash.

The tracker sinks write a compact set of series by default
(:data:`COMPACT_SERIES`; ``series="all"`` for everything). Each tracker is
imported only when its sink is created.
"""

from __future__ import annotations

import importlib
from typing import Any

from netviz.sinks.base import Sink, TrackerSink

_LAZY: dict[str, tuple[str, str]] = {
    "COMPACT_SERIES": ("netviz.sinks.series", "COMPACT_SERIES"),
    "MLflow": ("netviz.sinks.mlflow", "MLflow"),
    "Parquet": ("netviz.sinks.parquet", "Parquet"),
    "TensorBoard": ("netviz.sinks.tensorboard", "TensorBoard"),
    "Wandb": ("netviz.sinks.wandb", "Wandb"),
}

__all__ = ["COMPACT_SERIES", "MLflow", "Parquet", "Sink", "TensorBoard", "TrackerSink", "Wandb"]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'netviz.sinks' has no attribute {name!r}")
    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
