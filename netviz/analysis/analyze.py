"""Run every check on a record table and say which ran: :func:`analyze`.

Per-step checks (:mod:`netviz.analysis.checks`) run on each recorded step;
a step with non-finite values gets only the non-finite check (flow and unit
statistics of such a step mean nothing). The checks over training
(:mod:`netviz.analysis.training`) read the whole table. Every check ends as
a :class:`~netviz.analysis.findings.Check`: found, clear (on what) or not run (why).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from netviz.analysis.checks import (
    GRADIENT_PROBES,
    check_gradient_flow,
    check_nonfinite,
    check_timesteps,
    check_units,
    depth_layers,
    gradient_series,
    merge_steps,
    sort_findings,
)
from netviz.analysis.findings import CHECKS, Check, Finding, Thresholds
from netviz.analysis.order import module_order
from netviz.analysis.specs import CHECK_SPECS
from netviz.analysis.training import (
    check_eval_drift,
    check_gradient_spike,
    check_gradient_trend,
    check_update_ratio,
    name_list,
)
from netviz.errors import RecordError

__all__ = ["analyze", "empty_error"]

_MODEL_ONLY = "needs records of a training run: diagnose(records=...)"


def empty_error(what: str) -> RecordError:
    """The error for a table without rows (nothing was recorded)."""
    return RecordError(
        f"{what} has no records: nothing was recorded, so nothing can be diagnosed (an empty "
        "table is not an all-clear). Record at least one step: run forward and backward inside "
        "netviz.watch(model, ...) and close each step with optimizer.step() (watch(..., "
        "optimizer=opt)) or monitor.step()"
    )


def _steps(n: int, unit: str) -> str:
    return f"{n} {unit}{'' if n == 1 else 'es' if unit == 'batch' else 's'}"


def _in_order(names: Any, order: Sequence[str]) -> list[str]:
    """Distinct ``names`` in network order (never row order)."""
    rank = {m: i for i, m in enumerate(order)}
    return sorted(set(names), key=lambda m: (rank.get(m, len(rank)), m))


def _units_check(
    name: str,
    rows: pd.DataFrame,
    stat: str,
    n_steps: int,
    unit: str,
    source: str,
    found: bool,
    order: Sequence[str],
) -> Check:
    have = rows[(rows.stat == stat) & np.isfinite(rows.value)]
    if not len(have):
        family = "ReLU-family" if name == "dead_units" else "sigmoid/tanh-family"
        why = (
            f"no {family} activation (module or function call) ran in the forward"
            if source == "model"
            else f"no unit_activity records of {family} activations (watch(probes=[..., "
            '"unit_activity"]) records activation modules such as nn.ReLU; function calls '
            "such as F.relu only diagnose(model, batch) sees)"
        )
        return Check(name, "not_run", why)
    mods = _in_order(have.module, order)
    detail = f"{len(mods)} activation(s) ({name_list(mods)}) over {_steps(n_steps, unit)}"
    return Check(name, "found" if found else "clear", detail, len(mods), n_steps)


def analyze(
    records: pd.DataFrame,
    thresholds: Thresholds | None = None,
    *,
    layers: Sequence[str] | None = None,
    extra: dict[str, dict[str, float]] | None = None,
    source: str = "records",
) -> tuple[list[Finding], list[Check], dict[str, Any]]:
    """Findings, checks and facts (layers, steps) of a record table.

    ``source`` is ``"records"`` (a training run) or ``"model"`` (the passes of
    :func:`netviz.diagnose` itself): it decides the wording of the checks
    that did not run, and the model passes get no checks over training.

    Raises
    ------
    RecordError
        If ``records`` has no rows (a :class:`ValueError`).
    """
    th = thresholds or Thresholds()
    if not len(records):
        raise empty_error("the record table")
    order = module_order(records)
    chosen = list(layers) if layers is not None else depth_layers(records, order)
    chosen = [m for m in order if m in set(chosen)]
    unit = "batch" if source == "model" else "recorded step"
    skipped = set(records.step[records.skipped].unique())
    steps = sorted(int(s) for s in records.step.unique())
    per_step: list[tuple[int, list[Finding]]] = []
    flow_steps, nonfinite_steps, units_steps = 0, [], 0
    flow_layers: set[str] = set()
    for step, rows in records.groupby("step", sort=True):
        found = [] if step in skipped else check_nonfinite(rows, order)
        if found:
            nonfinite_steps.append(int(step))
        else:  # flow and unit statistics of a non-finite step mean nothing
            series = gradient_series(rows, order, chosen)
            if len(series) >= 2:
                flow_steps += 1
                flow_layers.update(m for m, _ in series)
            found += check_gradient_flow(series, th)
            found += check_timesteps(rows, th, extra)
            found += check_units(rows, th)
            units_steps += 1
        per_step.append((int(step), found))
    findings = merge_steps(per_step, len(steps))
    kinds = {f.kind for f in findings}
    checks: dict[str, Check] = {}

    # non-finite values
    judged = records[~records.step.isin(skipped)]
    nf_rows = judged[(judged.stat == "nonfinite_frac") | (judged.probe.isin(GRADIENT_PROBES))]
    if not len(nf_rows):
        checks["nonfinite"] = Check(
            "nonfinite",
            "not_run",
            "no activation_stats or gradient records"
            + (f" (and {len(skipped)} skipped steps are not judged)" if skipped else ""),
        )
    else:
        n = judged.step.nunique()
        detail = f"{nf_rows.module.nunique()} modules over {_steps(n, unit)}"
        if skipped:
            detail += f"; {len(skipped)} steps skipped by the GradScaler are not judged"
        checks["nonfinite"] = Check(
            "nonfinite",
            "found" if "nonfinite" in kinds else "clear",
            detail,
            nf_rows.module.nunique(),
            n,
        )

    # gradient flow through depth
    flow_kinds = ("vanishing_gradients", "exploding_gradients")
    flow_found = any(f.kind in flow_kinds and "through_time" not in f.evidence for f in findings)
    if flow_steps:
        detail = (
            f"{len(flow_layers)} layers, `{chosen[0]}` to `{chosen[-1]}`, over "
            f"{_steps(flow_steps, unit)}"
        )
        checks["flow"] = Check(
            "flow", "found" if flow_found else "clear", detail, len(flow_layers), flow_steps
        )
    elif not (records.probe.isin(GRADIENT_PROBES)).any():
        checks["flow"] = Check("flow", "not_run", "no gradient records (grad_stats or grad_norm)")
    elif len(chosen) < 2:
        checks["flow"] = Check(
            "flow", "not_run", f"fewer than two layers with gradient records ({len(chosen)})"
        )
    else:
        checks["flow"] = Check("flow", "not_run", "every step had non-finite values")

    # gradients through time
    tg = records[(records.probe == "timestep_grad") & ~records.step.isin(nonfinite_steps)]
    if len(tg):
        mods = _in_order(tg.module, order)
        time_found = any(f.kind in flow_kinds and "through_time" in f.evidence for f in findings)
        checks["timesteps"] = Check(
            "timesteps",
            "found" if time_found else "clear",
            f"{len(mods)} recurrent module(s) ({name_list(mods)}) over "
            f"{_steps(tg.step.nunique(), unit)}",
            len(mods),
            int(tg.step.nunique()),
        )
    else:
        checks["timesteps"] = Check(
            "timesteps",
            "not_run",
            "no recurrent module (nn.RNN, nn.LSTM, nn.GRU or their cells)"
            if source == "model"
            else "no timestep_grad records (no recurrent module, or the probe was not recorded)",
        )

    ua = records[(records.probe == "unit_activity") & ~records.step.isin(nonfinite_steps)]
    for name, stat in (("dead_units", "dead_frac"), ("saturation", "saturated_frac")):
        checks[name] = _units_check(name, ua, stat, units_steps, unit, source, name in kinds, order)

    first_nf = min(nonfinite_steps) if nonfinite_steps else None
    training: dict[str, Callable[[], tuple[list[Finding], Check]]] = {
        "update_ratio": lambda: check_update_ratio(records, th),
        "gradient_trend": lambda: check_gradient_trend(records, chosen, th, first_nf),
        "gradient_spike": lambda: check_gradient_spike(records, chosen, th, first_nf),
        "eval_drift": lambda: check_eval_drift(records, th),
    }
    for spec in CHECK_SPECS:
        if spec.scope != "training":
            continue
        if source == "model":
            checks[spec.name] = Check(spec.name, "not_run", _MODEL_ONLY)
        else:
            more, check = training[spec.name]()
            findings += more
            checks[check.name] = check
    facts = {"layers": chosen, "steps": len(steps), "order": order}
    return sort_findings(findings, order), [checks[c] for c in CHECKS], facts
