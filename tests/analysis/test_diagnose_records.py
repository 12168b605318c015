"""``diagnose(records=records)``: findings over a recorded training run."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import netviz
from netviz import diagnose
from netviz.capture.probes import UnitActivity


def _train(net, lr, steps=6, probes=("grad_stats", "activation_stats", "weight_stats")):
    x, y = torch.randn(64, 8), torch.randint(0, 2, (64,))
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    with netviz.watch(net, probes=list(probes), optimizer=opt) as mon:
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
    return mon.to_pandas()


def _mlp():
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))


def test_update_ratio_too_small_and_too_large():
    small = diagnose(records=_train(_mlp(), lr=1e-7))
    assert {f.module for f in small.by_kind("update_ratio")} == {"0", "2"}
    f = small.by_kind("update_ratio")[0]
    assert f.evidence["median_update_ratio"] < 1e-5 and f.evidence["steps"] == 5
    assert "raise the learning rate" in f.message
    large = diagnose(records=_train(_mlp(), lr=50.0))
    assert large.by_kind("update_ratio")
    assert "lower the learning rate" in large.by_kind("update_ratio")[0].message


def test_update_ratio_matches_records_median():
    records = _train(_mlp(), lr=1e-7)
    rows = records.query("probe == 'weight_stats' and stat == 'update_ratio' and module == '0'")
    (f,) = [f for f in diagnose(records=records).by_kind("update_ratio") if f.module == "0"]
    assert f.evidence["median_update_ratio"] == pytest.approx(rows.value.median())


def test_healthy_training_run_has_no_findings():
    torch.manual_seed(1)
    report = diagnose(records=_train(_mlp(), lr=0.05))
    assert report.findings == [], str(report)
    s = report.summary
    assert (s["model"], s["source"], s["steps"], s["layers"]) == ("records", "records", 6, 2)
    assert s["depth_layers"] == ["0", "2"] and s["statistic"] == "gradient RMS"
    assert str(report).startswith("netviz diagnosis of records (6 recorded steps)")
    # what ran is said, and what could not run is not claimed
    assert report.check("update_ratio").status == "clear"
    assert report.check("gradient_trend").status == "clear"
    assert report.check("dead_units").status == "not_run"  # no unit_activity recorded
    assert "no dead" not in str(report)


def test_trend_over_steps_reports_when_it_started():
    # a layer whose units die after step 2: the finding says from which step on
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    x = torch.randn(64, 8)
    with netviz.watch(net, probes=["grad_stats", UnitActivity()]) as mon:
        for step in range(5):
            if step == 2:
                with torch.no_grad():
                    net[0].bias.fill_(-100.0)
            net(x).sum().backward()
            mon.step()
            net.zero_grad()
    report = diagnose(records=mon.to_pandas())
    (f,) = report.by_kind("dead_units")
    assert f.module == "1"
    assert (f.evidence["first_step"], f.evidence["last_step"], f.evidence["steps_seen"]) == (
        2,
        4,
        3,
    )
    assert "3 of 5 recorded steps (first at step 2" in f.message


def test_first_nonfinite_step_is_named():
    net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    x = torch.randn(16, 8)
    with netviz.watch(net, probes=["activation_stats", "grad_stats"]) as mon:
        for step in range(4):
            if step == 3:
                with torch.no_grad():
                    net[2].weight[0, 0] = float("inf")
            net(x).sum().backward()
            mon.step()
            net.zero_grad()
    (f,) = diagnose(records=mon).by_kind("nonfinite")  # a Monitor is accepted too
    assert f.module == "2" and f.evidence["first_step"] == 3


def test_records_mode_rejects_model_arguments_and_bad_tables():
    records = _train(_mlp(), lr=0.05, steps=2)
    with pytest.raises(netviz.NetvizTypeError, match=r"`model`, `inputs`, `target` and `loss_fn`"):
        diagnose(records=records, inputs=torch.randn(2, 8))
    with pytest.raises(ValueError, match=r"`records` is not a netviz record table"):
        diagnose(records=pd.DataFrame({"step": [0]}))
    with pytest.raises(TypeError, match=r"load it with netviz\.load\('records\.parquet'\)"):
        diagnose(records="records.parquet")
    with pytest.raises(netviz.NetvizTypeError, match=r"`records` must be a netviz record table"):
        diagnose(records=3)
    # the old call, a record table in the model's place, says what to write instead
    for table in (records, "records.parquet"):
        with pytest.raises(netviz.NetvizTypeError, match=r"diagnose\(records=table\)"):
            diagnose(table)
    with pytest.raises(
        netviz.NetvizTypeError, match=r"`model` must be a torch\.nn\.Module, got int"
    ):
        diagnose(3, torch.randn(2, 8))


def test_saved_and_loaded_records_diagnose_the_same(tmp_path):
    records = _train(_mlp(), lr=1e-7)
    path = tmp_path / "run.parquet"
    records.to_parquet(path)
    a = diagnose(records=records)
    b = diagnose(records=netviz.load(path))
    assert [(f.kind, f.module, f.severity) for f in a] == [
        (f.kind, f.module, f.severity) for f in b
    ]
