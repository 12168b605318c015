"""Warning classes of netviz (a leaf module: it imports nothing of netviz).

Filter them by category, e.g.
``warnings.filterwarnings("ignore", category=netviz.NothingRecordedWarning)``.
"""

from __future__ import annotations

__all__ = ["NetvizWarning", "NothingRecordedWarning"]


class NetvizWarning(UserWarning):
    """Base class of the warnings netviz gives."""


class NothingRecordedWarning(NetvizWarning):
    """A probe or module that should have produced records produced none.

    Given once per monitor and cause, after the first recorded training step:
    a probe that finds nothing to record on the model, hooks bypassed by a
    model compiled before :func:`netviz.watch`, or training forwards that
    were never closed into steps.
    """
