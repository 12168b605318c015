"""``netviz report RECORDS -o report.html``: one self-contained HTML report of a saved run.

RECORDS is a file written by :meth:`netviz.Monitor.save` (Parquet or CSV);
Parquet files from ``save`` also carry the run's metadata (model, probes,
``every``, versions). ``--meta KEY=VALUE`` adds facts to the run summary.

Exit status: 0 written, 2 when RECORDS cannot be read or holds no records.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_arguments", "run"]


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``netviz report``."""
    parser.add_argument("records", metavar="RECORDS", help="record file (.parquet, .pq or .csv)")
    parser.add_argument(
        "-o",
        "--out",
        metavar="FILE",
        default="report.html",
        help="HTML file to write (default report.html)",
    )
    parser.add_argument("--title", help="page title (default: netviz report: <model>)")
    parser.add_argument(
        "--meta",
        metavar="KEY=VALUE",
        type=_key_value,
        action="append",
        default=[],
        help="a fact for the run summary, e.g. --meta dataset=digits (repeatable; "
        "wall_time_s=SECONDS shows as the wall time)",
    )
    parser.add_argument(
        "--format",
        dest="fmt",
        choices=("png", "svg"),
        default="png",
        help="figure format (default png)",
    )
    parser.add_argument(
        "--no-script",
        action="store_true",
        help="leave out the inline script (selectors, zoom, sorting); the page shows everything",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``netviz report``; returns the exit status."""
    from netviz.errors import NetvizError
    from netviz.reporting import report

    print(f"Reading {args.records} and building the report ...", file=sys.stderr, flush=True)
    try:
        path = report(
            args.records,
            Path(args.out),
            title=args.title,
            metadata=dict(args.meta),
            fmt=args.fmt,
            script=not args.no_script,
        )
    except (OSError, NetvizError, ValueError, TypeError) as err:  # ValueError: a reader's own
        print(f"netviz report: error: {err}", file=sys.stderr)
        return 2
    size = path.stat().st_size
    print(f"wrote {path} ({size / 1024:.0f} KB)")
    return 0
