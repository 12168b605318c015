"""Findings over training: what only a record table of many steps shows.

Each check reads the whole table and returns ``(findings, Check)``:

- :func:`check_update_ratio`: ``weight_stats`` update/weight ratios far from ~1e-3;
- :func:`check_gradient_trend`: a layer whose gradient grew, or decayed apart
  from the rest of the network, by orders of magnitude over the run;
- :func:`check_gradient_spike`: a sudden spike in one layer's gradient shortly
  before the first non-finite values;
- :func:`check_eval_drift`: activations of ``phase == "eval"`` forwards far
  from those of the training forwards of the same step.

Steps skipped by a GradScaler (``skipped``) take no part in the gradient and
update checks: their gradients are non-finite by design and no update happened.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from netviz.analysis.checks import gradient_magnitudes, merge_steps
from netviz.analysis.findings import Check, Finding, Thresholds
from netviz.analysis.order import step_order

__all__ = [
    "check_eval_drift",
    "check_gradient_spike",
    "check_gradient_trend",
    "check_update_ratio",
    "name_list",
]


def name_list(names: Sequence[str], limit: int = 4) -> str:
    """``a, b, c and 5 more`` (backquoted names)."""
    shown = ", ".join(f"`{n}`" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _done(name: str, findings: list[Finding], detail: str, modules: int, steps: int) -> Check:
    return Check(name, "found" if findings else "clear", detail, modules, steps)


def _steps_text(n: int) -> str:
    return f"{n} recorded step{'' if n == 1 else 's'}"


def check_update_ratio(records: pd.DataFrame, th: Thresholds) -> tuple[list[Finding], Check]:
    """Median update/weight ratio per layer, over all recorded steps and over the last quarter.

    ``update_ratio = ||w_t - w_prev|| / ||w_prev||`` (``weight_stats``), the cs231n
    rule of thumb being about 1e-3. A median outside ``[update_low, update_high]``
    is a warning: over the whole run (learning rate too high or too low), or
    over the last quarter of the steps only (it drifted out during training).
    """
    rows = records[
        (records.probe == "weight_stats") & (records.stat == "update_ratio") & ~records.skipped
    ]
    rows = rows[np.isfinite(rows.value)]
    if not len(rows):
        why = (
            "no weight_stats update_ratio records (record netviz.watch(probes=[..., "
            "'weight_stats']) over at least two steps)"
        )
        return [], Check("update_ratio", "not_run", why)
    out = []
    for module, grp in rows.groupby("module", sort=True):
        grp = grp.sort_values("step")
        med = float(grp.value.median())
        q = max(1, len(grp) // 4)
        late = float(grp.value.iloc[-q:].median())
        inside = th.update_low <= med <= th.update_high
        if inside and th.update_low <= late <= th.update_high:
            continue
        value, span = (med, f"over {len(grp)} step(s)") if not inside else (late, "")
        if inside:
            span = f"over the last {q} of {len(grp)} step(s) (median over all: {med:.1e})"
        low = value < th.update_low
        msg = (
            f"The median update/weight ratio ||dw||/||w|| of `{module}` is {value:.1e} {span}; "
            "the rule of thumb is about 1e-3. "
            + (
                "The layer hardly moves: raise the learning rate, or check whether its gradient "
                "vanishes."
                if low
                else "Each step changes the weights a lot: lower the learning rate; training may "
                "diverge."
            )
        )
        ev = {"median_update_ratio": med, "late_update_ratio": late, "steps": float(len(grp))}
        out.append(Finding("update_ratio", str(module), "warning", msg, ev))
    n_mod, n_steps = rows.module.nunique(), rows.step.nunique()
    detail = f"{n_mod} modules over {_steps_text(n_steps)}"
    return out, _done("update_ratio", out, detail, n_mod, n_steps)


def _layer_series(
    records: pd.DataFrame, layers: Sequence[str]
) -> tuple[dict[str, pd.Series], str, list[int]]:
    """``({layer: magnitude by step}, statistic name, steps)`` of non-skipped steps."""
    rows = records[records.probe.isin(("grad_stats", "grad_norm")) & ~records.skipped]
    mags, stat = gradient_magnitudes(rows)
    if not len(mags):
        return {}, stat, []
    by = {str(m): s.droplevel("module") for m, s in mags.groupby(level="module")}
    series = {m: by[m].sort_index() for m in layers if m in by}
    steps = sorted({int(s) for v in series.values() for s in v.index})
    return series, stat, steps


def check_gradient_trend(
    records: pd.DataFrame,
    layers: Sequence[str],
    th: Thresholds,
    first_nonfinite: int | None = None,
) -> tuple[list[Finding], Check]:
    """Layers whose gradient grew, or decayed apart from the others, by orders of magnitude.

    Per layer, the median gradient magnitude over the last quarter of the
    recorded steps against the first quarter, in orders of magnitude
    :math:`t = \\log_{10}(\\mathrm{late}/\\mathrm{early})`. All layers falling
    together is the loss converging, not a finding; a layer with
    :math:`t \\ge` ``trend_orders`` (growing) or both :math:`t \\le -` ``trend_orders``
    and :math:`t \\le t_\\mathrm{out} -` ``trend_orders`` (falling behind) is, where :math:`t_\\mathrm{out}` is the trend of the
    output-side layer (it gets the loss gradient directly). Only the steps before
    ``first_nonfinite`` count (after it the gradients are NaN).
    """
    if first_nonfinite is not None:
        records = records[records.step < first_nonfinite]
    series, stat, steps = _layer_series(records, layers)
    if len(steps) < th.trend_min_steps:
        why = (
            f"needs at least {th.trend_min_steps} recorded steps with gradient records "
            f"(grad_stats or grad_norm)"
            + (" before the first non-finite values" if first_nonfinite is not None else "")
            + f", got {len(steps)}"
        )
        return [], Check("gradient_trend", "not_run", why)
    q = max(1, len(steps) // 4)
    early_steps, late_steps = steps[:q], steps[-q:]
    trend: dict[str, tuple[float, float, float]] = {}
    for m, s in series.items():
        s = s[np.isfinite(s)]
        e = s[s.index.isin(early_steps)].median()
        late = s[s.index.isin(late_steps)].median()
        if not (np.isfinite(e) and np.isfinite(late)) or e <= 0:
            continue
        trend[m] = (math.log10(max(late, 1e-30) / e), float(e), float(late))
    if not trend:
        why = "no layer has a finite positive gradient in the first and the last quarter"
        return [], Check("gradient_trend", "not_run", why)
    ref = [m for m in layers if m in trend][-1]  # gets the loss gradient directly
    med = trend[ref][0]
    out = []
    early_span = f"steps {early_steps[0]}-{early_steps[-1]}"
    late_span = f"steps {late_steps[0]}-{late_steps[-1]}"
    for m, (t, e, late) in trend.items():
        # falling behind: decayed itself and against the output side (not convergence)
        grew = t >= th.trend_orders
        apart = t <= -th.trend_orders and t - med <= -th.trend_orders
        if not (grew or apart):
            continue
        size = max(t if grew else 0.0, med - t if apart else 0.0)
        severity = "error" if size >= 2 * th.trend_orders else "warning"
        change = (
            "fell to exactly zero"
            if late == 0
            else f"{'grew' if t > 0 else 'fell'} by {abs(t):.1f} orders of magnitude"
        )
        msg = (
            f"The {stat} of `{m}` {change} over the run (median {e:.2g} in {early_span}, "
            f"{late:.2g} in {late_span})"
            + (
                f", while the output-side layer `{ref}` changed by {med:+.1f} orders. "
                if m != ref
                else ". "
            )
            + (
                "Growing gradients make training unstable: lower the learning rate, clip "
                "gradients (torch.nn.utils.clip_grad_norm_), add normalisation."
                if grew
                else "This layer stopped getting gradient while the output side still does: "
                "look for units that died on the way (dead_units), saturated activations, or "
                "a learning rate that pushed it into a flat region."
            )
        )
        ev = {
            "orders_of_magnitude": t,
            "reference_orders": med,
            "early": e,
            "late": late,
            "first_step": float(steps[0]),
            "last_step": float(steps[-1]),
        }
        out.append(Finding("gradient_trend", m, severity, msg, ev))
    detail = (
        f"{len(trend)} layers over {_steps_text(len(steps))} ({stat}; the output-side layer "
        f"`{ref}` changed by {med:+.1f} orders of magnitude)"
    )
    return out, _done("gradient_trend", out, detail, len(trend), len(steps))


def check_gradient_spike(
    records: pd.DataFrame,
    layers: Sequence[str],
    th: Thresholds,
    first_nonfinite: int | None,
) -> tuple[list[Finding], Check]:
    """A layer whose gradient spiked shortly before the first non-finite values.

    A spike at step ``s``: the magnitude is at least ``spike_factor`` times its
    median over the previous ``spike_window`` recorded steps. Spikes within
    ``spike_horizon`` recorded steps before ``first_nonfinite`` are errors;
    the earliest is where the blow-up began. Without non-finite values a
    spike is no finding (the loss is not in the records to confirm harm).
    """
    series, stat, steps = _layer_series(records, layers)
    if len(steps) < max(th.trend_min_steps, th.spike_window + 1):
        why = (
            f"needs at least {max(th.trend_min_steps, th.spike_window + 1)} recorded steps "
            f"with gradient records, got {len(steps)}"
        )
        return [], Check("gradient_spike", "not_run", why)
    spikes: list[tuple[int, str, float, float]] = []
    for m, s in series.items():
        s = s[np.isfinite(s)]
        if first_nonfinite is not None:
            s = s[s.index < first_nonfinite]
        vals, idx = s.to_numpy(), s.index.to_numpy()
        for i in range(th.spike_window, len(vals)):
            base = float(np.median(vals[i - th.spike_window : i]))
            if base > 0 and vals[i] >= th.spike_factor * base:
                spikes.append((int(idx[i]), m, float(vals[i]), base))
                break  # the first spike of each layer
    out = []
    if first_nonfinite is not None:
        before = [st for st in steps if st < first_nonfinite][-th.spike_horizon :]
        rank = {m: i for i, m in enumerate(layers)}
        near = sorted(
            (sp for sp in spikes if sp[0] in set(before)), key=lambda sp: (sp[0], rank[sp[1]])
        )
        for k, (step, m, v, base) in enumerate(near):
            msg = (
                f"The {stat} of `{m}` jumped to {v:.2g} at step {step}, {v / base:.0f} times its "
                f"median {base:.2g} over the {th.spike_window} recorded steps before, and the "
                f"first NaN/Inf followed at step {first_nonfinite}. "
                + (
                    "It is the first layer to spike: the blow-up likely began here. "
                    if k == 0
                    else ""
                )
                + "Clip gradients (torch.nn.utils.clip_grad_norm_), lower the learning rate or "
                "use a warm-up, and check this layer's inputs at that step."
            )
            ev = {
                "spike_step": float(step),
                "factor": v / base,
                "value": v,
                "baseline": base,
                "first_nonfinite_step": float(first_nonfinite),
            }
            out.append(Finding("gradient_spike", m, "error", msg, ev))
    judged = [st for st in steps if first_nonfinite is None or st < first_nonfinite]
    detail = f"{len(series)} layers over {_steps_text(len(judged))} ({stat})"
    if first_nonfinite is not None and not out:
        detail += f"; no spike before the first non-finite values (step {first_nonfinite})"
    if first_nonfinite is None:
        detail += (
            f"; no non-finite values followed, so {len(spikes)} spike(s) are not findings"
            if spikes
            else "; no spike"
        )
    return out, _done("gradient_spike", out, detail, len(series), len(judged))


def _phase_moments(rows: pd.DataFrame) -> pd.DataFrame:
    """Per module: mean of the ``mean`` and ``std`` rows (over micro-batches and calls)."""
    return rows.groupby(["module", "stat"], sort=True).value.mean().unstack()


def check_eval_drift(records: pd.DataFrame, th: Thresholds) -> tuple[list[Finding], Check]:
    """Activations of eval forwards far from the training forwards of the same step.

    Per module and step with both phases: the shift of the eval mean in train
    standard deviations, :math:`|\\mu_e - \\mu_t| / \\sigma_t`, against
    ``drift_shift``, and the std ratio :math:`\\sigma_e / \\sigma_t` against
    ``drift_scale`` (either way), judged at the last step that has both phases
    (batch-norm running statistics lag during the first steps). Typical causes: batch-norm running
    statistics that do not match the batches (momentum, tiny batches, a
    distribution shift between the data sets), or eval data unlike the training data.
    """
    act = records[(records.probe == "activation_stats") & records.stat.isin(("mean", "std"))]
    if not (act.phase == "eval").any():
        why = (
            "no eval-phase activation records (forwards under torch.no_grad() inside "
            "netviz.watch are recorded with phase 'eval')"
        )
        return [], Check("eval_drift", "not_run", why)
    per_step, n_mod, n_steps = [], set(), 0
    for step, rows in act.groupby("step", sort=True):
        train, ev_ = rows[rows.phase == "train"], rows[rows.phase == "eval"]
        if not len(train) or not len(ev_):
            continue
        t, e = _phase_moments(train), _phase_moments(ev_)
        common = [m for m in e.index if m in t.index]
        if not common or not {"mean", "std"} <= set(t.columns) & set(e.columns):
            continue
        n_steps += 1
        found = []
        for m in common:
            mt, st, me, se = t.at[m, "mean"], t.at[m, "std"], e.at[m, "mean"], e.at[m, "std"]
            if not all(np.isfinite([mt, st, me, se])) or st <= 0:
                continue
            n_mod.add(m)
            shift, scale = abs(me - mt) / st, se / st if st > 0 else math.inf
            wide = max(scale, 1 / scale) if scale > 0 else math.inf
            if shift < th.drift_shift and wide < th.drift_scale:
                continue
            msg = (
                f"In eval mode the output of `{m}` has mean {me:.3g} and std {se:.3g}, against "
                f"{mt:.3g} and {st:.3g} in the training forwards of the same step: a shift of "
                f"{shift:.1f} train standard deviations and a std ratio of {scale:.2g}. The "
                "network computes something else at evaluation: batch-norm running statistics "
                "that do not match the data (BatchNorm momentum, tiny batches), eval data unlike "
                "the training data, or a module that behaves differently in eval mode."
            )
            fev = {"shift_sd": float(shift), "std_ratio": float(scale)}
            found.append(Finding("eval_drift", str(m), "warning", msg, fev))
        if found:  # the first drifting module in execution order; the rest follow from it
            rank = step_order(rows)
            found.sort(key=lambda f: (rank.get(f.module, len(rank)), f.module))
            first = found[0]
            if len(found) > 1:
                first = Finding(
                    first.kind,
                    first.module,
                    first.severity,
                    f"{first.message} It is the first module in execution order to drift; "
                    f"{len(found) - 1} module(s) after it drift too.",
                    dict(first.evidence, downstream=float(len(found) - 1)),
                )
            found = [first]
        per_step.append((int(step), found))
    if not n_steps:
        why = "no step has activation records of both phases (train and eval)"
        return [], Check("eval_drift", "not_run", why)
    # judged at the last step with both phases (the network as it is now): running
    # statistics that lag during the first steps and then catch up are no finding
    now = {f.module for f in per_step[-1][1]}
    out = [f for f in merge_steps(per_step, n_steps) if f.module in now]
    detail = (
        f"{len(n_mod)} modules over {_steps_text(n_steps)} with both phases, judged at step "
        f"{per_step[-1][0]}"
    )
    return out, _done("eval_drift", out, detail, len(n_mod), n_steps)
