"""Argument checking shared by the layer formulas.

Every public formula accepts either plain ints (one spatial dimension) or
tuples with one entry per spatial dimension, and answers in the same form.
The helpers here turn the arguments into tuples of equal length, check
their types and ranges, and turn the answer back into the caller's form.
Messages always name the offending parameter and say what is accepted.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TypeGuard

from netviz.errors import LayerConfigError, NetvizTypeError

__all__ = ["as_int", "broadcast", "check_min", "unbroadcast"]


def as_int(value: object, name: str) -> int:
    """Return ``value`` as an ``int`` or raise ``TypeError`` naming ``name``.

    ``bool`` is refused on purpose (``True`` is an ``int`` in Python, but a
    kernel size of ``True`` is always a bug); NumPy integers are accepted.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise NetvizTypeError(
            f"`{name}` must be an int or a tuple of ints (one per spatial dimension), "
            f"got {value!r} of type {type(value).__name__}"
        )
    return int(value)


def _is_seq(value: object) -> TypeGuard[Sequence]:
    return isinstance(value, Sequence) and not isinstance(value, str)


def broadcast(**params: object) -> tuple[int, bool, dict[str, tuple[int, ...]]]:
    """Broadcast int-or-tuple parameters to tuples of one common length.

    Returns ``(ndim, was_tuple, values)``, where ``was_tuple`` is true when any
    parameter was given as a tuple (the answer is then a tuple too).
    Parameters whose value is ``None`` are passed through as ``None``.
    """
    lengths = {name: len(v) for name, v in params.items() if _is_seq(v)}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"`{n}` has {k}" for n, k in lengths.items())
        raise LayerConfigError(
            f"tuple parameters must have one entry per spatial dimension and agree in length: {desc}"
        )
    ndim = next(iter(lengths.values()), 1)
    if lengths and ndim == 0:
        raise LayerConfigError(
            f"`{next(iter(lengths))}` is an empty tuple; give at least one dimension"
        )
    out: dict[str, tuple[int, ...]] = {}
    for name, value in params.items():
        if value is None:
            out[name] = None  # type: ignore[assignment]
        elif _is_seq(value):
            out[name] = tuple(as_int(v, name) for v in value)
        else:
            out[name] = (as_int(value, name),) * ndim
    return ndim, bool(lengths), out


def check_min(values: tuple[int, ...], name: str, minimum: int, what: str) -> None:
    """Raise ``ValueError`` naming ``name`` if any entry is below ``minimum``."""
    for v in values:
        if v < minimum:
            raise LayerConfigError(f"`{name}` must be {what}, got {v}")


def check_window(v: dict[str, tuple[int, ...]], *, padding: bool = True) -> None:
    """The checks every sliding window shares: positive size, kernel, stride
    and dilation (when given), and non-negative padding unless ``padding=False``."""
    check_min(v["size"], "size", 1, "at least 1")
    check_min(v["kernel_size"], "kernel_size", 1, "positive")
    check_min(v["stride"], "stride", 1, "positive")
    if "dilation" in v:
        check_min(v["dilation"], "dilation", 1, "positive")
    if padding:
        check_min(v["padding"], "padding", 0, "non-negative")


def unbroadcast(values: tuple, was_tuple: bool):
    """Answer in the caller's form: a tuple if any input was a tuple, else the scalar."""
    return tuple(values) if was_tuple else values[0]
