"""Record-table inputs of the analysis, and the network order of their modules.

Every record row carries ``step, skipped, phase, micro, module, call, order,
probe, stat, value`` (the record model of :mod:`netviz.records.store`).
``order`` is the execution order of the module's first call in its step;
the analysis reads network order from it and never from row order, so a
shuffled or sorted table gives the same diagnosis. Which rows come from
forward hooks is read from the records too (``micro >= 0``; step-level rows of
gradients and weights have ``micro == -1``), never from a list of probe names.
Tables saved before those columns existed get the defaults of
:mod:`netviz.records.store` (``skipped`` False, ``phase`` "train", ``micro`` 0,
``order`` from first appearance within the step, the only time row order is
read).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from netviz.errors import NetvizTypeError, RecordError
from netviz.records.store import validate_frame

__all__ = ["CONTRACT", "as_records", "forward_rows", "module_order", "step_order"]

#: Columns of the record model beyond ``step, module, call, probe, stat, value``.
CONTRACT: tuple[str, ...] = ("skipped", "phase", "micro", "order")


def _first_appearance_order(df: pd.DataFrame, forward: np.ndarray) -> np.ndarray:
    """Default ``order`` of a legacy table: per step, forward rows first (execution order),
    then modules seen only by step-level probes, in the order they first appear."""
    out = np.zeros(len(df), dtype=np.int64)
    for _, idx in df.groupby("step", sort=False).indices.items():
        rows = df.iloc[idx]
        fwd = forward[idx]
        names = list(dict.fromkeys([*rows.module[fwd], *rows.module[~fwd]]))
        rank = {m: i for i, m in enumerate(names)}
        out[idx] = rows.module.map(rank).to_numpy()
    return out


def _with_contract(source: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (validated, same rows as ``source``) with every record-model column."""
    # forward rows are read from the records (micro >= 0: the monitor emits the rows of a
    # probe with Probe.needs_forward per forward pass), never from a list of probe names
    micro = table.micro if "micro" in table.columns else np.zeros(len(table), dtype=np.int64)
    fwd = pd.to_numeric(pd.Series(np.asarray(micro)), errors="coerce").fillna(0).to_numpy() >= 0
    defaults = {  # the defaults of netviz.records.store for tables of netviz 0.1
        "skipped": lambda: np.zeros(len(table), dtype=bool),
        "phase": lambda: np.full(len(table), "train", dtype=object),
        "micro": lambda: np.zeros(len(table), dtype=np.int64),
        "order": lambda: _first_appearance_order(table, fwd),
    }
    dtypes = {"skipped": bool, "phase": str, "micro": "int64", "order": "int64"}
    for col in CONTRACT:
        if col in table.columns:
            values = table[col]
        elif col in source.columns:
            values = source[col].to_numpy()
        else:
            values = defaults[col]()
        try:
            table[col] = pd.Series(values, index=table.index).astype(dtypes[col])
        except (TypeError, ValueError) as err:
            raise RecordError(
                f"record table: column {col!r} has values of the wrong type ({err})"
            ) from err
    return table


def as_records(data: Any, *, name: str = "records") -> pd.DataFrame:
    """A validated record table, with every record-model column, from a DataFrame,
    a Monitor or a Report.

    Raises
    ------
    NetvizTypeError
        If ``data`` is none of these (a path: "load it with netviz.load(path)");
        the message names ``name`` (a :class:`TypeError`).
    RecordError
        If a column is missing or holds values of the wrong type (a :class:`ValueError`).
    """
    if isinstance(data, (str, os.PathLike)):
        raise NetvizTypeError(
            f"`{name}` is a path ({str(data)!r}), not a record table: load it with "
            f"netviz.load({str(data)!r}) and pass the DataFrame"
        )
    frame = None
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(getattr(data, "records", None), pd.DataFrame):  # a Report
        frame = data.records
    elif callable(getattr(data, "to_pandas", None)) and hasattr(data, "step_index"):  # a Monitor
        frame = data.to_pandas()
    if frame is None:
        raise NetvizTypeError(
            f"`{name}` must be a netviz record table (pandas DataFrame "
            "with columns step, module, call, probe, stat, value, as from "
            f"netviz.watch(...).to_pandas() or netviz.load(path)), a netviz.Monitor or a "
            f"netviz.Report; got {type(data).__name__}"
        )
    return _with_contract(frame, validate_frame(frame, source=f"`{name}`"))


def forward_rows(records: pd.DataFrame) -> pd.Series:
    """True for the rows emitted from forward hooks (``micro >= 0``; step-level rows,
    gradients and weights, have ``micro == -1``). Read from the records, so a custom
    probe with ``needs_forward`` counts too."""
    if "micro" not in records.columns:
        records = as_records(records)
    return records.micro >= 0


def step_order(rows: pd.DataFrame) -> dict[str, int]:
    """``{module: order}`` of the rows of one step (the smallest ``order`` of each module)."""
    if "order" not in rows.columns:
        rows = as_records(rows)
    return {str(m): int(v) for m, v in rows.groupby("module", sort=True).order.min().items()}


def module_order(records: pd.DataFrame) -> list[str]:
    """Modules of ``records`` in network (execution) order, input side first.

    From the ``order`` column: each module's median order over the steps it
    appears in (ties broken by name). A module with only step-level rows
    (gradients, weights) in a table that has forward rows was not called as a
    module (an attention ``out_proj`` used through its weight): it goes right
    after its closest enclosing module, where its parameters act.

    Examples
    --------
    >>> df = pd.DataFrame({
    ...     "step": [0, 0, 0, 0], "module": ["b", "a", "a", "b"], "call": [0] * 4,
    ...     "probe": ["activation_stats", "activation_stats", "grad_norm", "grad_norm"],
    ...     "stat": ["mean", "mean", "l2", "l2"], "value": [1.0, 2.0, 3.0, 4.0],
    ...     "order": [0, 1, 1, 0]})
    >>> module_order(df)  # "b" ran first although it was registered second
    ['b', 'a']
    >>> module_order(df.iloc[::-1])  # row order does not matter
    ['b', 'a']
    """
    if not len(records):
        return []
    if "order" not in records.columns:
        records = as_records(records)
    per_module = records.groupby("module", sort=True).order.median()
    order = [str(m) for m, _ in sorted(per_module.items(), key=lambda kv: (kv[1], kv[0]))]
    fwd = set(records.module[forward_rows(records)])
    if not fwd:
        return order
    for m in [m for m in order if m not in fwd]:
        parent = next(
            (p for p in _ancestors(m) if p in order and p != m),
            None,
        )
        if parent is None:
            continue
        order.remove(m)
        at = order.index(parent) + 1
        while at < len(order) and order[at].startswith(parent + ".") and order[at] not in fwd:
            at += 1  # keep several uncalled children of one module in their order
        order.insert(at, m)
    return order


def _ancestors(name: str) -> list[str]:
    """Dotted-name ancestors of a module, closest first (``"a.b.c"`` -> ``["a.b", "a"]``)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]
