"""The check functions on hand-made series and record rows (Hypothesis properties)."""

from __future__ import annotations

import math

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from netviz.analysis.checks import check_gradient_flow, check_nonfinite, merge_steps
from netviz.analysis.findings import Finding, Thresholds

positive = st.floats(min_value=1e-30, max_value=1e30, allow_nan=False, allow_infinity=False)


@given(st.lists(positive, min_size=2, max_size=12))
def test_flow_finding_iff_end_ratio_outside_thresholds(values):
    th = Thresholds()
    series = [(str(i), v) for i, v in enumerate(values)]
    found = check_gradient_flow(series, th)
    ratio = values[0] / values[-1]
    if th.vanishing_ratio <= ratio <= th.exploding_ratio:
        assert found == []
        return
    (f,) = found
    assert f.kind == ("vanishing_gradients" if ratio < 1 else "exploding_gradients")
    assert f.module == "0"
    assert math.isclose(f.evidence["ratio"], ratio, rel_tol=1e-12)
    limit = th.vanishing_ratio**2 if ratio < 1 else th.exploding_ratio**2
    assert (f.severity == "error") == (ratio < limit if ratio < 1 else ratio > limit)
    # the largest single step named in the message lies within the series
    assert f.evidence["steepest_factor"] >= 1.0


def test_flow_needs_two_layers_and_a_gradient_at_the_output():
    th = Thresholds()
    assert check_gradient_flow([("a", 1.0)], th) == []
    assert check_gradient_flow([("a", 1.0), ("b", 0.0)], th) == []


def test_first_nonfinite_row_in_execution_order_wins():
    rows = pd.DataFrame(
        {
            "step": 0,
            "module": ["c", "a", "b"],  # execution order: c, a, b
            "call": 0,
            "probe": "activation_stats",
            "stat": "nonfinite_frac",
            "value": [0.0, 0.25, 1.0],
        }
    )
    (f,) = check_nonfinite(rows, order=["a", "b", "c"])
    assert (f.module, f.evidence["nonfinite_frac"], f.evidence["downstream"]) == ("a", 0.25, 1.0)


@given(st.lists(st.sampled_from(["warning", "error"]), min_size=1, max_size=8))
def test_merge_keeps_the_worst_step_and_counts(severities):
    per_step = [
        (s, [Finding("dead_units", "m", sev, "msg.", {"dead_frac": 0.5})])
        for s, sev in enumerate(severities)
    ]
    (f,) = merge_steps(per_step, n_steps=len(severities) + 2)
    assert f.severity == ("error" if "error" in severities else "warning")
    assert f.evidence["steps_seen"] == len(severities)
    assert f.evidence["first_step"] == 0 and f.evidence["last_step"] == len(severities) - 1
