"""One function per kind of finding; each reads record rows and returns findings.

Per-step checks (:func:`check_nonfinite`, :func:`check_gradient_flow`,
:func:`check_timesteps`, :func:`check_units`) take the rows of one recorded
step; :func:`merge_steps` folds the per-step findings of a long run into one
finding per kind and module; :func:`rank_nonfinite` orders the non-finite
findings of a run by when they appeared. The checks over training are in
:mod:`netviz.analysis.training`.

Network order comes from the records' ``order`` column
(:func:`netviz.analysis.order.module_order`), never from row order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from netviz.analysis.findings import KINDS, SEVERITIES, Finding, Thresholds
from netviz.analysis.order import step_order

__all__ = [
    "GRADIENT_PROBES",
    "check_gradient_flow",
    "check_nonfinite",
    "check_timesteps",
    "check_units",
    "depth_layers",
    "gradient_magnitudes",
    "gradient_series",
    "merge_steps",
    "rank_nonfinite",
    "sort_findings",
]

#: Probes whose rows are a module's parameter gradients.
GRADIENT_PROBES: tuple[str, ...] = ("grad_stats", "grad_norm")

_DEPTH_FIX_VANISH = (
    "Usual remedies: ReLU-family activations instead of sigmoid/tanh (sigma'(x) <= 1/4, so "
    "every sigmoid layer multiplies the gradient by at most 1/4 times its weights), He "
    "initialisation (var(w) = 2/fan_in), residual (skip) connections, batch or layer normalisation."
)
_DEPTH_FIX_EXPLODE = (
    "Usual remedies: a smaller learning rate, gradient clipping "
    "(torch.nn.utils.clip_grad_norm_), a smaller initialisation (Xavier/He instead of larger "
    "weights), batch or layer normalisation, residual connections."
)
_TIME_FIX_VANISH = (
    "For a vanilla RNN this is what a recurrent matrix W_hh with largest singular value below 1 "
    "does: the gradient is multiplied by W_hh^T diag(tanh') at every step back. Usual remedies: "
    "an LSTM or GRU, orthogonal initialisation of W_hh, shorter sequences."
)
_TIME_FIX_EXPLODE = (
    "For a vanilla RNN this is what a recurrent matrix W_hh with largest singular value above 1 "
    "does. Usual remedies: gradient clipping (torch.nn.utils.clip_grad_norm_), orthogonal "
    "initialisation of W_hh with gain 1, an LSTM or GRU, truncated backpropagation through time."
)
_GATED_FIX_VANISH = (
    "In an LSTM or GRU the gates decide how far a gradient travels: it survives long spans only "
    "while the forget gate stays near 1. Usual remedies: a forget-gate bias of 1 or more at "
    "initialisation (the bias_ih/bias_hh slice of the forget gate), shorter sequences, or "
    "attention over the early steps."
)
_GATED_FIX_EXPLODE = (
    "Usual remedies: gradient clipping (torch.nn.utils.clip_grad_norm_), a smaller learning rate, "
    "truncated backpropagation through time."
)


def _orders(ratio: float) -> float:
    return abs(math.log10(ratio)) if ratio > 0 else math.inf


def depth_layers(records: pd.DataFrame, order: Sequence[str]) -> list[str]:
    """The layers that count for depth, input side first: every module with gradient records.

    One definition for both ways of calling :func:`netviz.diagnose`: a
    module counts when its own parameters (``recurse=False``) received a
    gradient that ``grad_stats`` or ``grad_norm`` recorded, so weight layers,
    normalisation layers with affine parameters and embeddings all count,
    and a model diagnosed live and its ``watch`` records give the same list.
    Pass ``layers=`` to :func:`netviz.diagnose` to compare fewer.
    """
    have = set(records.module[records.probe.isin(GRADIENT_PROBES)])
    return [m for m in order if m in have]


def gradient_magnitudes(rows: pd.DataFrame) -> tuple[pd.Series, str]:
    """Per ``(step, module)`` gradient magnitude of ``rows`` and the statistic's name.

    The RMS of the gradient entries, :math:`\\sqrt{\\mathrm{mean}^2 + \\mathrm{std}^2}`
    from ``grad_stats`` (independent of the layer's size), else the ``grad_norm``
    L2 norm. Index: ``(step, module)``; only ``micro == -1`` step-level rows.
    """
    gs = rows[rows.probe == "grad_stats"]
    if len(gs):
        # groupby/unstack keeps NaN statistics (pivot_table would drop them)
        table = gs.groupby(["step", "module", "stat"], sort=True).value.first().unstack()
        if {"mean", "std"} <= set(table.columns):
            return np.sqrt(table["mean"] ** 2 + table["std"] ** 2), "gradient RMS"
    gn = rows[(rows.probe == "grad_norm") & (rows.stat == "l2")]
    return gn.groupby(["step", "module"], sort=True).value.first(), "gradient L2 norm"


def gradient_series(
    step: pd.DataFrame, order: Sequence[str], layers: Sequence[str] | None = None
) -> list[tuple[str, float]]:
    """Per-layer gradient magnitude of one step, input side first.

    See :func:`gradient_magnitudes`. ``layers`` restricts the series to those modules.
    """
    values, _ = gradient_magnitudes(step)
    if len(values):
        values = values.groupby(level="module").first()
    keep = set(layers) if layers is not None else None
    return [
        (m, float(values[m]))
        for m in order
        if m in values.index and (keep is None or m in keep) and np.isfinite(values[m])
    ]


def check_nonfinite(step: pd.DataFrame, order: Sequence[str]) -> list[Finding]:
    """The first module whose output, else whose gradient, became NaN/Inf in one step.

    "First" is by the step's ``order`` column (execution order), then call.
    """
    rank = step_order(step) if len(step) else {}
    glob = {m: i for i, m in enumerate(order)}

    def key(m: str) -> tuple[int, int]:
        return rank.get(m, len(rank)), glob.get(m, len(glob))

    act = step[(step.probe == "activation_stats") & (step.stat == "nonfinite_frac")]
    bad = act[act.value > 0]
    if len(bad):
        firsts = sorted(
            ((key(str(r.module)), int(r.call), i) for i, r in enumerate(bad.itertuples()))
        )
        first = bad.iloc[firsts[0][2]]
        later = bad.module.nunique() - 1
        msg = (
            f"The output of `{first.module}` is the first in execution order to contain NaN or Inf: "
            f"{first.value:.1%} of its elements are non-finite"
            + (f" (call {int(first.call)})" if first.call else "")
            + (
                f"; {later} module(s) after it only inherit them."
                if later
                else ", and nothing before it is."
            )
            + " Look at what it computes: log or sqrt of values <= 0, division by zero, exp "
            "overflow, or weights already blown up by too large a learning rate; "
            "torch.autograd.detect_anomaly() names the exact operation."
        )
        ev = {
            "nonfinite_frac": float(first.value),
            "call": float(first.call),
            "downstream": float(later),
            "order": float(key(str(first.module))[0]),
        }
        return [Finding("nonfinite", str(first.module), "error", msg, ev)]
    gs = step[(step.probe == "grad_stats") & (step.stat == "nonfinite_frac") & (step.value > 0)]
    gn = step[(step.probe == "grad_norm") & (step.stat == "l2") & ~np.isfinite(step.value)]
    mods = set(gs.module) | set(gn.module)
    if not mods:
        return []
    # backward runs output -> input: the origin is the latest module in execution order
    origin = str(max(mods, key=lambda m: (key(m), m)))
    frac = gs[gs.module == origin].value
    ev = {
        "nonfinite_frac": float(frac.iloc[0]) if len(frac) else float("nan"),
        "modules": float(len(mods)),
        "order": float(key(origin)[0]),
        "gradient": 1.0,
    }
    msg = (
        f"The forward pass is finite, but the gradient of the parameters of `{origin}` is NaN or Inf "
        f"(the first such module on the way back from the loss; {len(mods)} module(s) affected). "
        "Typical causes: a derivative that is infinite where the value is finite (sqrt or pow at 0, "
        "log near 0), an overflowing loss, or exploding gradients. torch.autograd.detect_anomaly() "
        "names the operation; clip gradients or lower the learning rate."
    )
    return [Finding("nonfinite", origin, "error", msg, ev)]


def rank_nonfinite(findings: list[Finding], order: Sequence[str]) -> list[Finding]:
    """Non-finite findings of a run, origin first: by first step, then execution order.

    The origin's message says what followed from it ("then spread to ...").
    """
    glob = {m: i for i, m in enumerate(order)}
    nf = [f for f in findings if f.kind == "nonfinite"]
    if not nf:
        return findings
    rest = [f for f in findings if f.kind != "nonfinite"]

    def when(f: Finding) -> tuple[float, int, int, str]:
        # forward findings of a step come before gradient ones (backward runs after)
        return (
            f.evidence.get("first_step", 0.0),
            int(f.evidence.get("gradient", 0.0)),
            glob.get(f.module, len(glob)),
            f.module,
        )

    nf.sort(key=when)
    if len(nf) > 1:
        origin, later = nf[0], nf[1:]
        spread = ", ".join(
            f"`{f.module}`"
            + (f" (step {int(f.evidence['first_step'])})" if "first_step" in f.evidence else "")
            for f in later[:8]
        ) + (f" and {len(later) - 8} more" if len(later) > 8 else "")
        ev = dict(origin.evidence, spread_to=float(len(later)))
        msg = (
            f"{origin.message} This is where it started: then spread to {spread}."
            if "first_step" in origin.evidence
            else f"{origin.message} Then spread to {spread}."
        )
        nf = [Finding(origin.kind, origin.module, origin.severity, msg, ev)]
        for f in later:
            src = f"`{origin.module}`" + (
                f" (step {int(origin.evidence['first_step'])})"
                if "first_step" in origin.evidence
                else ""
            )
            nf.append(
                Finding(
                    f.kind,
                    f.module,
                    f.severity,
                    f"{f.message} It followed the non-finite values that started in {src}.",
                    dict(f.evidence, origin_order=float(glob.get(origin.module, -1))),
                )
            )
    return nf + rest


def _flow_finding(
    series: Sequence[tuple[str, float]],
    th: Thresholds,
    *,
    through_time: bool,
    module: str | None = None,
    extra: dict[str, float] | None = None,
) -> Finding | None:
    if len(series) < 2:
        return None
    (first, v_in), (last, v_out) = series[0], series[-1]
    if not v_out > 0 or not np.isfinite(v_in):
        return None
    ratio = v_in / v_out
    if th.vanishing_ratio <= ratio <= th.exploding_ratio:
        return None
    vanish = ratio < th.vanishing_ratio
    kind = "vanishing_gradients" if vanish else "exploding_gradients"
    bad = ratio < th.vanishing_ratio**2 if vanish else ratio > th.exploding_ratio**2
    severity = "error" if bad else "warning"
    ev = {
        "ratio": ratio,
        "orders_of_magnitude": _orders(ratio),
        "input_side": v_in,
        "output_side": v_out,
    }
    ev.update(extra or {})
    verb = "shrinks" if vanish else "grows"
    if through_time:
        sigma = ev.get("sigma_max_w_hh")
        sig = (
            f" The largest singular value of its W_hh is {sigma:.2f}." if sigma is not None else ""
        )
        ev["through_time"] = 1.0
        msg = (
            f"Through time in `{module}`: ||dL/dh_t|| {verb} from {v_out:.2g} at the last step "
            f"(t = {len(series) - 1}) to {v_in:.2g} at t = 0, a ratio of {ratio:.1e} "
            f"({_orders(ratio):.1f} orders of magnitude over {len(series)} steps)."
            + (
                " Early inputs hardly influence learning."
                if vanish
                else " Training becomes unstable."
            )
            + sig
            + " "
            + (
                (_GATED_FIX_VANISH if vanish else _GATED_FIX_EXPLODE)
                if ev.get("gated")
                else (_TIME_FIX_VANISH if vanish else _TIME_FIX_EXPLODE)
            )
        )
        return Finding(kind, str(module), severity, msg, ev)
    if v_in == 0:
        zero = [m for m, v in series if v == 0]
        msg = (
            f"No gradient at all reaches `{first}`: the gradients of {len(zero)} of {len(series)} "
            f"layers are exactly zero (up to `{zero[-1]}`), while `{last}` (output side) gets an "
            f"RMS of {v_out:.2g}. Something blocks the backward pass: dead ReLUs, a .detach() or "
            "torch.no_grad() inside forward, or weights that are all zero."
        )
        ev["zero_layers"] = float(len(zero))
        return Finding(kind, first, "error", msg, ev)
    logs = np.log10([max(v, 1e-300) for _, v in series])
    steps = np.diff(logs)
    # going back from the output, a vanishing gradient drops where logs rises input -> output
    j = int(np.argmax(steps) if vanish else np.argmin(steps)) if len(steps) else 0
    ev["steepest_factor"] = float(10 ** abs(steps[j])) if len(steps) else 1.0
    msg = (
        f"The gradient {verb} towards the input: its RMS is {v_in:.2g} in `{first}` (input side) "
        f"and {v_out:.2g} in `{last}` (output side), a ratio of {ratio:.1e} "
        f"({_orders(ratio):.1f} orders of magnitude over {len(series)} layers); the largest "
        f"single {'drop' if vanish else 'rise'} is between `{series[j][0]}` and "
        f"`{series[j + 1][0]}` (a factor {ev['steepest_factor']:.2g})."
        + (
            " The layers near the input barely learn. "
            if vanish
            else " The layers near the input take huge steps. "
        )
        + (_DEPTH_FIX_VANISH if vanish else _DEPTH_FIX_EXPLODE)
    )
    return Finding(kind, first, severity, msg, ev)


def check_gradient_flow(series: Sequence[tuple[str, float]], th: Thresholds) -> list[Finding]:
    """Vanishing or exploding gradients through depth.

    Compares the gradient RMS of the input-most layer with that of the
    output-most one (see :func:`gradient_series`):

    .. math:: r = \\mathrm{rms}(g_{\\mathrm{first}}) / \\mathrm{rms}(g_{\\mathrm{last}})

    Examples
    --------
    >>> f = check_gradient_flow([("0", 1e-6), ("2", 1e-3), ("4", 1.0)], Thresholds())
    >>> f[0].kind, f[0].module, f[0].severity, f[0].evidence["ratio"]
    ('vanishing_gradients', '0', 'warning', 1e-06)
    """
    found = _flow_finding(series, th, through_time=False)
    return [found] if found else []


def check_timesteps(
    step: pd.DataFrame, th: Thresholds, extra: dict[str, dict[str, float]] | None = None
) -> list[Finding]:
    """Vanishing or exploding gradients through time, from ``timestep_grad`` rows.

    Compares :math:`\\lVert \\partial L/\\partial h_0\\rVert` with
    :math:`\\lVert \\partial L/\\partial h_{T-1}\\rVert` of each recurrent module.
    """
    rows = step[(step.probe == "timestep_grad") & (step.stat == "l2")]
    out = []
    for module, grp in rows.groupby("module", sort=False):
        grp = grp.sort_values("call")
        series = [(str(int(t)), float(v)) for t, v in zip(grp.call, grp.value)]
        found = _flow_finding(
            series, th, through_time=True, module=str(module), extra=(extra or {}).get(module)
        )
        if found:
            out.append(found)
    return out


def check_units(step: pd.DataFrame, th: Thresholds) -> list[Finding]:
    """Dead ReLU units and saturated sigmoid/tanh outputs, from ``unit_activity`` rows."""
    rows = step[step.probe == "unit_activity"]
    out = []
    # a module applied several times (one nn.ReLU shared by every layer) is
    # judged per call: one dead application must not be averaged away
    # and per forward pass (micro-batches of gradient accumulation, eval forwards)
    keys = [c for c in ("module", "phase", "micro", "call") if c in rows.columns]
    for key, grp in rows.groupby(keys, sort=True):
        module, call = key[0], key[-1]
        stats = grp.groupby("stat").value.first()
        where = f"`{module}`" + (
            f" (call {int(call)})" if rows.call[rows.module == module].max() else ""
        )
        ev_call = {"call": float(call)}
        dead = stats.get("dead_frac", np.nan)
        if np.isfinite(dead) and dead >= th.dead_frac:
            sev = "error" if dead >= 1.0 else "warning"
            msg = (
                f"{dead:.0%} of the units of {where} are dead: they output zero for (nearly) "
                "every input of the batch, so they pass no gradient and stop learning. Usual "
                "causes: a large negative bias, a learning rate so high that it pushed the "
                "pre-activations below zero, a poor initialisation. Remedies: He initialisation "
                "(var(w) = 2/fan_in), a smaller learning rate, LeakyReLU/ELU/GELU, normalisation "
                "before the ReLU."
            )
            ev = {"dead_frac": float(dead), **ev_call}
            out.append(Finding("dead_units", str(module), sev, msg, ev))
        sat = stats.get("saturated_frac", np.nan)
        if np.isfinite(sat) and sat >= th.saturated_frac:
            sev = "error" if sat >= 0.95 else "warning"
            msg = (
                f"{sat:.0%} of the outputs of {where} lie within 0.01 of the bounds of the "
                "nonlinearity, where its derivative is almost zero (sigma' = sigma(1 - sigma), "
                "tanh' = 1 - tanh^2), so hardly any gradient passes. Usual causes: weights too "
                "large for the fan-in, unnormalised inputs. Remedies: Xavier/Glorot "
                "initialisation (var(w) = 1/fan_in), normalised inputs, batch or layer "
                "normalisation, or a ReLU-family activation."
            )
            ev = {"saturated_frac": float(sat), **ev_call}
            out.append(Finding("saturation", str(module), sev, msg, ev))
    return _worst_per_module(out)


def _unit_score(f: Finding) -> tuple[int, float]:
    frac = f.evidence.get("dead_frac", f.evidence.get("saturated_frac", 0.0))
    return _RANK[f.severity], frac


def _worst_per_module(findings: list[Finding]) -> list[Finding]:
    """Keep one finding per (kind, module): the most severe, then the largest evidence."""
    best: dict[tuple[str, str], Finding] = {}
    for f in findings:
        key = (f.kind, f.module)
        old = best.get(key)
        if old is None or _unit_score(f) > _unit_score(old):
            best[key] = f
    return list(best.values())


_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def merge_steps(per_step: Sequence[tuple[int, list[Finding]]], n_steps: int) -> list[Finding]:
    """One finding per ``(kind, module)`` (and through time or not): the worst step's, with how
    often it was seen (for NaN/Inf: the first step's)."""
    groups: dict[tuple[str, str, float], list[tuple[int, Finding]]] = {}
    for step, findings in per_step:
        for f in findings:
            key = (f.kind, f.module, f.evidence.get("through_time", 0.0))
            groups.setdefault(key, []).append((step, f))
    out = []
    for items in groups.values():
        if items[0][1].kind == "nonfinite":  # where it started, not where it ended
            step, worst = min(items, key=lambda sf: sf[0])
        else:
            step, worst = max(items, key=lambda sf: (_RANK[sf[1].severity], sf[0]))
        if n_steps <= 1:
            out.append(worst)
            continue
        steps = [s for s, _ in items]
        ev = dict(worst.evidence)
        ev.update(
            steps_seen=float(len(steps)), first_step=float(min(steps)), last_step=float(max(steps))
        )
        when = (
            f" Seen in {len(steps)} of {n_steps} recorded steps (first at step {min(steps)}, "
            f"last at step {max(steps)}); the numbers above are from step {step}."
        )
        out.append(Finding(worst.kind, worst.module, worst.severity, worst.message + when, ev))
    return out


def sort_findings(findings: list[Finding], order: Sequence[str]) -> list[Finding]:
    """Most severe first, then by kind (:data:`KINDS` order), then in network order.

    Non-finite findings keep the order of :func:`rank_nonfinite` (first step,
    then execution order): the origin comes first.
    """
    kinds = list(KINDS)
    rank = {m: i for i, m in enumerate(order)}
    ranked = rank_nonfinite(findings, order)
    nf = {id(f): i for i, f in enumerate(ranked) if f.kind == "nonfinite"}
    return sorted(
        ranked,
        key=lambda f: (
            -_RANK[f.severity],
            kinds.index(f.kind),
            nf.get(id(f), 0),
            rank.get(f.module, len(rank)),
            f.module,
        ),
    )
