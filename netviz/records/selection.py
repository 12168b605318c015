"""Module selection on recorded names: the ``modules=`` of analysis and plot functions.

Records (and the ``{name: tensor}`` dicts of the capture functions) hold the
qualified names of modules, not the modules. :func:`select_names` matches
them with the rules of :func:`netviz.watch` (see
:mod:`netviz.capture.selection`): ``None`` selects every name, a glob or list
of globs selects the names any of them matches (``fnmatch``, case
sensitive), the root module ``""`` only by the pattern ``""``, and a
selection that matches nothing is an error naming close names. Module types
and ``(name, module)`` predicates need the model; on names they are refused
with a message saying how to turn them into names. Pure Python: no torch.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Sequence

from netviz.errors import NetvizTypeError, NetvizValueError

__all__ = ["select_names"]


def _describe(selector: object) -> str:
    text = repr(selector)
    return text if len(text) < 80 else text[:77] + "..."


def _patterns(modules: object) -> list[str]:
    if isinstance(modules, str):
        return [modules]
    if isinstance(modules, type) or (
        isinstance(modules, tuple) and modules and all(isinstance(t, type) for t in modules)
    ):
        raise NetvizTypeError(
            f"`modules` {_describe(modules)} selects by module type, which needs the model; "
            "recorded data holds module names only: pass a glob or list of globs, or the names "
            "of the model's modules of that type, e.g. "
            "[n for n, _ in netviz.capture.select_modules(model, nn.Linear)]"
        )
    if callable(modules):
        raise NetvizTypeError(
            f"`modules` predicate {_describe(modules)} takes (name, module), which needs the "
            "model; recorded data holds module names only: pass a glob or list of globs, or "
            "[n for n, m in model.named_modules() if predicate(n, m)]"
        )
    if isinstance(modules, Iterable):
        patterns = list(modules)
        if patterns and all(isinstance(p, str) for p in patterns):
            return patterns
    raise NetvizTypeError(
        "`modules` on recorded data must be None, a glob or a list of globs (str), "
        f"got {_describe(modules)}"
    )


def select_names(
    names: Iterable[str], modules: str | Iterable[str] | None = None, *, what: str = "data"
) -> list[str]:
    """The names of ``names`` that the selector ``modules`` selects, in the order of ``names``.

    Parameters
    ----------
    names
        The candidate module names (e.g. in network order); duplicates are dropped.
    modules
        ``None`` (all), a glob, or a list of globs, as for :func:`netviz.watch`.
    what
        Where the names come from, for the error message (``"the records"``).

    Raises
    ------
    NetvizTypeError
        ``modules`` is a module type, a predicate or not a str / list of str.
    NetvizValueError
        Nothing matches; the message lists close names.

    Examples
    --------
    >>> select_names(["0", "1", "2", "fc"], ["?", "fc"])
    ['0', '1', '2', 'fc']
    >>> select_names(["enc.0", "enc.1", "dec.0"], "enc.*")
    ['enc.0', 'enc.1']
    """
    candidates: Sequence[str] = list(dict.fromkeys(names))
    if modules is None:
        return list(candidates)
    patterns = _patterns(modules)
    chosen = [
        n for n in candidates if any(fnmatch.fnmatchcase(n, p) if n else p == "" for p in patterns)
    ]
    if not chosen:
        close: list[str] = []
        for p in patterns:
            close += difflib.get_close_matches(p, [n for n in candidates if n], n=5, cutoff=0.3)
        close = list(dict.fromkeys(close))[:5] or [n for n in candidates if n][:5]
        raise NetvizValueError(
            f"`modules` pattern(s) {patterns!r} match no module name in {what}; "
            f"close names: {', '.join(repr(c) for c in close) or '(none recorded)'}"
        )
    return chosen
