"""Hooks for building the gallery with sphinx-gallery (named in ``docs/conf.py``).

Referenced by their qualified names (strings) so that Sphinx can pickle its
configuration: ``reset_modules = ("matplotlib", "netviz.gallery.sphinx_hooks.reset_style")``
and ``within_subsection_order = "netviz.gallery.sphinx_hooks.CatalogueOrder"``.
"""

from __future__ import annotations

import builtins
import os
from pathlib import Path

from netviz.gallery.catalog import SCRIPT_RE, id_sort_key

__all__ = ["CatalogueOrder", "reset_style"]


def _examples_dir(gallery_conf: dict) -> Path:
    dirs = gallery_conf.get("examples_dirs") or ["."]
    return Path(dirs if isinstance(dirs, str) else dirs[0])


class _ExampleFile(str):
    """The ``__file__`` this hook puts into :mod:`builtins`, with what it replaced."""

    previous: object


_ABSENT = object()


def reset_style(gallery_conf: dict, fname: str | None, when: str) -> None:
    """Before and after each example: netviz style and seeds, as a fresh process would have.

    sphinx-gallery never defines ``__file__`` for an example (its issues #166,
    #212), while ``python script.py`` and ``netviz gallery build`` do; scripts
    that locate a helper module beside them use it. So that they run the same
    way, ``__file__`` is provided through :mod:`builtins` while an example runs
    (the example's own globals are found first, so nothing else changes).
    Afterwards :mod:`builtins` is restored as it was: the attribute removed,
    or a value someone else had set put back. (sphinx-gallery calls the
    ``"after"`` hook also when an example raises: it catches the error.)
    """
    from netviz.gallery import setup

    setup()
    current = getattr(builtins, "__file__", _ABSENT)
    if isinstance(current, _ExampleFile):  # ours, from an example that just ran: undo it
        if current.previous is _ABSENT:
            del builtins.__file__
        else:
            builtins.__file__ = current.previous  # type: ignore[assignment]  # what was there
        current = current.previous
    if when == "before" and fname:
        path = _ExampleFile(_examples_dir(gallery_conf) / os.path.basename(fname))
        path.previous = current
        builtins.__file__ = path


class CatalogueOrder:
    """Sort key for sphinx-gallery: catalogue order (A1, A2, ..., A10, B1), not alphabetical.

    >>> sorted(["A10_x.py", "B1_y.py", "A2_z.py"], key=CatalogueOrder("gallery"))
    ['A2_z.py', 'A10_x.py', 'B1_y.py']
    """

    def __init__(self, src_dir: str):
        self.src_dir = src_dir

    def __call__(self, filename: str) -> tuple:
        name = os.path.basename(filename)
        m = SCRIPT_RE.match(name)
        if m is None:
            return ("~", 0, name)  # anything else last, alphabetically
        letter, number = id_sort_key(m.group("id"))
        return (letter, number, name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"
