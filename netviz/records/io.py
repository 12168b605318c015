"""Saving and loading record tables (Parquet or CSV, chosen by suffix).

Loading never unpickles anything: Parquet is read with pyarrow and CSV with
pandas' text parser, and the result is validated against the record schema.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from netviz.errors import RecordError
from netviz.records.store import validate_frame

__all__ = ["load", "load_metadata", "save_frame"]

_SUFFIXES = (".parquet", ".pq", ".csv")
_META_KEY = b"netviz"  # issue-16: schema-metadata key of the run metadata


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".csv":
        return "csv"
    raise RecordError(
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


def save_frame(
    df: pd.DataFrame, path: str | os.PathLike, metadata: dict[str, Any] | None = None
) -> Path:
    """Write a record table to ``path`` (``.parquet``/``.pq`` or ``.csv``); return the path.

    CSV keeps every float exactly (``%.17g``), including NaN and +-Inf.
    ``metadata`` (JSON-serialisable facts about the run: model, probes, ...)
    is kept in the Parquet schema under the key ``netviz``
    (:func:`load_metadata`); CSV files cannot carry it.
    """
    path = Path(path)
    fmt = _format(path)
    df = validate_frame(df)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        _need_pyarrow()
        if metadata:  # issue-16: run metadata in the Parquet schema (read by load_metadata)
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            extra = {_META_KEY: json.dumps(metadata, sort_keys=True, default=str)}
            pq.write_table(table.replace_schema_metadata({**table.schema.metadata, **extra}), path)
        else:
            df.to_parquet(path, index=False, engine="pyarrow")
    else:
        df.to_csv(path, index=False, float_format="%.17g", na_rep="nan")
    return path


@contextlib.contextmanager
def _parse_errors(path: Path, kind: str) -> Iterator[None]:
    """A file its reader cannot parse -> :class:`RecordError` naming the file."""
    try:
        yield
    except ValueError as err:  # pyarrow's ArrowInvalid, pandas' ParserError, UnicodeDecodeError
        raise RecordError(
            f"{str(path)!r} is not a readable {kind} file ({type(err).__name__}: {err}); "
            "netviz.load reads the files written by Monitor.save, netviz.records.save_frame "
            "and netviz.sinks.Parquet"
        ) from err


def _load_parts(folder: Path) -> pd.DataFrame:
    """The closed ``part-*.parquet`` files of a :class:`netviz.sinks.Parquet` folder, in order."""
    from netviz.records.store import empty_frame

    parts = sorted(folder.glob("part-*.parquet"))
    if not parts:
        if not any(folder.glob(".part-*.inprogress")):
            raise RecordError(
                f"{str(folder)!r} is a folder without netviz record parts (part-*.parquet); "
                "pass a .parquet/.csv file or a folder written by netviz.sinks.Parquet"
            )
        return validate_frame(empty_frame(), source=str(folder))  # the first part is still open
    _need_pyarrow()
    import pyarrow as pa
    import pyarrow.parquet as pq

    with _parse_errors(folder, "Parquet"):
        table = pa.concat_tables([pq.read_table(p) for p in parts], promote_options="default")
        df = table.to_pandas()
    return validate_frame(df, source=str(folder))


def load(path: str | os.PathLike) -> pd.DataFrame:
    """Load a record table saved by :meth:`Monitor.save` (Parquet or CSV, by suffix).

    A folder written by :class:`netviz.sinks.Parquet` is read too (its closed
    parts; also while the run is still writing it).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    netviz.RecordError
        (a ``ValueError``) If the suffix is unknown, the file cannot be parsed,
        or it is not a netviz record table.

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
    with _parse_errors(path, "Parquet" if fmt == "parquet" else "CSV"):
        if fmt == "parquet":
            df = pd.read_parquet(path, engine="pyarrow")
        else:
            df = pd.read_csv(
                path,
                dtype={"module": str, "probe": str, "stat": str},
                keep_default_na=False,
                na_values={"value": ["nan", "NaN"]},
            )
    return validate_frame(df, source=str(path))


# issue-16: run metadata (model, probes, every, versions) saved with the records
def load_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The run metadata :meth:`Monitor.save` kept in a Parquet file (``{}`` for CSV or none).

    Keys written by :meth:`Monitor.save`: ``model``, ``probes``, ``every``,
    ``steps``, ``modules``, ``netviz``, ``torch``.
    """
    path = Path(path)
    if _format(path) != "parquet":
        return {}
    if not path.exists():
        raise FileNotFoundError(f"no record file at {str(path)!r}")
    _need_pyarrow()
    import pyarrow.parquet as pq

    with _parse_errors(path, "Parquet"):
        schema = pq.read_schema(path)
    raw = (schema.metadata or {}).get(_META_KEY)
    if raw is None:
        return {}
    try:
        meta = json.loads(raw)
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}
