"""What a diagnosis finds: :class:`Finding`, :class:`Check` and :class:`Thresholds`.

:class:`~netviz.diagnosis.report.Report` (the result of :func:`netviz.diagnose`)
lives in :mod:`netviz.diagnosis.report`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from netviz.analysis.specs import CHECK_SPECS
from netviz.errors import NetvizValueError

__all__ = ["CHECKS", "KINDS", "SEVERITIES", "STATUSES", "Check", "Finding", "Thresholds"]

#: Severity levels, mildest first.
SEVERITIES: tuple[str, ...] = ("info", "warning", "error")


def _kinds() -> dict[str, str]:
    kinds: dict[str, str] = {}
    for spec in CHECK_SPECS:
        for kind, headline in spec.kinds:
            if kinds.setdefault(kind, headline) != headline:
                raise AssertionError(f"kind {kind!r} has two headlines in CHECK_SPECS")
    return kinds


#: Kinds of finding and their headline in the text report, from
#: :data:`~netviz.analysis.specs.CHECK_SPECS` (``flow`` and ``timesteps``
#: both report vanishing/exploding gradients).
KINDS: dict[str, str] = _kinds()

#: The checks a diagnosis runs, in report order, and their description
#: (from :data:`~netviz.analysis.specs.CHECK_SPECS`).
CHECKS: dict[str, str] = {spec.name: spec.description for spec in CHECK_SPECS}

#: Status of a :class:`Check`.
STATUSES: tuple[str, ...] = ("found", "clear", "not_run")


@dataclass(frozen=True)
class Thresholds:
    """When a statistic becomes a finding. Every field is a documented default.

    Attributes
    ----------
    vanishing_ratio
        Gradient RMS of the input-side layer divided by that of the output-side
        layer (through depth), or :math:`\\lVert \\partial L/\\partial h_0\\rVert /
        \\lVert \\partial L/\\partial h_{T-1}\\rVert` (through time): a warning below
        this value (1e-3, three orders of magnitude), an error below its square.
    exploding_ratio
        The same ratio above this value (1e3) is a warning, above its square an error.
    dead_frac
        Share of a ReLU-family layer's units that are dead (zero for at least
        ``1 - dead_tol`` of the inputs of a batch, see
        :class:`~netviz.capture.probes.units.UnitActivity`): a warning from 0.5, an
        error when all units are dead.
    saturated_frac
        Share of a sigmoid/tanh layer's outputs within 0.01 of a bound: a
        warning from 0.5, an error from 0.95.
    update_low, update_high
        The median ``update_ratio`` (``weight_stats``) of a layer over training
        outside ``[1e-5, 1e-1]`` (two decades either side of the usual 1e-3)
        is a warning; so is the median over the last quarter of the steps
        (a ratio that drifted out during training).
    trend_orders
        A layer's gradient magnitude (median over the last quarter of the
        recorded steps against the first quarter) that grew by this many orders
        of magnitude (2), or fell by this many orders both on its own and
        against the output-side layer (one layer decaying while the output
        side does not), is a warning; twice as many orders is an error. All layers decaying
        together (the loss converging) is not a finding.
    trend_min_steps
        Recorded steps needed for the trend and spike checks (5).
    spike_factor
        A layer's gradient magnitude at one step this many times (10) above
        its median over the previous ``spike_window`` recorded steps is a
        spike; a spike within ``spike_horizon`` recorded steps before the
        first non-finite values is an error.
    spike_window, spike_horizon
        See ``spike_factor`` (5 and 10 recorded steps).
    drift_shift
        Eval-phase activation mean of a module this many train standard
        deviations (1) from the train-phase mean, at the same step, is a
        warning.
    drift_scale
        Eval-phase activation std this many times (3) larger or smaller than
        the train-phase std is a warning.

    Examples
    --------
    >>> Thresholds(vanishing_ratio=1e-2).vanishing_ratio
    0.01
    """

    vanishing_ratio: float = 1e-3
    exploding_ratio: float = 1e3
    dead_frac: float = 0.5
    saturated_frac: float = 0.5
    update_low: float = 1e-5
    update_high: float = 1e-1
    trend_orders: float = 2.0
    trend_min_steps: int = 5
    spike_factor: float = 10.0
    spike_window: int = 5
    spike_horizon: int = 10
    drift_shift: float = 1.0
    drift_scale: float = 3.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float))
                or not math.isfinite(v)
                or v <= 0
            ):
                raise NetvizValueError(
                    f"Thresholds.{f.name} must be a positive finite number, got {v!r}"
                )
        if not self.vanishing_ratio < 1 < self.exploding_ratio:
            raise NetvizValueError(
                "Thresholds need vanishing_ratio < 1 < exploding_ratio, got "
                f"{self.vanishing_ratio!r} and {self.exploding_ratio!r}"
            )
        for name in ("dead_frac", "saturated_frac"):
            if getattr(self, name) > 1:
                raise NetvizValueError(
                    f"Thresholds.{name} is a fraction in (0, 1], got {getattr(self, name)!r}"
                )
        if not self.update_low < self.update_high:
            raise NetvizValueError("Thresholds need update_low < update_high")
        for name in ("trend_min_steps", "spike_window", "spike_horizon"):
            if not isinstance(getattr(self, name), int):
                raise NetvizValueError(
                    f"Thresholds.{name} is a number of recorded steps (int), "
                    f"got {getattr(self, name)!r}"
                )
        for name in ("spike_factor", "drift_scale"):
            if not getattr(self, name) > 1:
                raise NetvizValueError(
                    f"Thresholds.{name} must be > 1, got {getattr(self, name)!r}"
                )


@dataclass(frozen=True)
class Finding:
    """One problem found in a network.

    Attributes
    ----------
    kind
        One of :data:`KINDS`.
    module
        Qualified name of the module where it shows (for gradient flow: the
        input-side end of the affected range; ``"<inputs>"`` when the batch
        itself holds NaN/Inf).
    severity
        ``"info"``, ``"warning"`` or ``"error"``.
    message
        Plain language: what, where, the number that shows it, the usual remedy.
    evidence
        The numbers behind it (ratios, fractions, steps).
    """

    kind: str
    module: str
    severity: str
    message: str
    evidence: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise NetvizValueError(f"Finding.kind must be one of {list(KINDS)}, got {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise NetvizValueError(
                f"Finding.severity must be one of {list(SEVERITIES)}, got {self.severity!r}"
            )


@dataclass(frozen=True)
class Check:
    """What one check of a diagnosis did.

    Attributes
    ----------
    name
        One of :data:`CHECKS`.
    status
        ``"found"`` (it produced findings), ``"clear"`` (it ran and found
        nothing) or ``"not_run"``.
    detail
        For ``found``/``clear``: what it looked at (modules, steps); for
        ``not_run``: why not (no records of that probe, no module of that
        family, no recorded steps).
    modules
        How many modules (or module calls) it looked at; 0 when not run.
    steps
        How many recorded steps (or batches) it looked at; 0 when not run.
    """

    name: str
    status: str
    detail: str
    modules: int = 0
    steps: int = 0

    def __post_init__(self) -> None:
        if self.name not in CHECKS:
            raise NetvizValueError(f"Check.name must be one of {list(CHECKS)}, got {self.name!r}")
        if self.status not in STATUSES:
            raise NetvizValueError(
                f"Check.status must be one of {list(STATUSES)}, got {self.status!r}"
            )

    @property
    def ran(self) -> bool:
        """True when the check ran (found something or nothing)."""
        return self.status != "not_run"
