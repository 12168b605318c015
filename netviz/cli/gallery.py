"""``netviz gallery list`` and ``netviz gallery build``: the lecture-figure gallery.

``list`` prints each script's ID, title and lecture topic. ``build`` runs the
scripts (each in its own process, ``--jobs`` at a time), writes one file per
figure (``<ID>_<name>.png``) and an ``index.html`` contact sheet, and exits
with status 1 if any script failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from netviz.gallery.builder import FigureResult
    from netviz.gallery.catalog import Script

__all__ = ["add_arguments", "run"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds (a number > 0), got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected seconds (a number > 0), got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``list`` and ``build`` sub-subcommands to ``parser``."""
    from netviz.gallery.builder import DEFAULT_TIMEOUT, FORMATS

    sub = parser.add_subparsers(dest="gallery_command", metavar="{list,build}")
    src_help = "folder of gallery scripts (default: the ones installed with netviz, else ./gallery)"
    p_list = sub.add_parser("list", help="list the figures: ID, title, lecture topic")
    p_list.add_argument("--src", metavar="DIR", help=src_help)
    p_build = sub.add_parser(
        "build", help="run the scripts and write the figures plus an index.html contact sheet"
    )
    p_build.add_argument(
        "--out",
        metavar="DIR",
        default="netviz-gallery",
        help="output folder (default: ./netviz-gallery)",
    )
    p_build.add_argument(
        "--only", metavar="ID", nargs="+", help="build only these figure IDs (e.g. A2 D3)"
    )
    p_build.add_argument(
        "--jobs",
        "-j",
        type=_positive_int,
        default=1,
        metavar="N",
        help="scripts run in parallel (default 1)",
    )
    p_build.add_argument(
        "--format",
        dest="fmt",
        choices=FORMATS,
        default="png",
        help="figure file format (default png)",
    )
    p_build.add_argument("--src", metavar="DIR", help=src_help)
    p_build.add_argument(
        "--fast",
        action="store_true",
        help="fast mode: fewer training steps (NETVIZ_GALLERY_FAST=1)",
    )
    p_build.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"time limit per script in seconds (default {DEFAULT_TIMEOUT:g})",
    )
    p_build.add_argument(
        "--dpi",
        type=_positive_float,
        default=None,
        metavar="DPI",
        help="resolution of png figures (default 160: 2048 px wide for a 12.8 in figure)",
    )
    parser.set_defaults(_gallery_parser=parser)


def _scripts(src: str | None) -> list[Script]:
    from netviz.gallery.catalog import default_src, find_scripts

    folder = Path(src) if src else default_src()
    scripts = find_scripts(folder)
    if not scripts:
        from netviz.gallery.catalog import GalleryError

        raise GalleryError(f"no gallery scripts ('<ID>_<name>.py') in {folder}")
    return scripts


def _list(args: argparse.Namespace) -> int:
    scripts = _scripts(args.src)
    width = max(len(s.title) for s in scripts)
    for s in scripts:
        print(f"{s.id:<4} {s.title:<{width}}  {s.topic}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from netviz.gallery.builder import build
    from netviz.gallery.catalog import select
    from netviz.gallery.contact_sheet import write_index

    scripts = _scripts(args.src)
    chosen = select(scripts, args.only)
    out = Path(args.out)
    mode = "fast mode, " if args.fast else ""
    print(
        f"Building {len(chosen)} figure(s) into {out} ({mode}{args.jobs} job(s), {args.fmt})",
        flush=True,
    )
    width = len(str(len(chosen)))
    from netviz._progress import progress as make_progress

    # A bar on a terminal (tqdm installed, TQDM_DISABLE unset); the per-figure
    # lines are printed above it, and alone when there is no bar.
    bar = make_progress(len(chosen), "gallery")

    def progress(res: FigureResult, done: int, total: int) -> None:
        status = "ok  " if res.ok else "FAIL"
        what = ", ".join(res.files) if res.ok else res.error.splitlines()[-1] if res.error else ""
        line = f"[{done:>{width}}/{total}] {status} {res.script.id:<4} {res.seconds:6.1f} s  {what}"
        bar.write(line)
        bar.update(1, res.script.id)

    start = time.perf_counter()
    with bar:
        results = build(
            chosen,
            out,
            jobs=args.jobs,
            fmt=args.fmt,
            fast=True if args.fast else None,
            timeout=args.timeout,
            dpi=args.dpi,
            on_done=progress,
        )
    index = write_index(out, scripts, results, fmt=args.fmt)
    failed = [r for r in results if not r.ok]
    elapsed = time.perf_counter() - start
    for r in failed:
        print(f"\n{r.script.id} ({r.script.path.name}) failed:", file=sys.stderr)
        print("    " + r.error.replace("\n", "\n    "), file=sys.stderr)
    n_ok = len(results) - len(failed)
    print(f"\n{n_ok} of {len(results)} figure(s) built in {elapsed:.1f} s", end="")
    print(f"; {len(failed)} failed: {' '.join(r.script.id for r in failed)}" if failed else "")
    print(f"Gallery: {os.path.abspath(index)}")
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    """Run ``netviz gallery list|build``; returns the exit status."""
    from netviz.gallery.catalog import GalleryError

    command = getattr(args, "gallery_command", None)
    if command is None:
        args._gallery_parser.print_help()
        return 2
    try:
        return _list(args) if command == "list" else _build(args)
    except GalleryError as err:
        print(f"netviz gallery: error: {err}", file=sys.stderr)
        return 2
