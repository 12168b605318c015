"""``netviz diagnose TARGET``: diagnose a model on a batch and print the report.

TARGET names a function that builds what to diagnose:

- ``path/to/file.py`` calls the file's ``build()``;
- ``path/to/file.py:func`` calls ``func()`` in that file;
- ``package.module:func`` imports the module and calls ``func()``
  (``package.module`` alone calls its ``build()``).

The function takes no arguments and returns ``(model, inputs)``,
``(model, inputs, target)`` or ``(model, inputs, target, loss_fn)``, or a dict
with those keys (``target`` and ``loss_fn`` optional); these go to
:func:`netviz.diagnose` as they are.

Exit status (:data:`EXIT_CODES`): 0 when the diagnosis ran with no finding at or
above ``--fail-on`` (every run without ``--fail-on``), 1 when it found one, 2
when TARGET or what it builds (model, batch) could not be loaded, 3 when the
model raised (forward, loss or backward); the message names the module reached.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netviz.errors import NetvizValueError

__all__ = ["EXIT_CODES", "add_arguments", "load_target", "run"]

_SEVERITY = {"warning": 1, "error": 2}

#: Exit status of ``netviz diagnose`` and what it means.
EXIT_CODES: dict[int, str] = {
    0: "the diagnosis ran; no finding at or above --fail-on (always without --fail-on)",
    1: "a finding at or above --fail-on",
    2: "TARGET could not be loaded, or what it built is not a model and batch diagnose accepts",
    3: "the model raised (forward, loss or backward); the message names the module reached",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``netviz diagnose``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "exit status:\n" + "\n".join(
        f"  {code}  {text}" for code, text in EXIT_CODES.items()
    )
    parser.add_argument(
        "target",
        metavar="TARGET",
        help="file.py, file.py:func or package.module:func; the function returns "
        "(model, inputs[, target[, loss_fn]])",
    )
    parser.add_argument("--out", metavar="DIR", help="also write the figures into DIR")
    parser.add_argument(
        "--format", choices=("png", "svg", "pdf"), default="png", help="figure format (default png)"
    )
    parser.add_argument(
        "--eval",
        action="store_true",
        help="run the model in eval mode (default: train mode, as during training)",
    )
    parser.add_argument(
        "--fail-on",
        choices=("warning", "error"),
        default=None,
        help="exit with status 1 if a finding of this severity or worse is found",
    )


def _split(target: str) -> tuple[str, str | None]:
    # "C:\\x.py" style drive letters are not a function separator
    head, sep, func = target.rpartition(":")
    if not sep or not head or len(head) == 1 or "/" in func or "\\" in func:
        return target, None
    return head, func


def load_target(target: str) -> Callable[[], Any]:
    """The build function that ``target`` names (see the module docstring)."""
    where, func = _split(target)
    if where.endswith(".py") or Path(where).is_file():
        path = Path(where)
        if not path.is_file():
            raise FileNotFoundError(f"TARGET file {str(path)!r} does not exist")
        spec = importlib.util.spec_from_file_location(f"_netviz_target_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.path.insert(0, str(path.parent.resolve()))
        try:
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        finally:
            sys.path.pop(0)
    else:
        module = importlib.import_module(where)
    name = func or "build"
    fn = getattr(module, name, None)
    if not callable(fn):
        raise AttributeError(
            f"TARGET {target!r} has no function {name!r}; define {name}() returning "
            "(model, inputs[, target[, loss_fn]]) or name one as FILE.py:FUNC"
        )
    return fn


def _unpack(built: Any, target: str) -> dict[str, Any]:
    if isinstance(built, dict):
        unknown = set(built) - {"model", "inputs", "target", "loss_fn"}
        if unknown or not {"model", "inputs"} <= set(built):
            raise NetvizValueError(
                f"{target}: the dict must have keys model, inputs (and optionally target, loss_fn); "
                f"got {sorted(built)}"
            )
        return dict(built)
    if isinstance(built, (tuple, list)) and 2 <= len(built) <= 4:
        return dict(zip(("model", "inputs", "target", "loss_fn"), built))
    raise NetvizValueError(
        f"{target}: the build function must return (model, inputs[, target[, loss_fn]]) "
        f"or a dict; got {type(built).__name__}"
    )


def _write_figures(report: Any, out: Path, fmt: str) -> list[Path]:
    import matplotlib.pyplot as plt

    from netviz.plot import savefig, timestep_gradients

    written = []
    ax = report.plot()  # the statistic the printed report quotes; the y axis names it
    ax.set_title(f"{report.summary.get('statistic', 'gradient')} per layer")
    written.append(savefig(ax.figure, out / f"gradient_flow.{fmt}", bbox_inches="tight"))
    plt.close(ax.figure)
    if (report.records.probe == "timestep_grad").any():
        ax = timestep_gradients(report)
        written.append(savefig(ax.figure, out / f"timestep_gradients.{fmt}", bbox_inches="tight"))
        plt.close(ax.figure)
    return written


def run(args: argparse.Namespace) -> int:
    """Run ``netviz diagnose``; returns the exit status."""
    from netviz.diagnosis import ModelError, diagnose

    try:
        built = load_target(args.target)()
        kwargs = _unpack(built, args.target)
    except Exception as err:  # anything the user's build code raises: it could not load
        print(
            f"netviz diagnose: cannot load {args.target}: {type(err).__name__}: {err}",
            file=sys.stderr,
        )
        return 2
    model = kwargs.pop("model")
    try:
        report = diagnose(model, **kwargs, train=not args.eval)
    except ModelError as err:
        print(f"netviz diagnose: {args.target}: {err}", file=sys.stderr)
        return 3
    except (TypeError, ValueError) as err:  # not a model, or a batch it cannot take
        print(
            f"netviz diagnose: {args.target}: cannot diagnose what build returned: {err}",
            file=sys.stderr,
        )
        return 2
    print(report)
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        for path in _write_figures(report, Path(args.out), args.format):
            print(f"wrote {path}")
    if args.fail_on:
        level = _SEVERITY[args.fail_on]
        if any(_SEVERITY.get(f.severity, 0) >= level for f in report.findings):
            return 1
    return 0
