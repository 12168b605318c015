"""The ``netviz`` command line: ``netviz demo``, ``gallery``, ``diagnose``, ``report``.

Each subcommand lives in its own module with ``add_arguments(parser)`` and
``run(args) -> int``; this module only wires them together.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

#: subcommand -> (module, one-line help)
_COMMANDS = {
    "demo": ("netviz.cli.demo", "train a tiny net with probes; write a figure and a record file"),
    "gallery": ("netviz.cli.gallery", "list or build the lecture-figure gallery"),
    "diagnose": ("netviz.cli.diagnose", "diagnose a model on a batch and print the report"),
    "report": ("netviz.cli.report", "write a self-contained HTML report of a record file"),
}


def build_parser() -> argparse.ArgumentParser:
    from netviz import __version__

    parser = argparse.ArgumentParser(prog="netviz", description="See inside PyTorch networks.")
    parser.add_argument("--version", action="version", version=f"netviz {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (modname, help_text) in _COMMANDS.items():
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as err:
            if err.name != modname:
                raise
            continue  # subcommand not built yet
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``netviz`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    return int(args._run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
