"""Errors and warnings of netviz (a leaf module: it imports nothing of netviz).

Every error netviz raises on purpose derives from :class:`NetvizError`, so
``except netviz.NetvizError`` catches "a netviz error". Each subclass also
derives from the builtin exception that code written before this hierarchy
caught (``ValueError``, ``TypeError``, ``RuntimeError``), so nothing breaks::

    NetvizError
    +-- NetvizValueError (ValueError)      an argument's value is not accepted
    |   +-- RecordError                    a records table or file is malformed
    |   +-- LayerConfigError               a layer configuration PyTorch refuses
    +-- NetvizTypeError (TypeError)        an argument of a type not accepted
    +-- NetvizRuntimeError (RuntimeError)  a call in the wrong state
        +-- TorchCompatError               a private PyTorch API moved

Warnings derive from :class:`NetvizWarning`; filter them by category, e.g.
``warnings.filterwarnings("ignore", category=netviz.NothingRecordedWarning)``.
"""

from __future__ import annotations

__all__ = [
    "LayerConfigError",
    "NetvizError",
    "NetvizRuntimeError",
    "NetvizTypeError",
    "NetvizValueError",
    "NetvizWarning",
    "NothingRecordedWarning",
    "RecordError",
    "TorchCompatError",
]


class NetvizError(Exception):
    """Root of the errors netviz raises on purpose."""


class NetvizValueError(NetvizError, ValueError):
    """An argument's value is not accepted (the message says which are)."""


class RecordError(NetvizValueError):
    """A records table or file is malformed or misses required columns."""


class LayerConfigError(NetvizValueError):
    """A layer configuration that PyTorch itself would refuse (layer math)."""


class NetvizTypeError(NetvizError, TypeError):
    """An argument of a type netviz does not accept (a model kind, a table...)."""


class NetvizRuntimeError(NetvizError, RuntimeError):
    """A call made in a state where it cannot work (a detached monitor, ...)."""


class TorchCompatError(NetvizRuntimeError):
    """A private PyTorch API netviz relies on has moved in this torch release."""


class NetvizWarning(UserWarning):
    """Base class of the warnings netviz gives."""


class NothingRecordedWarning(NetvizWarning):
    """A probe or module that should have produced records produced none.

    Given once per monitor and cause, after the first recorded training step:
    a probe that finds nothing to record on the model, hooks bypassed by a
    model compiled before :func:`netviz.watch`, or training forwards that
    were never closed into steps.
    """
