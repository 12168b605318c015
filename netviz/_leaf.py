"""Leaf helpers shared by several layers of netviz; this module imports nothing of netviz.

:func:`first_tensor` and :func:`call_keys` are used by capture (probes,
``capture_activations``, attention) and by the diagnosis passes. Keeping them
here keeps the import graph of the package free of cycles
(``tests/test_import_graph.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

__all__ = ["call_keys", "first_tensor"]


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
