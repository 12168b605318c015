"""Every check of a diagnosis, as data: :data:`CHECK_SPECS`.

Each :class:`CheckSpec` says, in one place, what the check looks for, the
kinds of :class:`~netviz.analysis.findings.Finding` it reports (and their
headline in the text report), the probes whose records it reads and whether
it runs on each recorded step or over a whole training run.
:data:`~netviz.analysis.findings.KINDS` and
:data:`~netviz.analysis.findings.CHECKS` are derived from this table, and
``diagnose(model, ...)`` records exactly the probes of the per-step checks
(:func:`probes_for`). Adding a check means adding its spec here and its
implementation in :mod:`netviz.analysis.analyze`
(``tests/analysis/test_specs.py`` fails until both exist).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from netviz.errors import NetvizValueError

__all__ = ["CHECK_SPECS", "SCOPES", "CheckSpec", "probes_for"]

#: Where a check runs: on each recorded step (also on the passes of
#: ``diagnose(model, ...)``), or over the records of a whole training run.
SCOPES: tuple[str, ...] = ("step", "training")

_GRADIENTS = ("grad_stats", "grad_norm")
_VANISH = ("vanishing_gradients", "vanishing gradients")
_EXPLODE = ("exploding_gradients", "exploding gradients")


@dataclass(frozen=True)
class CheckSpec:
    """One check of a diagnosis.

    Attributes
    ----------
    name
        The check's name (``Report.check(name)``).
    description
        What it looks for, as listed in the text report.
    kinds
        ``(kind, headline)`` of every kind of finding it reports.
    probes
        Names of the probes whose records it reads (any one of them is enough).
    scope
        ``"step"`` (each recorded step or batch) or ``"training"`` (a training run).
    """

    name: str
    description: str
    kinds: tuple[tuple[str, str], ...]
    probes: tuple[str, ...]
    scope: Literal["step", "training"]


#: The checks, in report order.
CHECK_SPECS: tuple[CheckSpec, ...] = (
    CheckSpec(
        "nonfinite",
        "non-finite values (NaN/Inf) in outputs and gradients",
        (("nonfinite", "non-finite values (NaN/Inf)"),),
        ("activation_stats", *_GRADIENTS),
        "step",
    ),
    CheckSpec(
        "flow",
        "vanishing/exploding gradients through depth",
        (_VANISH, _EXPLODE),
        _GRADIENTS,
        "step",
    ),
    CheckSpec(
        "timesteps",
        "vanishing/exploding gradients through time",
        (_VANISH, _EXPLODE),
        ("timestep_grad",),
        "step",
    ),
    CheckSpec(
        "dead_units",
        "dead units (ReLU family)",
        (("dead_units", "dead units"),),
        ("unit_activity",),
        "step",
    ),
    CheckSpec(
        "saturation",
        "saturated units (sigmoid/tanh family)",
        (("saturation", "saturated units"),),
        ("unit_activity",),
        "step",
    ),
    CheckSpec(
        "update_ratio",
        "update/weight ratio per layer",
        (("update_ratio", "update/weight ratio"),),
        ("weight_stats",),
        "training",
    ),
    CheckSpec(
        "gradient_trend",
        "gradient norm trend per layer over training",
        (("gradient_trend", "gradient trend over training"),),
        _GRADIENTS,
        "training",
    ),
    CheckSpec(
        "gradient_spike",
        "gradient spike before non-finite values",
        (("gradient_spike", "gradient spike before non-finite values"),),
        _GRADIENTS,
        "training",
    ),
    CheckSpec(
        "eval_drift",
        "train vs eval activation drift",
        (("eval_drift", "train vs eval activation drift"),),
        ("activation_stats",),
        "training",
    ),
)


def probes_for(scopes: Iterable[str] = SCOPES) -> tuple[str, ...]:
    """Names of the probes the checks of ``scopes`` read, in order of first mention.

    Examples
    --------
    >>> probes_for(["step"])
    ('activation_stats', 'grad_stats', 'grad_norm', 'timestep_grad', 'unit_activity')
    """
    wanted = tuple(scopes)
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        raise NetvizValueError(f"unknown check scope(s) {unknown}; scopes are {list(SCOPES)}")
    names = (p for spec in CHECK_SPECS if spec.scope in wanted for p in spec.probes)
    return tuple(dict.fromkeys(names))
