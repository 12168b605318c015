"""Findings over training on constructed runs: gradient trends, spikes before NaN,
update ratios that drift, train vs eval activation drift."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import netviz
from netviz import Thresholds, diagnose
from netviz.capture.probes import UnitActivity

COLUMNS = ["step", "skipped", "phase", "micro", "module", "call", "order", "probe", "stat", "value"]


def _table(grads: dict[str, list[float]], nonfinite_from: int | None = None) -> pd.DataFrame:
    """Records of a run: per layer and step, gradient RMS ``v`` (grad_stats mean 0, std v)
    and finite outputs (activation_stats), non-finite from step ``nonfinite_from`` on."""
    rows = []
    for i, (m, values) in enumerate(grads.items()):
        for step, v in enumerate(values):
            bad = nonfinite_from is not None and step >= nonfinite_from
            rows += [
                (step, False, "train", -1, m, 0, i, "grad_stats", "mean", 0.0),
                (step, False, "train", -1, m, 0, i, "grad_stats", "std", v),
                (
                    step,
                    False,
                    "train",
                    0,
                    m,
                    0,
                    i,
                    "activation_stats",
                    "nonfinite_frac",
                    float(bad),
                ),
            ]
    return pd.DataFrame(rows, columns=COLUMNS)


# ------------------------------------------------------------ gradient trend
def test_one_layer_decaying_apart_from_the_others_is_found():
    n = 20
    decay = [10.0 ** (-4 * s / (n - 1)) for s in range(n)]  # 1 -> 1e-4
    report = diagnose(records=_table({"a": [1.0] * n, "b": decay, "c": [0.5] * n, "d": [0.2] * n}))
    (f,) = report.by_kind("gradient_trend")
    assert f.module == "b" and f.severity == "warning"  # apart by < 2 x trend_orders
    # early: median of steps 0-4, late: median of steps 15-19 (quarters of 20 steps)
    early = sorted(decay[:5])[2]
    late = sorted(decay[15:])[2]
    assert f.evidence["orders_of_magnitude"] == pytest.approx(math.log10(late / early))
    assert f.evidence["reference_orders"] == pytest.approx(0.0)  # `d`, the output side
    assert "fell by 3.2 orders" in f.message and "stopped getting gradient" in f.message


def test_all_layers_decaying_together_is_convergence_not_a_finding():
    n = 20
    decay = [10.0 ** (-3 * s / (n - 1)) for s in range(n)]
    report = diagnose(records=_table({"a": decay, "b": [2 * v for v in decay], "c": decay}))
    assert report.findings == []
    c = report.check("gradient_trend")
    # early: step 2 (median of 0-4), late: step 17 (median of 15-19): -3 * 15 / 19 orders
    assert c.status == "clear" and f"`c` changed by {-3 * 15 / 19:+.1f} orders" in c.detail


def test_a_growing_layer_is_found():
    n = 12
    grow = [10.0 ** (3 * s / (n - 1)) for s in range(n)]
    report = diagnose(records=_table({"a": [1.0] * n, "b": [1.0] * n, "c": grow}))
    (f,) = report.by_kind("gradient_trend")
    assert f.module == "c" and "grew by" in f.message and "lower the learning rate" in f.message


def test_units_dying_during_real_training_show_as_a_trend():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
    x, y = torch.randn(64, 8), torch.randint(0, 2, (64,))
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    with netviz.watch(net, probes=["grad_stats", UnitActivity()], optimizer=opt) as mon:
        for step in range(16):
            if step == 8:
                with torch.no_grad():
                    net[2].bias.fill_(-100.0)  # every unit after layer 2 dies
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
    report = diagnose(records=mon)
    trend = {f.module: f for f in report.by_kind("gradient_trend")}
    assert set(trend) == {"0", "2"}  # no gradient below the dead ReLU any more
    assert all(f.evidence["late"] == 0.0 for f in trend.values())
    assert report.by_kind("dead_units")[0].evidence["first_step"] == 8


def test_too_few_steps_do_not_run_the_trend():
    report = diagnose(records=_table({"a": [1.0, 1e-6], "b": [1.0, 1.0]}))
    c = report.check("gradient_trend")
    assert c.status == "not_run" and "at least 5 recorded steps" in c.detail and "got 2" in c.detail


# ------------------------------------------------------------ gradient spike
def test_a_spike_before_the_first_nan_is_found():
    a = [1.0] * 12
    b = [1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 1.0, 1.0, 1.0, 1.0, 50.0, 1.0]
    report = diagnose(records=_table({"a": a, "b": b}, nonfinite_from=11))
    (f,) = report.by_kind("gradient_spike")
    assert (f.module, f.severity) == ("b", "error")
    assert f.evidence["spike_step"] == 10 and f.evidence["first_nonfinite_step"] == 11
    assert f.evidence["factor"] == pytest.approx(50.0)  # median of steps 5-9 is 1.0
    assert "first layer to spike" in f.message
    assert report.findings[0].kind == "nonfinite"  # still the top: the values themselves


def test_a_spike_without_consequence_is_no_finding():
    b = [1.0] * 10 + [50.0, 1.0]
    report = diagnose(records=_table({"a": [1.0] * 12, "b": b}))
    assert report.findings == []
    c = report.check("gradient_spike")
    assert c.status == "clear" and "1 spike(s) are not findings" in c.detail


def test_spike_factor_is_a_threshold():
    b = [1.0] * 10 + [50.0, 1.0]
    report = diagnose(
        records=_table({"a": [1.0] * 12, "b": b}, 11), thresholds=Thresholds(spike_factor=60)
    )
    assert report.by_kind("gradient_spike") == []


# ------------------------------------------------------------ update ratio
def _ratios(values):
    rows = [
        (s, False, "train", -1, "w", 0, 0, "weight_stats", "update_ratio", v)
        for s, v in enumerate(values)
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def test_update_ratio_drifting_out_late_in_training_is_found():
    values = [1e-3] * 12 + [0.5] * 4
    (f,) = diagnose(records=_ratios(values)).by_kind("update_ratio")
    assert f.evidence["median_update_ratio"] == pytest.approx(1e-3)
    assert f.evidence["late_update_ratio"] == pytest.approx(0.5)
    assert "over the last 4 of 16 step(s)" in f.message and "lower the learning rate" in f.message


def test_skipped_steps_do_not_count_for_the_update_ratio():
    df = _ratios([1e-3] * 8 + [0.0] * 8)  # a GradScaler skipped the second half: no update
    assert diagnose(records=df).by_kind("update_ratio")
    df["skipped"] = df.value == 0.0
    assert diagnose(records=df).by_kind("update_ratio") == []


# ------------------------------------------------------------ eval drift
def _train_and_eval(momentum, steps=12):
    """BatchNorm net trained with watch; a validation forward under no_grad after each
    optimizer step, which watch records with phase "eval" (in the next step)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8, momentum=momentum), nn.ReLU())
    net.append(nn.Linear(8, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    with netviz.watch(net, probes=["activation_stats", "grad_stats"], optimizer=opt) as mon:
        for _ in range(steps):
            opt.zero_grad()
            net(5.0 + 3.0 * torch.randn(64, 4)).pow(2).mean().backward()
            opt.step()
            net.eval()
            with torch.no_grad():
                net(5.0 + 3.0 * torch.randn(64, 4))
            net.train()
    return mon.to_pandas()


def test_batchnorm_running_stats_that_never_update_drift_in_eval():
    report = diagnose(records=_train_and_eval(momentum=0.0))  # running stats stay at mean 0, var 1
    (f,) = report.by_kind("eval_drift")
    assert f.module == "1"  # the batch norm: the Linear before it computes the same
    assert f.evidence["shift_sd"] >= 1.0 or f.evidence["std_ratio"] >= 3.0
    # eval rows of step k ran after its update: steps 1-11 have both phases
    assert f.evidence["steps_seen"] == 11


def test_batchnorm_with_running_averages_does_not_drift():
    report = diagnose(records=_train_and_eval(momentum=None))  # cumulative average of the batches
    assert report.by_kind("eval_drift") == [], str(report)
    c = report.check("eval_drift")
    assert c.status == "clear" and c.steps == 11


def test_no_eval_rows_no_drift_check():
    c = diagnose(records=_table({"a": [1.0] * 3, "b": [1.0] * 3})).check("eval_drift")
    assert c.status == "not_run" and "no eval-phase" in c.detail
