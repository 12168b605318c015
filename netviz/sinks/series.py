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

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
import pandas as pd

from netviz.errors import NetvizValueError

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
TagFn: TypeAlias = Callable[[str, str, str, str], str]

#: ``series=`` of the tracker sinks: ``"compact"``, ``"all"`` or ``"probe.stat"``/``"probe"`` names.
SeriesSpec: TypeAlias = str | Iterable[str]

#: ``histograms=`` of the tracker sinks.
HistogramMode: TypeAlias = Literal["auto", "moments", False]

_AGG = {"max": "max", "abs_max": "max", "min": "min", "numel": "sum"}


def check_histograms(histograms: object) -> HistogramMode:
    """``histograms=`` of the tracker sinks: ``"auto"``, ``"moments"`` or ``False``."""
    if histograms is False:
        return False
    if histograms == "auto":
        return "auto"
    if histograms == "moments":
        return "moments"
    raise NetvizValueError(
        f"`histograms` must be 'auto' (the histogram probes' counts), 'moments' or False, "
        f"got {histograms!r}"
    )


def step_histograms(
    table: pd.DataFrame, histograms: HistogramMode, prefix: str = "netviz"
) -> list[Hist]:
    """The :class:`Hist` objects a tracker sink writes for one step's ``table``."""
    if histograms == "auto":
        return binned_histograms(table, prefix)
    if histograms == "moments":
        return moment_histograms(table, prefix)
    return []


def binned_histograms(table: pd.DataFrame, prefix: str = "netviz") -> list[Hist]:
    """Histograms of the histogram probes (``activation_hist``, ``grad_hist``, ...) of a step.

    The monitor hands them over in ``table.attrs["histograms"]`` (dense
    counts per probe and module). Training rows only; the counts of a module's
    calls and micro-batches are added up; NaN and infinite values are left
    out (they are counted in ``nonfinite_frac``); the bins are trimmed to the
    non-empty range, and the open outer bins end at the finite neighbour edge.
    """
    out: list[Hist] = []
    for block in table.attrs.get("histograms", ()):
        if block.rank is not None and block.rank >= 0:
            continue  # per-rank histograms: not one series per rank in a tracker
        train = np.array([p == "train" for p in block.phases], dtype=bool)
        nb = len(block.edges) - 1
        sums: dict[str, np.ndarray] = {}
        for i in np.nonzero(train)[0]:
            module = block.modules[i]
            counts = block.counts[i, :nb].astype(np.float64)
            sums[module] = sums[module] + counts if module in sums else counts
        for module in sorted(sums):
            hist = _hist_from_counts(
                f"{prefix}/{block.probe}/{module or ROOT_NAME}", block.edges, sums[module]
            )
            if hist is not None:
                out.append(hist)
    return out


def _hist_from_counts(name: str, edges: np.ndarray, counts: np.ndarray) -> Hist | None:
    nonzero = np.nonzero(counts)[0]
    if not len(nonzero):
        return None
    lo_i, hi_i = nonzero[0], nonzero[-1] + 1
    edges = np.asarray(edges[lo_i : hi_i + 1], dtype=np.float64).copy()
    counts = counts[lo_i:hi_i]
    finite = edges[np.isfinite(edges)]
    if not len(finite):
        return None
    if not np.isfinite(edges[0]):  # the open underflow bin: end at its finite edge
        edges[0] = finite[0] if len(edges) > 1 and np.isfinite(edges[1]) else 0.0
    if not np.isfinite(edges[-1]):
        edges[-1] = finite[-1]
    mid = (edges[:-1] + edges[1:]) / 2
    return Hist(
        tag=name,
        edges=edges,
        counts=counts,
        num=float(counts.sum()),
        sum=float((counts * mid).sum()),  # from bin centres: the histogram's own moments
        sum_squares=float((counts * mid**2).sum()),
        min=float(edges[0]),
        max=float(edges[-1]),
    )


def resolve_series(series: SeriesSpec) -> frozenset[tuple[str, str]] | None:
    """``"compact"``, ``"all"`` (None: everything) or ``"probe.stat"``/``"probe"`` names."""
    if series == "all":
        return None
    if series == "compact":
        return frozenset(COMPACT_SERIES)
    if isinstance(series, str) or not isinstance(series, Iterable):
        raise NetvizValueError(
            f"`series` must be 'compact', 'all' or a list of 'probe.stat' (or 'probe') names, "
            f"got {series!r}"
        )
    out = set()
    for item in series:
        if not isinstance(item, str) or not item or item.count(".") > 1:
            raise NetvizValueError(
                f"`series` entries must be 'probe.stat' or 'probe' (e.g. 'grad_norm.l2'), "
                f"got {item!r}"
            )
        probe, _, stat = item.partition(".")
        out.add((probe, stat or "*"))
    return frozenset(out)


def select_rows(table: pd.DataFrame, wanted: frozenset[tuple[str, str]] | None) -> pd.DataFrame:
    """The rows of ``table`` whose ``(probe, stat)`` is wanted (None: all)."""
    mask = _mask(table, wanted)
    return table if mask is None else table[mask]


def _factorize(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    # through Python objects: Arrow-backed string kernels pay a thread-pool handoff
    # per call (milliseconds on a busy machine), hashing ~1000 str objects does not
    return pd.factorize(np.asarray(column.tolist(), dtype=object))


def _mask(table: pd.DataFrame, wanted: frozenset[tuple[str, str]] | None) -> np.ndarray | None:
    if wanted is None:
        return None
    # compare the few distinct names, not every row (string columns may be Arrow-backed)
    pc, probe_names = _factorize(table["probe"])
    sc, stat_names = _factorize(table["stat"])
    pu, su = [str(x) for x in probe_names], [str(x) for x in stat_names]
    ok = np.zeros((len(pu) + 1, len(su) + 1), dtype=bool)
    for p, s in wanted:
        if p in pu:
            cols = [su.index(s)] if s in su else ([] if s != "*" else list(range(len(su))))
            ok[pu.index(p), cols] = True
    return ok[pc, sc]


def tag(probe: str, stat: str, module: str, phase: str = "train", prefix: str = "netviz") -> str:
    """``netviz/{probe}.{stat}/{module}``; eval rows under ``netviz/eval/...``."""
    head = prefix if phase == "train" else f"{prefix}/{phase}"
    return f"{head}/{probe}.{stat}/{module or ROOT_NAME}"


def _combine(
    table: pd.DataFrame, keys: list[str], mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, dict[str, list]]:
    """Group the masked rows by ``keys``: ``(group per row, first row of each group, key values)``."""
    combined = np.zeros(len(table), dtype=np.int64)
    per_key = {}
    for k in keys:
        codes, uniques = _factorize(table[k])
        per_key[k] = (codes, np.asarray(uniques, dtype=object))
        combined = combined * (len(uniques) + 1) + codes
    if mask is not None:
        combined = combined[mask]
        per_key = {k: (c[mask], u) for k, (c, u) in per_key.items()}
    group, uniques = pd.factorize(combined)
    first = np.full(len(uniques), len(group), dtype=np.int64)
    np.minimum.at(first, group, np.arange(len(group)))
    return group, first, {k: u[c[first]].tolist() for k, (c, u) in per_key.items()}


def _series_codes(
    table: pd.DataFrame, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, dict[str, list]]:
    """Group the masked rows by series (phase, probe, stat, module, rank)."""
    keys = [k for k in ("phase", "probe", "stat", "module", "rank") if k in table.columns]
    return _combine(table, keys, mask)


def _reduce(codes: np.ndarray, values: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Per group: mean, max, min, sum of the finite values, and which are non-finite."""
    finite = np.isfinite(values)
    clean = np.where(finite, values, 0.0)
    count = np.bincount(codes, weights=finite, minlength=n)
    total = np.bincount(codes, weights=clean, minlength=n)
    vmax = np.full(n, -np.inf)
    vmin = np.full(n, np.inf)
    np.maximum.at(vmax, codes[finite], values[finite])
    np.minimum.at(vmin, codes[finite], values[finite])
    empty = count == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    for arr in (mean, vmax, vmin, total):
        arr[empty] = np.nan
    out = {"mean": mean, "max": vmax, "min": vmin, "sum": total}
    any_nan = np.bincount(codes, weights=np.isnan(values), minlength=n) > 0
    pos = np.bincount(codes, weights=values == np.inf, minlength=n) > 0
    neg = np.bincount(codes, weights=values == -np.inf, minlength=n) > 0
    bad = np.where(pos & ~neg, np.inf, np.where(neg & ~pos, -np.inf, np.nan))
    out["bad"] = np.where(any_nan | (pos & neg), np.nan, bad)
    out["is_bad"] = any_nan | pos | neg
    return out


def step_scalars(
    table: pd.DataFrame,
    wanted: frozenset[tuple[str, str]] | None,
    tag_fn: TagFn | None = None,
) -> dict[str, float]:
    """One step's records -> ``{tag: value}``, one value per series (see the module doc)."""
    mask = _mask(table, wanted)
    values = table["value"].to_numpy(dtype=np.float64)
    if mask is not None:
        values = values[mask]
    if not len(values):
        return {}
    codes, first, cols = _series_codes(table, mask)
    red = _reduce(codes, values, len(first))
    n = len(first)
    phases = cols.get("phase", ["train"] * n)
    ranks = cols.get("rank", [-1] * n)
    is_bad, bad = red["is_bad"].tolist(), red["bad"].tolist()
    picked = {agg: red[agg].tolist() for agg in ("mean", "max", "min", "sum")}
    make = tag_fn if tag_fn is not None else tag
    out: dict[str, float] = {}
    for g, (probe, stat, module, phase, rank) in enumerate(
        zip(cols["probe"], cols["stat"], cols["module"], phases, ranks)
    ):
        value = bad[g] if is_bad[g] else picked[_AGG.get(stat, "mean")][g]
        name = make(probe, stat, str(module), str(phase))
        if int(rank) >= 0:
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
    need = ("min", "max", "numel", "mean", "std", "nonfinite_frac")
    if table.empty:
        return []
    pc, pu = _factorize(table["probe"])
    sc, su = _factorize(table["stat"])
    stat_idx = pd.Index(need).get_indexer(su)[sc]  # -1: not needed
    mask = (np.asarray(pu, dtype=object)[pc] == "activation_stats") & (stat_idx >= 0)
    if "phase" in table.columns:
        hc, hu = _factorize(table["phase"])
        mask &= np.asarray(hu, dtype=object)[hc] == "train"
    if not mask.any():
        return []
    # one "forward" per (module, call[, micro][, rank]); its statistics side by side
    fwd_cols = [c for c in ("module", "call", "micro", "rank") if c in table.columns]
    fwd, first, keyed = _combine(table, fwd_cols, mask)
    grid = np.full((len(first), len(need)), np.nan)
    grid[fwd, stat_idx[mask]] = table["value"].to_numpy(dtype=np.float64)[mask]
    lo, hi, numel, mean, std, bad = grid.T
    count = np.rint(numel * (1.0 - np.nan_to_num(bad)))
    mean, std = np.nan_to_num(mean), np.nan_to_num(std)
    mod, names = pd.factorize(np.asarray(keyed["module"], dtype=object))
    m = len(names)
    num = np.bincount(mod, weights=np.nan_to_num(count), minlength=m)
    total = np.bincount(mod, weights=np.nan_to_num(count * mean), minlength=m)
    squares = np.bincount(mod, weights=np.nan_to_num(count * (std**2 + mean**2)), minlength=m)
    vmin, vmax = np.full(m, np.inf), np.full(m, -np.inf)
    ok = np.isfinite(lo) & np.isfinite(hi)
    np.minimum.at(vmin, mod[ok], lo[ok])
    np.maximum.at(vmax, mod[ok], hi[ok])
    out = []
    for j in np.argsort(np.asarray(names, dtype=str), kind="stable"):
        if num[j] <= 0 or not np.isfinite(vmin[j]):
            continue  # nothing finite to show
        out.append(
            Hist(
                tag=f"{prefix}/activation_hist/{names[j] or ROOT_NAME}",
                edges=np.array([vmin[j], vmax[j]]),
                counts=np.array([num[j]]),
                num=float(num[j]),
                sum=float(total[j]),
                sum_squares=float(squares[j]),
                min=float(vmin[j]),
                max=float(vmax[j]),
            )
        )
    return out
