"""The histogram table: counts of histogram probes (``activation_hist``, ...), tidy.

One row per non-empty bin of each recorded histogram (:data:`HIST_COLUMNS`):

- ``step``, ``skipped``, ``phase``, ``micro``, ``module``, ``call``,
  ``order``, ``probe``: as in the record table (:mod:`netviz.records.store`);
  ``micro`` is -1 and ``call`` 0 for step-level histograms (gradients, weights);
- ``kind``: ``"bin"`` for a bin of finite values, ``"nan"``, ``"posinf"`` or
  ``"neginf"`` for the non-finite counts;
- ``bin_lo``, ``bin_hi``: the bin ``[bin_lo, bin_hi)`` (float64; the outer
  bins reach to -inf and +inf); NaN for the non-finite rows;
- ``count`` (int64).

Bins holding no value are left out (a histogram of a float32 run fills a few
dozen of its hundreds of bins); the three non-finite rows are always there,
also when zero, so every recorded histogram has rows and ``count`` summed over
its rows is the tensor's ``numel``. The full grid of a histogram is its
probe's :class:`~netviz.capture.histogram.HistogramGrid`.

:func:`save_histograms` / :func:`load_histograms` write and read the table
next to the record file: ``run.parquet`` -> ``run.histograms.parquet``
(``.csv`` likewise), never by pickle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from netviz.errors import NetvizTypeError, RecordError
from netviz.records.store import _DTYPES as RECORD_DTYPES
from netviz.records.store import COLUMNS as RECORD_COLUMNS
from netviz.records.store import typed_columns

__all__ = [
    "HIST_COLUMNS",
    "HistogramStore",
    "empty_histograms",
    "histogram_path",
    "load_histograms",
    "save_histograms",
    "validate_histograms",
]

#: Columns of the histogram table, in order (``rank`` may follow).
HIST_COLUMNS: tuple[str, ...] = (
    *RECORD_COLUMNS[: RECORD_COLUMNS.index("stat")],  # the record table's key columns
    "kind",
    "bin_lo",
    "bin_hi",
    "count",
)
#: Values of the ``kind`` column.
KINDS: tuple[str, ...] = ("bin", "nan", "posinf", "neginf")

_DTYPES = {
    **RECORD_DTYPES,  # the record table's key columns, same dtypes
    "kind": str,
    "bin_lo": "float64",
    "bin_hi": "float64",
    "count": "int64",
}
_SUFFIXES = (".parquet", ".pq", ".csv")


def empty_histograms() -> pd.DataFrame:
    """A histogram table with no rows and the right columns and dtypes."""
    return pd.DataFrame({c: pd.Series([], dtype=_DTYPES[c]) for c in HIST_COLUMNS})


def validate_histograms(df: pd.DataFrame, *, source: str = "histograms") -> pd.DataFrame:
    """Check that ``df`` is a histogram table; return it with canonical dtypes."""
    if not isinstance(df, pd.DataFrame):
        raise NetvizTypeError(f"{source} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in HIST_COLUMNS if c not in df.columns]
    if missing:
        raise RecordError(
            f"{source} is not a netviz histogram table: missing column(s) {missing}; "
            f"expected columns {list(HIST_COLUMNS)}"
        )
    columns = [*HIST_COLUMNS, *(["rank"] if "rank" in df.columns else [])]
    out = typed_columns(df, columns, _DTYPES, source)
    bad = sorted(set(out["kind"]) - set(KINDS))
    if bad:
        raise RecordError(f"{source}: unknown `kind` values {bad}; expected {list(KINDS)}")
    return out.reset_index(drop=True)


@dataclass
class _Block:
    step: int
    probe: str
    edges: np.ndarray  # (nbins + 1,)
    counts: np.ndarray  # (n, nbins + 3) int64
    modules: list[str]
    calls: np.ndarray
    phases: list[str]
    micros: np.ndarray
    orders: np.ndarray
    skipped: bool
    rank: int | None


@dataclass
class HistogramStore:
    """Append-only store of histograms: dense counts per step and probe, tidy on demand."""

    _blocks: list[_Block] = field(default_factory=list)

    def append(
        self,
        step: int,
        probe: str,
        edges: np.ndarray,
        counts: np.ndarray,
        modules: list[str],
        calls: list[int],
        *,
        phases: list[str],
        micros: list[int],
        orders: list[int],
        skipped: bool = False,
        rank: int | None = None,
    ) -> None:
        """Add ``len(modules)`` histograms of one probe at ``step``.

        ``counts`` is ``(n, len(edges) + 2)``: the bins, then NaN, +Inf, -Inf.
        """
        counts = np.asarray(counts)
        edges = np.asarray(edges, dtype=np.float64)
        if counts.ndim != 2 or counts.shape != (len(modules), len(edges) + 2):
            raise RecordError(
                f"counts of shape {counts.shape} do not fit {len(modules)} modules "
                f"and {len(edges) - 1} bins (+3 non-finite counts)"
            )
        if not len(modules):
            return
        self._blocks.append(
            _Block(
                step,
                probe,
                edges,
                np.rint(counts).astype(np.int64),
                list(modules),
                np.asarray(calls, dtype=np.int64),
                list(phases),
                np.asarray(micros, dtype=np.int64),
                np.asarray(orders, dtype=np.int64),
                bool(skipped),
                rank,
            )
        )

    def __len__(self) -> int:
        return sum(len(b.modules) for b in self._blocks)

    def to_pandas(self) -> pd.DataFrame:
        """All histograms as a tidy table with :data:`HIST_COLUMNS` (non-empty bins only)."""
        if not self._blocks:
            return empty_histograms()
        frames = [self._block_frame(b) for b in self._blocks]
        out = pd.concat(frames, ignore_index=True)
        if all(b.rank is None for b in self._blocks):
            out = out.drop(columns="rank")
        return validate_histograms(out)

    @staticmethod
    def _block_frame(b: _Block) -> pd.DataFrame:
        nb = len(b.edges) - 1
        keep = b.counts > 0
        keep[:, nb:] = True  # non-finite counts: always
        rows, cols = np.nonzero(keep)
        lo = np.concatenate([b.edges[:-1], np.full(3, np.nan)])
        hi = np.concatenate([b.edges[1:], np.full(3, np.nan)])
        kinds = np.array(["bin"] * nb + list(KINDS[1:]), dtype=object)
        take = np.asarray
        return pd.DataFrame(
            {
                "step": np.full(len(rows), b.step, dtype=np.int64),
                "skipped": b.skipped,
                "phase": take(b.phases, dtype=object)[rows],
                "micro": b.micros[rows],
                "module": take(b.modules, dtype=object)[rows],
                "call": b.calls[rows],
                "order": b.orders[rows],
                "probe": b.probe,
                "kind": kinds[cols],
                "bin_lo": lo[cols],
                "bin_hi": hi[cols],
                "count": b.counts[rows, cols],
                "rank": -1 if b.rank is None else b.rank,
            }
        )


def histogram_path(path: str | os.PathLike) -> Path:
    """Where the histograms of the record file ``path`` live: ``run.parquet`` -> ``run.histograms.parquet``.

    A path that already names a histogram file is returned unchanged.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise RecordError(
            f"cannot tell the file format of {str(path)!r} from its suffix {suffix!r}; "
            f"use one of {', '.join(_SUFFIXES)}"
        )
    if path.stem.endswith(".histograms"):
        return path
    return path.with_name(f"{path.stem}.histograms{path.suffix}")


def save_histograms(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a histogram table to :func:`histogram_path` of ``path``; return that path."""
    out = histogram_path(path)
    df = validate_histograms(df)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        df.to_csv(out, index=False, float_format="%.17g", na_rep="nan")
    else:
        df.to_parquet(out, index=False, engine="pyarrow")
    return out


def load_histograms(path: str | os.PathLike) -> pd.DataFrame:
    """Load the histograms saved with the record file ``path`` (or the histogram file itself).

    Raises ``FileNotFoundError`` when there is none: the run recorded no
    histogram probe (``activation_hist``, ``grad_hist``, ``weight_hist``).
    """
    file = histogram_path(path)
    if not file.exists():
        raise FileNotFoundError(
            f"no histogram file at {str(file)!r}: histograms are saved next to the "
            "records when the run had a histogram probe (activation_hist, grad_hist, weight_hist)"
        )
    if file.suffix.lower() == ".csv":
        df = pd.read_csv(
            file,
            dtype={"module": str, "probe": str, "phase": str, "kind": str},
            keep_default_na=False,
            na_values={"bin_lo": ["nan", "NaN"], "bin_hi": ["nan", "NaN"]},
        )
    else:
        df = pd.read_parquet(file, engine="pyarrow")
    return validate_histograms(df, source=str(file))


def dense_counts(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Histograms of a table as a matrix: ``(keys, edges, counts)``.

    ``keys`` has one row per histogram (``step, skipped, phase, micro, module,
    call, order, probe``, and ``rank`` if present); ``edges`` are the sorted union of
    the bin edges present (``nbins + 1``); ``counts`` is ``(histograms, nbins +
    3)``: the bins between consecutive edges, then NaN, +Inf and -Inf. Bins of
    the union that a histogram does not hold are 0.
    """
    df = validate_histograms(df)
    keys = [c for c in (*HIST_COLUMNS[:8], "rank") if c in df.columns]
    bins = df[df.kind == "bin"]
    edges = np.unique(np.concatenate([bins.bin_lo.to_numpy(), bins.bin_hi.to_numpy()]))
    groups = df.groupby(keys, sort=True, dropna=False)
    index = groups.ngroup().to_numpy()
    n = int(index.max()) + 1 if len(index) else 0
    counts = np.zeros((n, max(len(edges) - 1, 0) + 3), dtype=np.int64)
    is_bin = (df.kind == "bin").to_numpy()
    col = np.empty(len(df), dtype=np.int64)
    col[is_bin] = np.searchsorted(edges, df.bin_lo.to_numpy()[is_bin])
    nb = max(len(edges) - 1, 0)
    if is_bin.any() and not np.array_equal(edges[col[is_bin] + 1], df.bin_hi.to_numpy()[is_bin]):
        raise RecordError(
            "the histograms use different bin grids (bins overlap); "
            "select one probe, or histograms recorded with one grid"
        )
    kind_col = {"nan": nb, "posinf": nb + 1, "neginf": nb + 2}
    for kind, c in kind_col.items():
        col[(df.kind == kind).to_numpy()] = c
    np.add.at(counts, (index, col), df["count"].to_numpy())
    key_frame = groups.size().reset_index()[keys]
    return key_frame, edges, counts
