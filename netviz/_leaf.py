"""Leaf helpers shared by several layers of netviz; this module imports nothing of netviz.

:func:`first_tensor` and :func:`call_keys` are used by capture (probes,
``capture_activations``, attention) and by the diagnosis passes. Keeping them
here keeps the import graph of the package free of cycles
(``tests/test_import_graph.py``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch

__all__ = ["call_keys", "first_tensor", "lazy_names"]


def first_tensor(output: Any) -> torch.Tensor | None:
    """The first tensor of ``output`` in depth-first order (tuples, lists, dicts, namedtuples)."""
    if isinstance(output, torch.Tensor):
        return output
    items: Iterable[Any]
    if isinstance(output, Mapping):
        items = output.values()
    elif isinstance(output, (tuple, list)):
        items = output
    else:
        return None
    for item in items:
        found = first_tensor(item)
        if found is not None:
            return found
    return None


def call_keys(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """``[(name, value), ...]`` in call order -> ``{key: value}``.

    A name that occurs once keeps its key; a name that occurs ``n > 1`` times
    becomes ``name#0`` ... ``name#{n-1}``.

    Examples
    --------
    >>> call_keys([("a", 1), ("b", 2), ("a", 3)])
    {'a#0': 1, 'b': 2, 'a#1': 3}
    """
    counts: dict[str, int] = {}
    for name, _ in pairs:
        counts[name] = counts.get(name, 0) + 1
    seen: dict[str, int] = {}
    out: dict[str, Any] = {}
    for name, value in pairs:
        if counts[name] == 1:
            out[name] = value
        else:
            i = seen.get(name, 0)
            seen[name] = i + 1
            out[f"{name}#{i}"] = value
    return out


def lazy_names(
    package: str, table: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a package whose public names ``table`` maps to
    the modules that define them, each imported on first use (PEP 562).

    Importing one module of such a package runs none of the others.
    """

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
