"""What a report reads from records: network order, run facts, series and the summary table.

Pure pandas; no plotting. Network order always comes from the records'
``order`` column (execution order of each module's first call in a step);
tables saved before that column existed fall back to
:func:`netviz.analysis.order.module_order`. Row order never matters: every
function here gives the same result on a shuffled table.
"""

from __future__ import annotations

import itertools
import math
from functools import reduce
from typing import Any

import numpy as np
import pandas as pd

from netviz.analysis.order import module_order

__all__ = [
    "ACTIVATION_PANELS",
    "SUMMARY_STATS",
    "canonical_rows",
    "gradient_rows",
    "network_order",
    "phases",
    "run_facts",
    "summary_table",
]

#: Activation statistics drawn over steps, with their axis labels.
ACTIVATION_PANELS: tuple[tuple[str, str], ...] = (
    ("mean", "mean"),
    ("std", "std"),
    ("zero_frac", "zero fraction"),
    ("nonfinite_frac", "non-finite fraction"),
)

#: ``(probe, stat)`` pairs of the per-module summary table, in table order.
SUMMARY_STATS: tuple[tuple[str, str], ...] = (
    ("grad_norm", "l2"),
    ("grad_stats", "l2"),
    ("activation_stats", "mean"),
    ("activation_stats", "std"),
    ("activation_stats", "zero_frac"),
    ("activation_stats", "nonfinite_frac"),
    ("unit_activity", "dead_frac"),
    ("unit_activity", "saturated_frac"),
    ("weight_stats", "l2"),
    ("weight_stats", "update_ratio"),
)


def network_order(records: pd.DataFrame) -> list[str]:
    """Modules in network order (input side first), from the ``order`` column.

    Ties (modules never called, which share the order of their position in
    definition order) keep the sorted name order, so the result does not
    depend on row order.

    >>> df = pd.DataFrame({"module": ["fc", "conv", "fc"], "order": [1, 0, 1]})
    >>> network_order(df.sample(frac=1, random_state=0))
    ['conv', 'fc']
    """
    if records.empty:
        return []
    if "order" in records.columns:
        first = records.groupby("module", sort=True)["order"].min()
        return list(first.sort_values(kind="stable").index)
    return module_order(records)


def canonical_rows(records: pd.DataFrame) -> pd.DataFrame:
    """The rows sorted by step, then network order (and the other keys): the same table
    whatever the row order it came in, and in execution order for code that reads rows."""
    keys = [
        c
        for c in ("step", "order", "module", "phase", "micro", "call", "probe", "stat")
        if c in records.columns
    ]
    if "order" not in records.columns:
        return records.reset_index(drop=True)
    return records.sort_values(keys, kind="stable").reset_index(drop=True)


def phases(records: pd.DataFrame) -> list[str]:
    """The phases present (``train`` first), or ``[]`` for tables without a ``phase`` column."""
    if "phase" not in records.columns:
        return []
    have = set(records["phase"].astype(str))
    return [p for p in ("train", "eval") if p in have] + sorted(have - {"train", "eval"})


def gradient_rows(records: pd.DataFrame) -> pd.DataFrame:
    """Rows of the per-layer gradient norm: ``grad_norm``/``l2``, else ``grad_stats``/``l2``."""
    for probe in ("grad_norm", "grad_stats"):
        rows = records[(records.probe == probe) & (records.stat == "l2")]
        if len(rows):
            return rows
    return records.iloc[:0]


def _every(steps: list[int]) -> int | None:
    if len(steps) < 2:
        return None
    diffs = [b - a for a, b in itertools.pairwise(steps)]
    return reduce(math.gcd, diffs)


def run_facts(records: pd.DataFrame, metadata: dict[str, Any]) -> list[tuple[str, str]]:
    """``(label, value)`` rows of the run summary; ``metadata`` (from a Monitor, a file or the
    caller) wins over what the records let one infer."""
    meta = dict(metadata)
    steps = sorted({int(s) for s in records.step}) if len(records) else []
    modules = network_order(records)
    facts: list[tuple[str, str]] = []

    def add(label: str, value: Any) -> None:
        if value is not None and value != "":
            facts.append((label, str(value)))

    add("model", meta.pop("model", None))
    watched = meta.pop("modules", None)
    if watched is not None:
        add("modules watched", f"{len(watched)}")
    elif modules:
        add("modules with records", f"{len(modules)}")
    probes = meta.pop("probes", None) or sorted(set(records.probe))
    add("probes", ", ".join(probes))
    if steps:
        span = f"{steps[0]}" if len(steps) == 1 else f"{steps[0]} to {steps[-1]}"
        add("recorded steps", f"{len(steps)} (steps {span})")
    total = meta.pop("steps", None)
    if total is not None:
        add("steps run", total)
    every = meta.pop("every", None)
    if every is None and (inferred := _every(steps)) is not None:
        every = f"{inferred} (inferred from the recorded steps)"
    add("every", every)
    ph = phases(records)
    if ph:
        add("phases", ", ".join(ph))
    if "skipped" in records.columns and records["skipped"].astype(bool).any():
        n = records.loc[records["skipped"].astype(bool), "step"].nunique()
        add("skipped steps", f"{n} (optimizer step skipped by a GradScaler)")
    if "rank" in records.columns:
        add("ranks", ", ".join(str(r) for r in sorted(set(records["rank"]))))
    wall = meta.pop("wall_time_s", None)
    if wall is not None:
        add("wall time", f"{float(wall):.1f} s")
    add("record rows", f"{len(records):,}")
    for key in ("netviz", "torch"):
        add(f"{key} version", meta.pop(key, None))
    for key, value in meta.items():  # anything else the caller passed
        add(str(key), value)
    return facts


def summary_table(records: pd.DataFrame) -> pd.DataFrame:
    """Per module and main statistic: ``last`` (value at the last step), ``min``, ``max``.

    Columns: ``module``, ``order`` (position in network order), ``phase``
    and ``rank`` (when the records have them), ``statistic`` (``probe.stat``), ``last``,
    ``min``, ``max``, ``steps``. Several calls of a module in one step are
    averaged first; non-finite values are left out of min/max/last (the
    ``nonfinite_frac`` rows say how many there were).
    """
    position = {m: i for i, m in enumerate(network_order(records))}
    wanted = pd.DataFrame(SUMMARY_STATS, columns=["probe", "stat"])
    rows = records.merge(wanted, on=["probe", "stat"])
    rows = rows[np.isfinite(rows.value)]
    extra = [c for c in ("phase", "rank") if c in rows.columns]  # per-rank records apart
    keys = ["module", "probe", "stat", *extra]
    columns = ["module", "order", *extra, "statistic"]
    columns += ["last", "min", "max", "steps"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    per_step = rows.groupby([*keys, "step"], sort=False).value.mean().reset_index()
    per_step = per_step.sort_values([*keys, "step"], kind="stable")
    agg = per_step.groupby(keys, sort=False).value.agg(["last", "min", "max", "count"])
    agg = agg.reset_index().rename(columns={"count": "steps"})
    agg["order"] = agg.module.map(position)
    agg["statistic"] = agg.probe + "." + agg.stat
    rank = {k: i for i, k in enumerate(SUMMARY_STATS)}
    agg["_stat"] = [rank[(p, s)] for p, s in zip(agg.probe, agg.stat)]
    sort = ["order", *extra, "_stat"]
    agg = agg.sort_values(sort, kind="stable").reset_index(drop=True)
    return agg[columns]
