"""Parquet sink: stream recorded steps to a folder of Parquet parts.

A Parquet file is readable only once its footer is written, so a single
file that grows for the whole run would be lost in a crash. This sink writes
a *dataset folder* instead::

    run.parquet/part-00000.parquet   steps of the first part (one row group per step)
    run.parquet/part-00001.parquet
    run.parquet/.part-00002.parquet.inprogress   the open part (hidden, no footer yet)

The open part is renamed into place when it is closed: every
``steps_per_file`` recorded steps, when ``flush_seconds`` have passed since it
was opened (checked when a step arrives), on :meth:`Parquet.flush` (for
example ``Monitor.flush()``) and on :meth:`Parquet.close` (the monitor's
``detach`` flushes). ``netviz.load("run.parquet")`` reads the closed parts, so
it works while the run goes on, and after a crash it returns every step up to
the last closed part. Readers never see a half-written file (the rename is
atomic).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pandas as pd

from netviz.errors import NetvizValueError
from netviz.sinks.base import Sink

__all__ = ["Parquet"]

PART_GLOB = "part-*.parquet"


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "netviz.sinks.Parquet needs pyarrow: pip install 'netviz[parquet]'"
        ) from err
    return pa, pq


class Parquet(Sink):
    """Stream every recorded step (all rows) to the dataset folder ``path``.

    Parameters
    ----------
    path
        A folder (created; by convention ``*.parquet``). It must not hold
        parts already unless ``overwrite=True`` (which deletes them).
    steps_per_file
        Recorded steps per part file (at most that many are lost in a crash).
    flush_seconds
        Also close the open part when it is older than this.
    compression
        Parquet codec (``"zstd"`` default, ``"snappy"``, ``"none"``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        steps_per_file: int = 20,
        flush_seconds: float = 30.0,
        compression: str = "zstd",
        overwrite: bool = False,
    ) -> None:
        _pyarrow()
        if (
            isinstance(steps_per_file, bool)
            or not isinstance(steps_per_file, int)
            or steps_per_file < 1
        ):
            raise NetvizValueError(f"`steps_per_file` must be an int >= 1, got {steps_per_file!r}")
        if not flush_seconds > 0:
            raise NetvizValueError(
                f"`flush_seconds` must be a number of seconds > 0, got {flush_seconds!r}"
            )
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise FileExistsError(
                f"{str(self.path)!r} is a file; netviz.sinks.Parquet writes a folder of parts "
                "(pick a new path, e.g. 'run.parquet' in an empty place)"
            )
        old = sorted(self.path.glob(PART_GLOB)) + sorted(self.path.glob(".part-*.inprogress"))
        if old and not overwrite:
            raise FileExistsError(
                f"{str(self.path)!r} already holds {len(old)} record part(s); pass "
                "overwrite=True to replace them or choose another folder"
            )
        for f in old:
            f.unlink()
        self.path.mkdir(parents=True, exist_ok=True)
        self.steps_per_file = steps_per_file
        self.flush_seconds = float(flush_seconds)
        self.compression = compression
        self._writer: Any = None
        self._schema: Any = None
        self._part = 0
        self._steps_in_part = 0
        self._opened = 0.0
        self.steps_written = 0

    def _tmp(self) -> Path:
        return self.path / f".part-{self._part:05d}.parquet.inprogress"

    def write(self, step: int, table: pd.DataFrame) -> None:
        pa, pq = _pyarrow()
        arrow = pa.Table.from_pandas(table, preserve_index=False)
        if self._schema is None:
            self._schema = arrow.schema.remove_metadata()
        if not arrow.schema.remove_metadata().equals(self._schema):
            arrow = arrow.select(self._schema.names).cast(self._schema)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._tmp(), self._schema, compression=self.compression)
            self._opened = time.monotonic()
        self._writer.write_table(arrow.replace_schema_metadata(None))  # one row group per step
        self._steps_in_part += 1
        self.steps_written += 1
        if (
            self._steps_in_part >= self.steps_per_file
            or time.monotonic() - self._opened >= self.flush_seconds
        ):
            self.flush()

    def flush(self) -> None:
        """Close the open part (if any) so that readers see its steps."""
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        os.replace(self._tmp(), self.path / f"part-{self._part:05d}.parquet")
        self._part += 1
        self._steps_in_part = 0
