"""What a report or a summary is built from: records, metadata, histograms, snapshots."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from netviz.errors import NetvizTypeError

__all__ = ["read_inputs"]


def _is_monitor(x: Any) -> bool:
    return callable(getattr(x, "to_pandas", None)) and hasattr(x, "step_index")


def _sibling_histograms(path: str | os.PathLike) -> pd.DataFrame | None:
    """The histogram file saved beside a record file, where the histogram table exists."""
    try:
        from netviz.records.histograms import histogram_path, load_histograms
    except ImportError:  # a netviz without histogram probes
        return None
    if not histogram_path(path).exists():
        return None
    return load_histograms(path)


def read_inputs(
    data: Any, histograms: Any = None, snapshots: Any = None
) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame | None, Mapping | None]:
    """``(records, metadata, histograms, snapshots)`` of a Monitor, a record table, a
    Report or a record file; the Monitor's snapshots and histograms when not given."""
    from netviz.records.store import validate_frame

    meta: dict[str, Any] = {}
    if isinstance(data, (str, os.PathLike)):
        from netviz.records.io import load, load_metadata

        records = load(data)
        meta.update(load_metadata(data))
        if histograms is None:
            histograms = _sibling_histograms(data)
    elif _is_monitor(data):
        records = data.to_pandas()
        meta.update(data._report_metadata())
        if snapshots is None:
            snapshots = data.snapshots()
        if histograms is None and callable(getattr(data, "histograms", None)):
            histograms = data.histograms()  # the histogram probes' table, where present
    elif isinstance(data, pd.DataFrame):
        records = data
    elif isinstance(getattr(data, "records", None), pd.DataFrame):  # a netviz.Report
        records = data.records
    else:
        raise NetvizTypeError(
            "`data` must be a record table (pandas DataFrame), a netviz.Monitor, a "
            f"netviz.Report or the path of a record file; got {type(data).__name__}"
        )
    records = validate_frame(records, source="`data`")
    if histograms is not None and not isinstance(histograms, pd.DataFrame):
        raise NetvizTypeError(
            f"`histograms` must be a DataFrame (Monitor.histograms()), got {type(histograms).__name__}"
        )
    if snapshots is not None and not isinstance(snapshots, Mapping):
        raise NetvizTypeError(
            "`snapshots` must be a dict {step: {(probe, module, call): tensor}} "
            f"(Monitor.snapshots()), got {type(snapshots).__name__}"
        )
    return records, meta, histograms, snapshots
