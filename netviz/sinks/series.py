"""What a tracker sink turns into series: selection, aggregation, tags, histograms.

A tracker shows one value per series and step, so the rows of one step are
reduced per ``(phase, probe, stat, module[, rank])`` over calls and
micro-batches: the mean for most statistics, the max for ``max``/``abs_max``,
the min for ``min``, the sum for ``numel``. A non-finite value in a group is
never averaged away: the group's value is NaN (any NaN) or the infinity.

The result never depends on row order (network order is the ``order``
column's business; the trackers key series by name).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "COMPACT_SERIES",
    "Hist",
    "moment_histograms",
    "resolve_series",
    "select_rows",
    "step_scalars",
    "tag",
]

#: The default series of the tracker sinks (``series="compact"``): what a
#: person looks at first, without flooding a tracker's UI.
COMPACT_SERIES: tuple[tuple[str, str], ...] = (
    ("grad_norm", "l2"),
    ("activation_stats", "mean"),
    ("activation_stats", "std"),
    ("activation_stats", "zero_frac"),
    ("activation_stats", "nonfinite_frac"),
    ("weight_stats", "update_ratio"),
)

ROOT_NAME = "(root)"

#: ``tag_fn(probe, stat, module, phase) -> str``: renames a series.
TagFn = Callable[[str, str, str, str], str]

_AGG = {"max": "max", "abs_max": "max", "min": "min", "numel": "sum"}


def resolve_series(series: str | Iterable[str]) -> frozenset[tuple[str, str]] | None:
    """``"compact"``, ``"all"`` (None: everything) or ``"probe.stat"``/``"probe"`` names."""
    if series == "all":
        return None
    if series == "compact":
        return frozenset(COMPACT_SERIES)
    if isinstance(series, str) or not isinstance(series, Iterable):
        raise ValueError(
            f"`series` must be 'compact', 'all' or a list of 'probe.stat' (or 'probe') names, "
            f"got {series!r}"
        )
    out = set()
    for item in series:
        if not isinstance(item, str) or not item or item.count(".") > 1:
            raise ValueError(
                f"`series` entries must be 'probe.stat' or 'probe' (e.g. 'grad_norm.l2'), "
                f"got {item!r}"
            )
        probe, _, stat = item.partition(".")
        out.add((probe, stat or "*"))
    return frozenset(out)


def select_rows(table: pd.DataFrame, wanted: frozenset[tuple[str, str]] | None) -> pd.DataFrame:
    """The rows of ``table`` whose ``(probe, stat)`` is wanted (None: all)."""
    if wanted is None or table.empty:
        return table
    probe = table["probe"].to_numpy(dtype=object)
    stat = table["stat"].to_numpy(dtype=object)
    mask = np.zeros(len(table), dtype=bool)
    for p, s in wanted:
        hit = probe == p
        if s != "*":
            hit &= stat == s
        mask |= hit
    return table[mask]


def tag(probe: str, stat: str, module: str, phase: str = "train", prefix: str = "netviz") -> str:
    """``netviz/{probe}.{stat}/{module}``; eval rows under ``netviz/eval/...``."""
    head = prefix if phase == "train" else f"{prefix}/{phase}"
    return f"{head}/{probe}.{stat}/{module or ROOT_NAME}"


def _group_keys(rows: pd.DataFrame) -> list[str]:
    keys = ["probe", "stat", "module"]
    if "phase" in rows.columns:
        keys.insert(0, "phase")
    if "rank" in rows.columns:
        keys.append("rank")
    return keys


def step_scalars(
    table: pd.DataFrame,
    wanted: frozenset[tuple[str, str]] | None,
    tag_fn: TagFn | None = None,
) -> dict[str, float]:
    """One step's records -> ``{tag: value}``, one value per series (see the module doc)."""
    rows = select_rows(table, wanted)
    if rows.empty:
        return {}
    keys = _group_keys(rows)
    values = rows["value"].to_numpy(dtype=np.float64)
    frame = pd.DataFrame({k: rows[k].to_numpy() for k in keys})
    frame["value"] = np.where(np.isfinite(values), values, np.nan)
    frame["nan"] = np.isnan(values)
    frame["inf"] = np.where(np.isinf(values), values, 0.0)
    grouped = frame.groupby(keys, sort=True)
    mean, vmax = grouped["value"].mean(), grouped["value"].max()
    vmin, vsum = grouped["value"].min(), grouped["value"].sum(min_count=1)
    any_nan, inf_sum = grouped["nan"].any(), grouped["inf"].sum()
    out: dict[str, float] = {}
    for i, key in enumerate(mean.index):
        parts = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        stat = parts["stat"]
        agg = _AGG.get(stat, "mean")
        value = {"mean": mean, "max": vmax, "min": vmin, "sum": vsum}[agg].iloc[i]
        if any_nan.iloc[i]:
            value = math.nan
        elif inf_sum.iloc[i] != 0 or math.isnan(inf_sum.iloc[i]):
            value = float(inf_sum.iloc[i])  # +inf, -inf, or NaN for both signs
        phase = str(parts.get("phase", "train"))
        module = str(parts["module"])
        name = (
            tag_fn(parts["probe"], stat, module, phase)
            if tag_fn is not None
            else tag(parts["probe"], stat, module, phase)
        )
        rank = parts.get("rank", -1)
        if rank is not None and int(rank) >= 0:
            name = f"{name}/rank{int(rank)}"
        out[name] = float(value)
    return out


@dataclass(frozen=True)
class Hist:
    """One histogram of one step: ``len(edges) == len(counts) + 1``; finite values only."""

    tag: str
    edges: np.ndarray
    counts: np.ndarray
    num: float
    sum: float
    sum_squares: float
    min: float
    max: float


def moment_histograms(table: pd.DataFrame, prefix: str = "netviz") -> list[Hist]:
    """One-bucket histograms ``[min, max]`` of each module's finite activations.

    Built from ``activation_stats`` (min, max, numel, mean, std and
    nonfinite_frac, over finite elements) of the training forwards; the count,
    sum and sum of squares are exact, the shape inside ``[min, max]`` is not
    known from moments. This is the extension point for binned histograms:
    when a histogram probe (``activation_hist``/``grad_hist``) records bin
    counts, build :class:`Hist` objects from its rows here.
    """
    need = {"min", "max", "numel", "mean", "std", "nonfinite_frac"}
    rows = table[table["probe"] == "activation_stats"]
    if "phase" in rows.columns:
        rows = rows[rows["phase"] == "train"]
    rows = rows[rows["stat"].isin(need)]
    if rows.empty:
        return []
    cols = [c for c in ("module", "call", "micro", "rank") if c in rows.columns]
    keyed = rows.drop_duplicates([*cols, "stat"]).set_index([*cols, "stat"])["value"]
    wide = keyed.unstack("stat")  # keeps NaN cells (pivot_table would drop them)
    if not need <= set(wide.columns):
        return []
    wide = wide.reset_index()
    n = np.rint(wide["numel"] * (1.0 - wide["nonfinite_frac"].fillna(0.0)))
    wide = wide.assign(
        n=n,
        s=n * wide["mean"].fillna(0.0),
        ss=n * (wide["std"].fillna(0.0) ** 2 + wide["mean"].fillna(0.0) ** 2),
    )
    out = []
    for module, grp in wide.groupby("module", sort=True):
        num = float(grp["n"].sum())
        if num <= 0 or not np.isfinite(grp["min"]).any():
            continue  # nothing finite to show
        lo, hi = float(np.nanmin(grp["min"])), float(np.nanmax(grp["max"]))
        out.append(
            Hist(
                tag=f"{prefix}/activation_hist/{module or ROOT_NAME}",
                edges=np.array([lo, hi]),
                counts=np.array([num]),
                num=num,
                sum=float(grp["s"].sum()),
                sum_squares=float(grp["ss"].sum()),
                min=lo,
                max=hi,
            )
        )
    return out
