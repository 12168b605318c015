"""Saving and loading record tables (Parquet or CSV, chosen by suffix).

Loading never unpickles anything: Parquet is read with pyarrow and CSV with
pandas' text parser, and the result is validated against the record schema.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from netviz.records.store import validate_frame

__all__ = ["load", "save_frame"]

_SUFFIXES = (".parquet", ".pq", ".csv")


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".csv":
        return "csv"
    raise ValueError(
        f"cannot tell the file format of {str(path)!r} from its suffix {suffix!r}; "
        f"use one of {', '.join(_SUFFIXES)}"
    )


def _need_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Parquet files need pyarrow: pip install 'netviz[parquet]' (or save as .csv)"
        ) from err


def save_frame(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a record table to ``path`` (``.parquet``/``.pq`` or ``.csv``); return the path.

    CSV keeps every float exactly (``%.17g``), including NaN and +-Inf.
    """
    path = Path(path)
    fmt = _format(path)
    df = validate_frame(df)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        _need_pyarrow()
        df.to_parquet(path, index=False, engine="pyarrow")
    else:
        df.to_csv(path, index=False, float_format="%.17g", na_rep="nan")
    return path


def _load_parts(folder: Path) -> pd.DataFrame:
    """The closed ``part-*.parquet`` files of a :class:`netviz.sinks.Parquet` folder, in order."""
    from netviz.records.store import empty_frame

    parts = sorted(folder.glob("part-*.parquet"))
    if not parts:
        if not any(folder.glob(".part-*.inprogress")):
            raise ValueError(
                f"{str(folder)!r} is a folder without netviz record parts (part-*.parquet); "
                "pass a .parquet/.csv file or a folder written by netviz.sinks.Parquet"
            )
        return validate_frame(empty_frame(), source=str(folder))  # the first part is still open
    _need_pyarrow()
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.concat_tables([pq.read_table(p) for p in parts], promote_options="default")
    return validate_frame(table.to_pandas(), source=str(folder))


def load(path: str | os.PathLike) -> pd.DataFrame:
    """Load a record table saved by :meth:`Monitor.save` (Parquet or CSV, by suffix).

    A folder written by :class:`netviz.sinks.Parquet` is read too (its closed
    parts; also while the run is still writing it).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the suffix is unknown or the file is not a netviz record table.

    Examples
    --------
    >>> import tempfile, torch, netviz
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2))
    >>> with netviz.watch(net) as mon:
    ...     net(torch.ones(1, 2)).sum().backward()
    ...     mon.step()
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = mon.save(d + "/run.csv")
    ...     netviz.load(path).equals(mon.to_pandas())
    True
    """
    path = Path(path)
    if path.is_dir():  # issue #15: a folder written by netviz.sinks.Parquet
        return _load_parts(path)
    fmt = _format(path)
    if not path.exists():
        raise FileNotFoundError(f"no record file at {str(path)!r}")
    if fmt == "parquet":
        _need_pyarrow()
        df = pd.read_parquet(path, engine="pyarrow")
    else:
        df = pd.read_csv(
            path,
            dtype={"module": str, "probe": str, "stat": str},
            keep_default_na=False,
            na_values={"value": ["nan", "NaN"]},
        )
    return validate_frame(df, source=str(path))
