"""NaN origin over time, and row order never decides: shuffled or sorted tables agree."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import netviz
from netviz import diagnose
from netviz.analysis.checks import check_nonfinite
from netviz.analysis.order import as_records, module_order
from netviz.capture.probes import UnitActivity


def _mlp():
    return nn.Sequential(
        nn.Linear(8, 16),
        nn.ReLU(),
        nn.Linear(16, 16),
        nn.ReLU(),
        nn.Linear(16, 16),
        nn.ReLU(),
        nn.Linear(16, 2),
    )


def _run_with_inf_at_step_5(steps=8):
    torch.manual_seed(0)
    net = _mlp()
    x, y = torch.randn(32, 8), torch.randint(0, 2, (32,))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    probes = ["grad_stats", "activation_stats", "weight_stats", UnitActivity()]
    with netviz.watch(net, probes=probes, optimizer=opt) as mon:
        for step in range(steps):
            if step == 5:
                with torch.no_grad():
                    net[4].weight[0, 0] = float("inf")
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
    return mon.to_pandas()


def _key(report):
    return (
        [(f.kind, f.module, f.severity, f.message) for f in report.findings],
        [(c.name, c.status, c.detail) for c in report.checks],
    )


def test_the_origin_is_the_first_step_not_the_first_layer():
    report = diagnose(records=_run_with_inf_at_step_5())
    nf = report.by_kind("nonfinite")
    assert report.findings[0] is nf[0]  # the origin is the top finding
    origin = nf[0]
    assert origin.module == "4" and origin.evidence["first_step"] == 5
    # the optimizer spread it: layer 0 became non-finite one step later
    assert nf[1].module == "0" and nf[1].evidence["first_step"] == 6
    assert "then spread to `0` (step 6)" in origin.message
    assert "started in `4` (step 5)" in nf[1].message


@pytest.mark.parametrize(
    "reorder",
    [
        pytest.param(lambda df: df.sample(frac=1.0, random_state=0), id="shuffled"),
        pytest.param(lambda df: df.sort_values(["module", "probe", "stat"]), id="sorted"),
        pytest.param(lambda df: df.iloc[::-1], id="reversed"),
    ],
)
def test_row_order_does_not_change_the_diagnosis(reorder):
    records = as_records(_run_with_inf_at_step_5())  # with the `order` column
    base = diagnose(records=records)
    again = diagnose(records=reorder(records).reset_index(drop=True))
    assert _key(again) == _key(base)
    assert module_order(reorder(records)) == module_order(records)


def test_first_nonfinite_module_comes_from_the_order_column():
    rows = pd.DataFrame(
        {
            "step": 0,
            "module": ["c", "a", "b"],
            "call": 0,
            "probe": "activation_stats",
            "stat": "nonfinite_frac",
            "value": [1.0, 0.25, 1.0],
            "order": [2, 0, 1],  # a ran first, though its row is second
        }
    )
    (f,) = check_nonfinite(as_records(rows), order=["a", "b", "c"])
    assert (f.module, f.evidence["nonfinite_frac"], f.evidence["downstream"]) == ("a", 0.25, 2)


def test_skipped_steps_are_not_judged_for_nonfinite_gradients():
    # a GradScaler skips steps whose gradients overflowed: that is its job, not a finding
    records = as_records(_run_with_inf_at_step_5(steps=6))
    records = records[records.step <= 4].copy()
    bad = (records.step == 3) & (records.probe == "grad_stats") & (records.stat == "nonfinite_frac")
    records.loc[bad, "value"] = 1.0
    assert diagnose(records=records).by_kind("nonfinite")  # judged: a finding
    records["skipped"] = records.step == 3
    report = diagnose(records=records)
    assert report.by_kind("nonfinite") == []
    assert "1 steps skipped by the GradScaler are not judged" in report.check("nonfinite").detail
