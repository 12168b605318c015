"""The tidy record table that probes fill and analyses read.

One row per ``(step, module, call, probe, stat)`` with a float ``value``
(:data:`COLUMNS`). Records are stored column-wise per step (numpy arrays and
interned strings), so keeping thousands of steps costs a few bytes per value
and :meth:`RecordStore.to_pandas` is a single concatenation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["COLUMNS", "RecordStore", "empty_frame", "validate_frame"]

#: Columns of every record table, in order.
COLUMNS: tuple[str, ...] = ("step", "module", "call", "probe", "stat", "value")

#: Columns a record table may add after :data:`COLUMNS` (``rank``: per-rank
#: records of a distributed run, ``watch(per_rank=True)``).
OPTIONAL_COLUMNS: tuple[str, ...] = ("rank",)

# Text columns use pandas' default string dtype (``str``: pyarrow-backed
# strings on pandas >= 3, object on pandas 2), whatever the source.
_DTYPES = {
    "step": "int64",
    "module": str,
    "call": "int64",
    "probe": str,
    "stat": str,
    "value": "float64",
    "rank": "int64",
}


def empty_frame() -> pd.DataFrame:
    """A record table with no rows and the right columns and dtypes."""
    return pd.DataFrame({c: pd.Series([], dtype=_DTYPES[c]) for c in COLUMNS})


def validate_frame(df: pd.DataFrame, *, source: str = "records") -> pd.DataFrame:
    """Check that ``df`` is a record table; return it with canonical dtypes.

    Raises
    ------
    ValueError
        If a column is missing or a value cannot be converted.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{source} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"{source} is not a netviz record table: missing column(s) {missing}; "
            f"expected columns {list(COLUMNS)}"
        )
    columns = [*COLUMNS, *(c for c in OPTIONAL_COLUMNS if c in df.columns)]
    out = df.loc[:, columns].copy()
    try:
        for c in columns:
            out[c] = out[c].astype(_DTYPES[c])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source}: column {c!r} has values of the wrong type ({err})") from err
    return out.reset_index(drop=True)


@dataclass
class _StepBlock:
    step: int
    keys: np.ndarray  # (n, 4) int32 indices: module, call, probe, stat
    values: np.ndarray  # (n,) float64
    ranks: np.ndarray | None = None  # (n,) int64, per-rank records only


@dataclass
class RecordStore:
    """Append-only column store of records, interned by string."""

    _strings: list[str] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)
    _blocks: list[_StepBlock] = field(default_factory=list)

    def _intern(self, s: str) -> int:
        i = self._index.get(s)
        if i is None:
            i = self._index[s] = len(self._strings)
            self._strings.append(s)
        return i

    def append(
        self,
        step: int,
        modules: list[str],
        calls: list[int],
        probes: list[str],
        stats: list[str],
        values: np.ndarray,
        ranks: list[int] | None = None,
    ) -> None:
        """Add the rows of one step (all lists of equal length; ``ranks`` optional)."""
        n = len(values)
        if not n:
            return
        keys = np.empty((n, 4), dtype=np.int64)
        keys[:, 0] = [self._intern(m) for m in modules]
        keys[:, 1] = calls
        keys[:, 2] = [self._intern(p) for p in probes]
        keys[:, 3] = [self._intern(s) for s in stats]
        rank_col = None if ranks is None else np.asarray(ranks, dtype=np.int64)
        self._blocks.append(_StepBlock(step, keys, np.asarray(values, dtype=np.float64), rank_col))

    def append_grids(self, step: int, grids: list[tuple], per_rank: bool = False) -> None:
        """Add the rows of one step given per probe as grids (vectorised :meth:`append`).

        Each grid is ``(modules, calls, probe, stats, values, keep, rank)``:
        ``values`` and the boolean ``keep`` are ``(len(modules), len(stats))``;
        a row is stored for each kept cell, with ``rank`` when ``per_rank``.
        """
        keys, values, ranks = [], [], []
        for modules, calls, probe, stats, grid, keep, rank in grids:
            n, k = grid.shape
            block = np.empty((n, k, 4), dtype=np.int64)
            block[:, :, 0] = np.array([self._intern(m) for m in modules], dtype=np.int64)[:, None]
            block[:, :, 1] = np.asarray(calls, dtype=np.int64)[:, None]
            block[:, :, 2] = self._intern(probe)
            block[:, :, 3] = np.array([self._intern(s) for s in stats], dtype=np.int64)[None, :]
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
        steps = np.concatenate(
            [np.full(len(b.values), b.step, dtype=np.int64) for b in self._blocks]
        )
        values = np.concatenate([b.values for b in self._blocks])
        strings = np.asarray(self._strings, dtype=object)
        frame = pd.DataFrame(
            {
                "step": steps,
                "module": pd.Series(strings[keys[:, 0]]).astype(str),
                "call": keys[:, 1].astype(np.int64),
                "probe": pd.Series(strings[keys[:, 2]]).astype(str),
                "stat": pd.Series(strings[keys[:, 3]]).astype(str),
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
