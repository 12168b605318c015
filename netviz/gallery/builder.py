"""Build the gallery: run each script in its own process and save its figures.

Each script runs in a fresh ``python -c`` process (:data:`RUNNER`) with a fixed
environment (:func:`runner_env`: Agg backend, ``SOURCE_DATE_EPOCH``,
``PYTHONHASHSEED=0``, one thread), so that figures do not leak state into one
another and two builds on the same machine give byte-identical files. The
runner executes the script with :func:`runpy.run_path` and saves every figure
left open with :func:`netviz.plot.theme.savefig` (metadata stripped, fixed SVG
ids): the first as ``<ID>_<name>.<fmt>``, further ones as ``..._2``, ``..._3``.

A failing script is reported with the last lines of its error and does not
stop the others; :func:`build` returns one :class:`FigureResult` per script.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from netviz.errors import NetvizValueError
from netviz.gallery.catalog import Script

__all__ = ["FORMATS", "RUNNER", "FigureResult", "build", "run_script", "runner_env"]

FORMATS = ("png", "svg", "pdf")
#: Default per-script time limit in seconds.
DEFAULT_TIMEOUT = 300.0
_MARK = "NETVIZ-GALLERY-FIGURE\t"

#: Code run by ``python -c`` for one script: argv = script, out dir, stem, format, dpi ("" = default).
RUNNER = """
import os, runpy, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
script, out, stem, fmt, dpi = sys.argv[1:6]
sys.argv = [script]
sys.path.insert(0, os.path.dirname(script))
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as exc:
    if exc.code not in (None, 0):
        raise
except BaseException as exc:
    import traceback
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != script:
        tb = tb.tb_next  # drop the runner's and runpy's frames
    traceback.print_exception(type(exc), exc, tb or exc.__traceback__)
    sys.exit(1)
from netviz.plot.theme import savefig
nums = plt.get_fignums()
if not nums:
    raise SystemExit("the script left no matplotlib figure open (the builder saves open figures)")
for i, num in enumerate(nums):
    path = os.path.join(out, stem + ("" if i == 0 else "_%d" % (i + 1)) + "." + fmt)
    savefig(plt.figure(num), path, **({"dpi": float(dpi)} if dpi else {}))
    print(MARK + os.path.basename(path), flush=True)
""".replace("MARK", repr(_MARK))


@dataclass
class FigureResult:
    """Outcome of one script: ``files`` written (names in the output folder) or ``error``."""

    script: Script
    ok: bool
    seconds: float
    files: list[str] = field(default_factory=list)
    error: str = ""


def runner_env(fast: bool | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a script's process: ``base`` (default ``os.environ``) plus fixed settings.

    ``fast=True`` sets ``NETVIZ_GALLERY_FAST=1``, ``False`` sets it to ``0``,
    ``None`` keeps what ``base`` says.

    >>> env = runner_env(fast=True, base={})
    >>> env["MPLBACKEND"], env["PYTHONHASHSEED"], env["NETVIZ_GALLERY_FAST"]
    ('Agg', '0', '1')
    """
    env = dict(os.environ if base is None else base)
    env.update(
        MPLBACKEND="Agg",
        PYTHONHASHSEED="0",
        SOURCE_DATE_EPOCH=env.get("SOURCE_DATE_EPOCH", "0"),
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    if fast is not None:
        env["NETVIZ_GALLERY_FAST"] = "1" if fast else "0"
    return env


def _tail(text: str, n: int = 8) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "\n".join(lines[-n:])


def _remove_old(out: Path, stem: str, fmt: str) -> None:
    pattern = re.compile(rf"^{re.escape(stem)}(_\d+)?\.{fmt}$")
    for p in out.iterdir():
        if pattern.match(p.name):
            p.unlink()


class _Processes:
    """The script processes a build is running, so that an interrupted build can stop them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen] = set()
        self.cancelled = False

    def add(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._live.add(proc)
            if self.cancelled:
                proc.kill()

    def discard(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._live.discard(proc)

    def kill_all(self) -> None:
        with self._lock:
            self.cancelled = True
            for proc in self._live:
                proc.kill()


def run_script(
    script: Script,
    out: str | os.PathLike,
    *,
    fmt: str = "png",
    fast: bool | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    dpi: float | None = None,
    python: str = sys.executable,
    _processes: _Processes | None = None,
) -> FigureResult:
    """Run one gallery script in a fresh process and save its figures into ``out``.

    The script runs in its own folder (as ``python script.py`` would);
    ``out`` is resolved against the caller's working folder first. ``dpi``
    overrides the style's ``savefig.dpi`` (160) for raster output.
    """
    if fmt not in FORMATS:
        raise NetvizValueError(f"`fmt` must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    _remove_old(out, script.stem, fmt)
    dpi_arg = f"{dpi:g}" if dpi else ""
    cmd = [python, "-c", RUNNER, str(script.path), str(out), script.stem, fmt, dpi_arg]
    start = time.perf_counter()
    with subprocess.Popen(
        cmd,
        env=runner_env(fast),
        cwd=str(script.path.parent),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        if _processes is not None:
            _processes.add(proc)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            _remove_old(out, script.stem, fmt)
            error = f"timed out after {timeout:g} s"
            return FigureResult(script, False, time.perf_counter() - start, error=error)
        finally:
            if _processes is not None:
                _processes.discard(proc)
    seconds = time.perf_counter() - start
    files = [ln[len(_MARK) :] for ln in stdout.splitlines() if ln.startswith(_MARK)]
    if proc.returncode != 0:
        _remove_old(out, script.stem, fmt)
        error = _tail(stderr) or f"exit status {proc.returncode}"
        return FigureResult(script, False, seconds, error=error)
    return FigureResult(script, True, seconds, files=files)


def build(
    scripts: Sequence[Script],
    out: str | os.PathLike,
    *,
    jobs: int = 1,
    fmt: str = "png",
    fast: bool | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    dpi: float | None = None,
    on_done: Callable[[FigureResult, int, int], None] | None = None,
) -> list[FigureResult]:
    """Run ``scripts`` (``jobs`` at a time) into ``out``; results in the order of ``scripts``.

    ``on_done(result, n_done, n_total)`` is called as each script finishes
    (progress reporting). Failures are collected, never raised. If the build
    itself is interrupted (Ctrl-C, or an exception in ``on_done``), the running
    scripts are killed and the queued ones never start.
    """
    if jobs < 1:
        raise NetvizValueError(f"`jobs` must be >= 1, got {jobs}")
    if fmt not in FORMATS:
        raise NetvizValueError(f"`fmt` must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if timeout <= 0:
        raise NetvizValueError(f"`timeout` must be positive (seconds), got {timeout}")
    if dpi is not None and dpi <= 0:
        raise NetvizValueError(f"`dpi` must be positive, got {dpi}")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results: dict[int, FigureResult] = {}
    processes = _Processes()
    run_one = functools.partial(
        run_script, out=out, fmt=fmt, fast=fast, timeout=timeout, dpi=dpi, _processes=processes
    )
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = {pool.submit(run_one, s): i for i, s in enumerate(scripts)}
        for done, fut in enumerate(as_completed(futures), start=1):
            res = fut.result()
            results[futures[fut]] = res
            if on_done is not None:
                on_done(res, done, len(scripts))
    except BaseException:
        processes.kill_all()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [results[i] for i in range(len(scripts))]
