"""What a diagnosis finds: :class:`Finding`, :class:`Report` and :class:`Thresholds`."""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field, fields
from typing import Any

import pandas as pd

__all__ = ["KINDS", "SEVERITIES", "Finding", "Report", "Thresholds"]

#: Severity levels, mildest first.
SEVERITIES: tuple[str, ...] = ("info", "warning", "error")

#: Kinds of finding and their headline in the text report.
KINDS: dict[str, str] = {
    "nonfinite": "non-finite values (NaN/Inf)",
    "vanishing_gradients": "vanishing gradients",
    "exploding_gradients": "exploding gradients",
    "dead_units": "dead units",
    "saturation": "saturated units",
    "update_ratio": "update/weight ratio",
}


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
        is a warning.

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

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float))
                or not math.isfinite(v)
                or v <= 0
            ):
                raise ValueError(f"Thresholds.{f.name} must be a positive finite number, got {v!r}")
        if not self.vanishing_ratio < 1 < self.exploding_ratio:
            raise ValueError(
                "Thresholds need vanishing_ratio < 1 < exploding_ratio, got "
                f"{self.vanishing_ratio!r} and {self.exploding_ratio!r}"
            )
        for name in ("dead_frac", "saturated_frac"):
            if getattr(self, name) > 1:
                raise ValueError(
                    f"Thresholds.{name} is a fraction in (0, 1], got {getattr(self, name)!r}"
                )
        if not self.update_low < self.update_high:
            raise ValueError("Thresholds need update_low < update_high")


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
            raise ValueError(f"Finding.kind must be one of {list(KINDS)}, got {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(
                f"Finding.severity must be one of {list(SEVERITIES)}, got {self.severity!r}"
            )


@dataclass
class Report:
    """The result of :func:`netviz.diagnose`: findings plus the records they came from.

    Attributes
    ----------
    findings
        Most severe first, then in network order.
    records
        The record table the diagnosis read (see :func:`netviz.watch`).
    thresholds
        The :class:`Thresholds` used.
    summary
        What was run: ``model``, ``steps``, ``loss``, ``mode``, ``layers``.
    """

    findings: list[Finding]
    records: pd.DataFrame
    thresholds: Thresholds = field(default_factory=Thresholds)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing of severity warning or error was found."""
        return not any(f.severity != "info" for f in self.findings)

    def kinds(self) -> list[str]:
        """The distinct kinds found, in report order."""
        return list(dict.fromkeys(f.kind for f in self.findings))

    def by_kind(self, kind: str) -> list[Finding]:
        """The findings of one kind."""
        if kind not in KINDS:
            raise ValueError(f"`kind` must be one of {list(KINDS)}, got {kind!r}")
        return [f for f in self.findings if f.kind == kind]

    def __len__(self) -> int:
        return len(self.findings)

    def __iter__(self):
        return iter(self.findings)

    def to_pandas(self) -> pd.DataFrame:
        """One row per finding: ``kind``, ``module``, ``severity``, ``message``, ``evidence`` (dict)."""
        return pd.DataFrame(
            {
                "kind": [f.kind for f in self.findings],
                "module": [f.module for f in self.findings],
                "severity": [f.severity for f in self.findings],
                "message": [f.message for f in self.findings],
                "evidence": [dict(f.evidence) for f in self.findings],
            },
            columns=["kind", "module", "severity", "message", "evidence"],
        )

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """:func:`netviz.plot.gradient_flow` of the report's records; returns the Axes."""
        from netviz.plot.gradients import gradient_flow

        return gradient_flow(self.records, ax=ax, **kwargs)

    def __repr__(self) -> str:
        n = len(self.findings)
        counts = [
            f"{k} {sev}" + ("s" if k > 1 else "")
            for sev in ("error", "warning", "info")
            if (k := sum(f.severity == sev for f in self.findings))
        ]
        steps = self.summary.get("steps", "?")
        unit = "recorded step" if self.summary.get("source") == "records" else "batch"
        unit = unit if steps == 1 else {"recorded step": "recorded steps", "batch": "batches"}[unit]
        detail = f" ({', '.join(counts)})" if counts else ""
        return f"<netviz.Report: {n} finding{'' if n == 1 else 's'}{detail}, {steps} {unit}>"

    def __str__(self) -> str:
        s = self.summary
        head = f"netviz diagnosis of {s.get('model', 'records')}"
        bits = []
        if "steps" in s:
            unit = "recorded step" if s.get("source") == "records" else "batch"
            plural = {"recorded step": "recorded steps", "batch": "batches"}
            bits.append(f"{s['steps']} {unit if s['steps'] == 1 else plural[unit]}")
        if s.get("loss"):
            bits.append(f"loss: {s['loss']}")
        if s.get("mode"):
            bits.append(f"{s['mode']} mode")
        lines = [head + (f" ({', '.join(bits)})" if bits else ""), ""]
        if not self.findings:
            text = "No problems found. " + s.get("healthy", "Every value is within the thresholds.")
            lines.extend(textwrap.wrap(text, width=91))
            return "\n".join(lines)
        counts = []
        for sev in ("error", "warning", "info"):
            n = sum(f.severity == sev for f in self.findings)
            if n:
                counts.append(f"{n} {sev}" + ("s" if n > 1 else ""))
        total = len(self.findings)
        lines.append(f"{total} finding{'s' if total > 1 else ''}: {', '.join(counts)}.")
        for i, f in enumerate(self.findings, 1):
            lines.append("")
            lines.append(f"{i}. [{f.severity.upper()}] {KINDS[f.kind]} at `{f.module}`")
            lines.extend(
                textwrap.wrap(f.message, width=88, initial_indent="   ", subsequent_indent="   ")
            )
        return "\n".join(lines)
