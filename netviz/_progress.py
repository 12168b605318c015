"""Progress bars for long operations (gallery build, report building, multi-batch diagnose).

A bar is drawn with tqdm (an optional dependency) only when it can help: tqdm
is installed, the stream is a terminal, and ``TQDM_DISABLE`` is not set to a
true value. Otherwise :func:`progress` returns a bar that draws nothing, so
callers never branch on it.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

__all__ = ["Progress", "bar_enabled", "progress"]

_FALSE = ("", "0", "false", "no", "off")


def bar_enabled(file: IO[str] | None = None, enabled: bool | None = None) -> bool:
    """Whether a bar would be drawn on ``file`` (default ``sys.stderr``).

    ``enabled=False`` never draws; ``True`` or ``None`` draw only on a terminal,
    with tqdm installed and ``TQDM_DISABLE`` unset (or ``0``/``false``).

    >>> import io
    >>> bar_enabled(io.StringIO())  # not a terminal
    False
    """
    if enabled is False:
        return False
    if os.environ.get("TQDM_DISABLE", "").strip().lower() not in _FALSE:
        return False
    file = sys.stderr if file is None else file
    try:
        if not file.isatty():
            return False
    except (AttributeError, ValueError):  # closed or not a real stream
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


class Progress:
    """A tqdm bar, or nothing; :meth:`write` prints a line without breaking the bar."""

    def __init__(self, bar: Any, file: IO[str] | None) -> None:
        self._bar = bar
        self._file = file

    @property
    def drawn(self) -> bool:
        """Whether a bar is being drawn."""
        return self._bar is not None

    def update(self, n: int = 1, note: str | None = None) -> None:
        """Advance by ``n``; ``note`` is shown beside the bar (what is being done)."""
        if self._bar is not None:
            if note is not None:
                self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(n)

    def note(self, text: str) -> None:
        """Show what is being done now, without advancing."""
        if self._bar is not None:
            self._bar.set_postfix_str(text)

    def write(self, line: str, file: IO[str] | None = None) -> None:
        """Print ``line`` (above the bar when one is drawn)."""
        target = file or sys.stdout
        if self._bar is not None:
            self._bar.write(line, file=target)
        else:
            print(line, file=target, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress(
    total: int, desc: str, *, file: IO[str] | None = None, enabled: bool | None = None
) -> Progress:
    """A :class:`Progress` of ``total`` units labelled ``desc`` (see :func:`bar_enabled`)."""
    if not bar_enabled(file, enabled):
        return Progress(None, file)
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, file=file or sys.stderr, leave=False, dynamic_ncols=True)
    return Progress(bar, file)
