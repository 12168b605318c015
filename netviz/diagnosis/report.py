"""The result of :func:`netviz.diagnose`: :class:`Report` (text, notebook display, plot)."""

from __future__ import annotations

import html
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from netviz.analysis.findings import CHECKS, KINDS, Check, Finding, Thresholds
from netviz.errors import NetvizValueError

__all__ = ["Report"]

_STATUS = {"found": "found", "clear": "clear", "not_run": "not run"}
_WIDTH = 91


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word}es" if word.endswith("ch") else f"{n} {word}s"


@dataclass
class Report:
    """The result of :func:`netviz.diagnose`: findings, the checks behind them, the records.

    Attributes
    ----------
    findings
        Most severe first, then by kind; non-finite findings by the step they
        appeared at, then in execution order (the origin first); others in
        network order.
    records
        The record table the diagnosis read (see :func:`netviz.watch`).
    thresholds
        The :class:`Thresholds` used.
    summary
        What was run: ``model``, ``source`` (``"model"`` or ``"records"``),
        ``steps``, ``layers`` (how many count for depth), ``depth_layers``
        (their names), ``statistic`` (the gradient statistic quoted), and for
        a model ``loss`` and ``mode``.
    checks
        One :class:`Check` per entry of :data:`~netviz.analysis.findings.CHECKS`:
        found, clear (on which modules, how many steps) or not run (why).
    """

    findings: list[Finding]
    records: pd.DataFrame
    thresholds: Thresholds = field(default_factory=Thresholds)
    summary: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

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
            raise NetvizValueError(f"`kind` must be one of {list(KINDS)}, got {kind!r}")
        return [f for f in self.findings if f.kind == kind]

    def check(self, name: str) -> Check:
        """The :class:`Check` called ``name`` (one of :data:`~netviz.analysis.findings.CHECKS`)."""
        for c in self.checks:
            if c.name == name:
                return c
        raise NetvizValueError(
            f"`name` must be one of {[c.name for c in self.checks]}, got {name!r}"
        )

    def __len__(self) -> int:
        return len(self.findings)

    def __iter__(self) -> Iterator[Finding]:
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

    def gradient_records(self) -> pd.DataFrame:
        """The gradient statistic the report quotes, per step and depth layer, as records.

        ``grad_stats`` rows with ``stat == "rms"`` (:math:`\\sqrt{\\mathrm{mean}^2 +
        \\mathrm{std}^2}`), or the ``grad_norm`` ``l2`` rows when only those were
        recorded; restricted to the layers that count for depth.
        """
        from netviz.analysis.checks import GRADIENT_PROBES, gradient_magnitudes

        layers = set(self.summary.get("depth_layers") or self.records.module)
        rows = self.records[
            self.records.module.isin(layers) & self.records.probe.isin(GRADIENT_PROBES)
        ]
        mags, stat = gradient_magnitudes(rows)
        base = rows.drop_duplicates(["step", "module"]).set_index(["step", "module"])
        probe, name = ("grad_stats", "rms") if stat == "gradient RMS" else ("grad_norm", "l2")
        out = base.loc[mags.index].reset_index()
        out["probe"], out["stat"], out["value"] = probe, name, mags.to_numpy()
        return out[list(self.records.columns)]

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """:func:`netviz.plot.gradient_flow` of the statistic the report quotes; returns the Axes.

        The y axis says which statistic it is (gradient RMS from ``grad_stats``,
        else the ``grad_norm`` L2 norm), over the layers that count for depth.
        """
        from netviz.plot.gradients import gradient_flow

        grads = self.gradient_records()
        if not kwargs.get("stat") and not kwargs.get("probe") and len(grads):
            stat = grads.stat.iloc[0]
            ax = gradient_flow(grads, ax=ax, stat=stat, probe=grads.probe.iloc[0], **kwargs)
            label = "gradient RMS" if stat == "rms" else "gradient L2 norm"
            ax.set_ylabel(label)
            return ax
        return gradient_flow(self.records, ax=ax, **kwargs)

    # ------------------------------------------------------------ text
    def _head(self) -> str:
        s = self.summary
        bits = []
        if "steps" in s:
            unit = "recorded step" if s.get("source") == "records" else "batch"
            bits.append(_plural(int(s["steps"]), unit))
        if s.get("loss"):
            bits.append(f"loss: {s['loss']}")
        if s.get("mode"):
            bits.append(f"{s['mode']} mode")
        head = f"netviz diagnosis of {s.get('model', 'records')}"
        return head + (f" ({', '.join(bits)})" if bits else "")

    def _closing(self) -> str:
        """What the checks that ran established; claims nothing of the others."""
        ran = [c for c in self.checks if c.ran]
        if self.findings:
            return ""
        if not ran:
            return "No check could run on these records (see why below): nothing was verified."
        said = []
        by = {c.name: c for c in ran}
        if "flow" in by and self.summary.get("healthy_flow"):
            said.append(self.summary["healthy_flow"])
        if "nonfinite" in by:
            said.append("every recorded output and gradient is finite")
        for name, what in (("dead_units", "dead"), ("saturation", "saturated")):
            if name in by:
                said.append(f"no {what} units in {_plural(by[name].modules, 'activation')}")
        text = f"No problems found by the {len(ran)} checks that ran"
        return text + (": " + "; ".join(said) + "." if said else ".")

    def _check_lines(self) -> list[str]:
        ran = sum(c.ran for c in self.checks)
        lines = [f"Checks ({ran} ran, {len(self.checks) - ran} not run):"]
        groups: list[tuple[str, list[str], str]] = []  # consecutive not-run, same reason: one line
        for c in self.checks:
            last = groups[-1] if groups else None
            if last and c.status == "not_run" and last[0] == "not_run" and last[2] == c.detail:
                last[1].append(CHECKS[c.name])
            else:
                groups.append((c.status, [CHECKS[c.name]], c.detail))
        for status, names, detail in groups:
            text = f"{_STATUS[status]:<8} {'; '.join(names)}: {detail}"
            lines.extend(
                textwrap.wrap(text, width=_WIDTH, initial_indent="  ", subsequent_indent=" " * 11)
            )
        return lines

    def __repr__(self) -> str:
        n = len(self.findings)
        counts = [
            f"{k} {sev}" + ("s" if k > 1 else "")
            for sev in ("error", "warning", "info")
            if (k := sum(f.severity == sev for f in self.findings))
        ]
        steps = self.summary.get("steps", "?")
        unit = "recorded step" if self.summary.get("source") == "records" else "batch"
        detail = f" ({', '.join(counts)})" if counts else ""
        what = _plural(steps, unit) if isinstance(steps, int) else f"{steps} {unit}s"
        return f"<netviz.Report: {n} finding{'' if n == 1 else 's'}{detail}, {what}>"

    def __str__(self) -> str:
        lines = [self._head(), ""]
        if not self.findings:
            lines.extend(textwrap.wrap(self._closing(), width=_WIDTH))
        else:
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
                    textwrap.wrap(
                        f.message, width=88, initial_indent="   ", subsequent_indent="   "
                    )
                )
        if self.checks:
            lines.append("")
            lines.extend(self._check_lines())
        return "\n".join(lines)

    # ------------------------------------------------------------ notebooks
    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self) if cycle else str(self))

    def _repr_html_(self) -> str:
        esc = html.escape
        colour = {"error": "#b00020", "warning": "#a15c00", "info": "#555"}
        parts = [f"<div class='netviz-report'><p><b>{esc(self._head())}</b></p>"]
        if self.findings:
            parts.append("<ol>")
            for f in self.findings:
                parts.append(
                    f"<li><span style='color:{colour[f.severity]};font-weight:bold'>"
                    f"[{esc(f.severity.upper())}]</span> {esc(KINDS[f.kind])} at "
                    f"<code>{esc(f.module)}</code><br>{esc(f.message)}</li>"
                )
            parts.append("</ol>")
        else:
            parts.append(f"<p>{esc(self._closing())}</p>")
        if self.checks:
            parts.append(
                "<table><thead><tr><th style='text-align:left'>check</th>"
                "<th style='text-align:left'>status</th><th style='text-align:left'>on what / why"
                "</th></tr></thead><tbody>"
            )
            for c in self.checks:
                parts.append(
                    f"<tr><td>{esc(CHECKS[c.name])}</td><td style='white-space:nowrap'>{esc(_STATUS[c.status])}</td>"
                    f"<td>{esc(c.detail)}</td></tr>"
                )
            parts.append("</tbody></table>")
        parts.append("</div>")
        return "".join(parts)
