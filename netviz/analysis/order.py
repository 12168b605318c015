"""Network order of the modules in a record table, and record-table inputs.

The monitor appends a step's entries in the order they were emitted: forward
statistics (``activation_stats`` and other forward probes) in the order the
forward hooks fired, that is in *execution order*, and gradient and weight
statistics afterwards in model (registration) order. :func:`module_order`
relies on that: the execution order of the first forward probe, then any
module seen only by other probes in the order it first appears.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from netviz.records.store import validate_frame

__all__ = ["FORWARD_PROBES", "as_records", "module_order"]

#: Probes whose rows are emitted from forward hooks (execution order).
FORWARD_PROBES: tuple[str, ...] = ("activation_stats", "unit_activity")


def as_records(data: Any, *, name: str = "records") -> pd.DataFrame:
    """A validated record table from a DataFrame, a Monitor or a Report.

    Raises
    ------
    TypeError
        If ``data`` is none of these; the message names ``name``.
    """
    if isinstance(data, pd.DataFrame):
        return validate_frame(data, source=f"`{name}`")
    records = getattr(data, "records", None)
    if isinstance(records, pd.DataFrame):  # a Report
        return validate_frame(records, source=f"`{name}`")
    to_pandas = getattr(data, "to_pandas", None)
    if callable(to_pandas) and hasattr(data, "step_index"):  # a Monitor
        return validate_frame(to_pandas(), source=f"`{name}`")
    raise TypeError(
        f"`{name}` must be a netviz record table (pandas DataFrame with columns step, module, "
        f"call, probe, stat, value), a netviz.Monitor or a netviz.Report; got {type(data).__name__}"
    )


def module_order(records: pd.DataFrame) -> list[str]:
    """Modules of ``records`` in network (execution) order, input side first.

    Examples
    --------
    >>> df = pd.DataFrame({
    ...     "step": [0, 0, 0, 0], "module": ["b", "a", "a", "b"], "call": [0] * 4,
    ...     "probe": ["activation_stats", "activation_stats", "grad_norm", "grad_norm"],
    ...     "stat": ["mean", "mean", "l2", "l2"], "value": [1.0, 2.0, 3.0, 4.0]})
    >>> module_order(df)  # "b" ran first although it was registered second
    ['b', 'a']
    >>> df.loc[4] = [0, "b.out", 0, "grad_norm", "l2", 5.0]  # never called, registered after "b"
    >>> module_order(df)
    ['b', 'b.out', 'a']
    """
    fwd = records[records.probe.isin(FORWARD_PROBES)]
    order = list(dict.fromkeys(fwd.module))
    # Modules without forward rows (never called, e.g. an attention out_proj
    # used through its weight, or no forward probe recorded) go right after
    # their predecessor in registration order, which the other probes follow.
    placed = set(order)
    previous: str | None = None
    for m in dict.fromkeys(records.module[~records.probe.isin(FORWARD_PROBES)]):
        if m not in placed:
            at = order.index(previous) + 1 if previous is not None else 0
            order.insert(at, m)
            placed.add(m)
        previous = m
    return order
