"""The tidy record table that probes fill and analyses read.

One row per ``(step, phase, micro, module, call, probe, stat)`` with a float
``value`` (:data:`COLUMNS`; what each column means is defined in
``docs/watch.md``, "What a step is"). Records are stored column-wise per step
(numpy arrays and interned strings), so keeping thousands of steps costs a few
bytes per value and :meth:`RecordStore.to_pandas` is a single concatenation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from netviz.errors import NetvizTypeError, RecordError

__all__ = ["COLUMNS", "PHASES", "STEP_LEVEL", "RecordStore", "empty_frame", "validate_frame"]

#: Columns of every record table, in order.
COLUMNS: tuple[str, ...] = (
    "step",
    "skipped",
    "phase",
    "micro",
    "module",
    "call",
    "order",
    "probe",
    "stat",
    "value",
)

#: Columns a record table may add after :data:`COLUMNS` (``rank``: per-rank
#: records of a distributed run, ``watch(per_rank=True)``).
OPTIONAL_COLUMNS: tuple[str, ...] = ("rank",)

#: Values of the ``phase`` column.
PHASES: tuple[str, ...] = ("train", "eval")

#: ``micro`` of step-level rows (gradients, weights: one value per step).
STEP_LEVEL = -1

# Text columns use pandas' default string dtype (``str``: pyarrow-backed
# strings on pandas >= 3, object on pandas 2), whatever the source.
_DTYPES = {
    "step": "int64",
    "skipped": "bool",
    "phase": str,
    "micro": "int64",
    "module": str,
    "call": "int64",
    "order": "int64",
    "probe": str,
    "stat": str,
    "value": "float64",
    "rank": "int64",
}

#: Columns added after netviz 0.1 and filled by :func:`validate_frame` when absent.
_ADDED = ("skipped", "phase", "micro", "order")


def empty_frame() -> pd.DataFrame:
    """A record table with no rows and the right columns and dtypes."""
    return pd.DataFrame({c: pd.Series([], dtype=_DTYPES[c]) for c in COLUMNS})


def _fill_added(df: pd.DataFrame) -> pd.DataFrame:
    """Defaults for the columns a table of netviz 0.1 (or a hand-made one) lacks.

    ``skipped`` False, ``phase`` "train", ``micro`` 0 (``-1`` for rows of
    probes without a ``call`` > 0 that read gradients or weights cannot be
    told apart, so 0 throughout), and ``order`` the first appearance of each
    module within its step (such tables have no other record of execution
    order).
    """
    df = df.copy()
    if "skipped" not in df.columns:
        df["skipped"] = False
    if "phase" not in df.columns:
        df["phase"] = "train"
    if "micro" not in df.columns:
        df["micro"] = 0
    if "order" not in df.columns:
        if len(df):
            first = df.groupby(["step", "module"], sort=False).cumcount() == 0
            rank = first.astype(np.int64).groupby(df["step"]).cumsum() - 1
            firsts = df.loc[first, ["step", "module"]].assign(order=rank[first].to_numpy())
            df = df.merge(firsts, on=["step", "module"], how="left", sort=False)
        else:
            df["order"] = pd.Series([], dtype="int64")
    return df


def typed_columns(
    df: pd.DataFrame, columns: list[str], dtypes: dict[str, Any], source: str
) -> pd.DataFrame:
    """A copy of ``df[columns]`` cast to ``dtypes``; a :class:`RecordError` naming the column if not."""
    out = df.loc[:, columns].copy()
    for c in columns:
        try:
            out[c] = out[c].astype(dtypes[c])
        except (TypeError, ValueError) as err:
            raise RecordError(
                f"{source}: column {c!r} has values of the wrong type ({err})"
            ) from err
    return out


def validate_frame(df: pd.DataFrame, *, source: str = "records") -> pd.DataFrame:
    """Check that ``df`` is a record table; return it with canonical columns and dtypes.

    Tables without the columns added after netviz 0.1 (``skipped``,
    ``phase``, ``micro``, ``order``) get their defaults (see ``docs/watch.md``).

    Raises
    ------
    TypeError
        If ``df`` is not a DataFrame.
    ValueError
        If a column is missing or a value cannot be converted.
    """
    if not isinstance(df, pd.DataFrame):
        raise NetvizTypeError(f"{source} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in COLUMNS if c not in df.columns and c not in _ADDED]
    if missing:
        raise RecordError(
            f"{source} is not a netviz record table: missing column(s) {missing}; "
            f"expected columns {list(COLUMNS)}"
        )
    if any(c not in df.columns for c in _ADDED):
        df = _fill_added(df)
    columns = [*COLUMNS, *(c for c in OPTIONAL_COLUMNS if c in df.columns)]
    out = typed_columns(df, columns, _DTYPES, source)
    bad = sorted(set(out["phase"].unique()) - set(PHASES))
    if bad:
        raise RecordError(f"{source}: column 'phase' has values {bad}; expected one of {PHASES}")
    return out.reset_index(drop=True)


# key columns of a stored block: interned strings or integers
_K_MODULE, _K_CALL, _K_PROBE, _K_STAT, _K_PHASE, _K_MICRO, _K_ORDER = range(7)


@dataclass
class _StepBlock:
    step: int
    keys: np.ndarray  # (n, 7) int64: module, call, probe, stat, phase, micro, order
    values: np.ndarray  # (n,) float64
    ranks: np.ndarray | None = None  # (n,) int64, per-rank records only
    skipped: bool = False


@dataclass
class RecordStore:
    """Append-only column store of records, interned by string."""

    _strings: list[str] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)
    _blocks: list[_StepBlock] = field(default_factory=list)
    _table: tuple[list[str], np.ndarray] | None = field(default=None, repr=False)

    def _intern(self, s: str) -> int:
        i = self._index.get(s)
        if i is None:
            i = self._index[s] = len(self._strings)
            self._strings.append(s)
        return i

    def _module_codes(self, rowkeys: dict) -> np.ndarray:
        """Interned codes of the rows' modules: names, or indices into ``module_table``."""
        mods = rowkeys["module"]
        table = rowkeys.get("module_table")
        if table is None:
            return np.array([self._intern(m) for m in mods], dtype=np.int64)
        cached = self._table
        if cached is None or cached[0] is not table or len(cached[1]) != len(table):
            # the table only grows: intern its names once, not once per row and step
            cached = self._table = (table, np.array([self._intern(m) for m in table], np.int64))
        return cached[1][np.asarray(mods, dtype=np.int64)]

    def append_grids(
        self, step: int, grids: list[tuple], per_rank: bool = False, skipped: bool = False
    ) -> None:
        """Add the rows of one step given per probe as grids.

        Each grid is ``(keys, probe, stats, values, keep, rank)``: ``keys`` maps
        ``module``, ``call``, ``phase`` (0 train, 1 eval), ``micro`` and
        ``order`` to one list (or array) entry per grid row (``module``: names,
        or indices into a list of names given as ``keys["module_table"]``); ``values`` and the boolean
        ``keep`` are ``(n, len(stats))``; a row is stored for each kept cell,
        with ``rank`` when ``per_rank``. ``skipped`` marks the whole step.
        """
        keys, values, ranks = [], [], []
        for rowkeys, probe, stats, grid, keep, rank in grids:
            n, k = grid.shape
            block = np.empty((n, k, 7), dtype=np.int64)
            modules = self._module_codes(rowkeys)
            block[:, :, _K_MODULE] = modules[:, None]
            block[:, :, _K_CALL] = np.asarray(rowkeys["call"], dtype=np.int64)[:, None]
            block[:, :, _K_PROBE] = self._intern(probe)
            block[:, :, _K_STAT] = np.array([self._intern(s) for s in stats], dtype=np.int64)[
                None, :
            ]
            block[:, :, _K_PHASE] = np.asarray(rowkeys["phase"], dtype=np.int64)[:, None]
            block[:, :, _K_MICRO] = np.asarray(rowkeys["micro"], dtype=np.int64)[:, None]
            block[:, :, _K_ORDER] = np.asarray(rowkeys["order"], dtype=np.int64)[:, None]
            keys.append(block[keep])
            values.append(grid[keep])
            ranks.append(np.full(int(keep.sum()), rank, dtype=np.int64))
        if not keys or not sum(len(v) for v in values):
            return
        self._blocks.append(
            _StepBlock(
                step,
                np.concatenate(keys),
                np.concatenate(values),
                np.concatenate(ranks) if per_rank else None,
                bool(skipped),
            )
        )

    def __len__(self) -> int:
        return sum(len(b.values) for b in self._blocks)

    @property
    def steps(self) -> list[int]:
        """Steps that have records, in order."""
        return [b.step for b in self._blocks]

    def to_pandas(self) -> pd.DataFrame:
        """All records as a tidy DataFrame with :data:`COLUMNS`."""
        if not self._blocks:
            return empty_frame()
        keys = np.concatenate([b.keys for b in self._blocks])
        sizes = [len(b.values) for b in self._blocks]
        steps = np.repeat(np.array([b.step for b in self._blocks], dtype=np.int64), sizes)
        skipped = np.repeat(np.array([b.skipped for b in self._blocks], dtype=bool), sizes)
        values = np.concatenate([b.values for b in self._blocks])
        strings = np.asarray(self._strings, dtype=object)
        phases = np.asarray(PHASES, dtype=object)
        frame = pd.DataFrame(
            {
                "step": steps,
                "skipped": skipped,
                "phase": pd.Series(phases[keys[:, _K_PHASE]], dtype=str),
                "micro": keys[:, _K_MICRO],
                "module": pd.Series(strings[keys[:, _K_MODULE]], dtype=str),
                "call": keys[:, _K_CALL],
                "order": keys[:, _K_ORDER],
                "probe": pd.Series(strings[keys[:, _K_PROBE]], dtype=str),
                "stat": pd.Series(strings[keys[:, _K_STAT]], dtype=str),
                "value": values,
            }
        )
        if any(b.ranks is not None for b in self._blocks):
            frame["rank"] = np.concatenate(
                [
                    b.ranks if b.ranks is not None else np.full(len(b.values), -1, dtype=np.int64)
                    for b in self._blocks
                ]
            )
        return frame
