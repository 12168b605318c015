"""Checks as data (``netviz.analysis.specs``) and forward rows read from the records."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

import netviz
from netviz.analysis import CHECK_SPECS, CHECKS, KINDS, analyze
from netviz.analysis.order import forward_rows, module_order
from netviz.analysis.specs import probes_for

DOC = Path(__file__).resolve().parents[2] / "docs" / "diagnose.md"


def test_kinds_and_checks_come_from_the_specs():
    assert list(CHECKS) == [s.name for s in CHECK_SPECS]
    # every kind some check reports, and only those, in report order
    assert list(KINDS) == [
        "nonfinite",
        "vanishing_gradients",
        "exploding_gradients",
        "dead_units",
        "saturation",
        "update_ratio",
        "gradient_trend",
        "gradient_spike",
        "eval_drift",
    ]
    assert {k for s in CHECK_SPECS for k, _ in s.kinds} == set(KINDS)
    assert {s.scope for s in CHECK_SPECS} == {"step", "training"}


def test_probes_for_scopes():
    assert probes_for(["training"]) == (
        "weight_stats",
        "grad_stats",
        "grad_norm",
        "activation_stats",
    )
    assert set(probes_for()) == {
        "activation_stats",
        "grad_stats",
        "grad_norm",
        "timestep_grad",
        "unit_activity",
        "weight_stats",
    }
    with pytest.raises(netviz.NetvizValueError, match="unknown check scope"):
        probes_for(["epoch"])


class _RNNReLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.RNN(3, 8, batch_first=True)
        self.act = nn.ReLU()
        self.squash = nn.Tanh()
        self.out = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(x)
        return self.out(self.squash(self.act(h[:, -1])))


def test_diagnose_records_exactly_the_probes_of_the_per_step_checks():
    torch.manual_seed(0)
    report = netviz.diagnose(_RNNReLU(), torch.randn(4, 5, 3), torch.randint(0, 2, (4,)))
    assert set(report.records.probe) == set(probes_for(["step"]))
    # every check of the specs has its Check in the report, in spec order
    assert [c.name for c in report.checks] == [s.name for s in CHECK_SPECS]
    ran = {c.name for c in report.checks if c.ran}
    assert ran == {s.name for s in CHECK_SPECS if s.scope == "step"}


def test_analyze_is_records_in_findings_out():
    torch.manual_seed(0)
    report = netviz.diagnose(_RNNReLU(), torch.randn(4, 5, 3))
    findings, checks, facts = analyze(report.records, source="model")
    assert [(f.kind, f.module) for f in findings] == [(f.kind, f.module) for f in report.findings]
    assert [c.status for c in checks] == [c.status for c in report.checks]
    assert facts["layers"] == report.summary["depth_layers"]


def _table(probes: list[str], micro: list[int] | None) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "step": [0, 0, 0],
            "module": ["enc", "head", "enc.out_proj"],
            "call": [0, 0, 0],
            "probe": probes,
            "stat": ["x", "x", "l2"],
            "value": [1.0, 2.0, 3.0],
            "order": [0, 1, 2],
        }
    )
    if micro is not None:
        df["micro"] = micro
    return df


def test_forward_rows_come_from_micro_so_custom_probes_count():
    # a custom forward probe: the records say micro 0; the step-level gradient rows of a
    # module used through its weight go right after the module that encloses it
    df = _table(["my_probe", "my_probe", "grad_norm"], micro=[0, 0, -1])
    assert forward_rows(df).tolist() == [True, True, False]
    assert module_order(df) == ["enc", "enc.out_proj", "head"]
    # no forward rows at all: the `order` column alone
    only_steps = _table(["grad_norm"] * 3, micro=[-1, -1, -1])
    assert module_order(only_steps) == ["enc", "head", "enc.out_proj"]


def test_forward_rows_match_needs_forward_of_the_builtin_probes():
    """What the analysis reads from `micro` is what each probe declares (needs_forward)."""
    from netviz.capture.probes import BUILTIN_PROBES

    torch.manual_seed(0)
    net = _RNNReLU()
    probes = ["activation_stats", "grad_norm", "grad_stats", "timestep_grad"]
    probes += ["unit_activity", "weight_stats"]
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    with netviz.watch(net, probes=probes, optimizer=opt) as mon:
        net(torch.randn(4, 5, 3)).sum().backward()
        opt.step()
    records = mon.to_pandas()
    fwd = forward_rows(records)
    for probe, rows in fwd.groupby(records.probe):
        assert set(rows) == {BUILTIN_PROBES[probe].needs_forward}, probe


def test_the_docs_table_of_checks_is_what_the_code_prints():
    section = DOC.read_text().split("### Records in, findings out")[1]
    code = section.split("```python\n")[1].split("```")[0]
    shown = section.split("```text\n")[1].split("```")[0]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "diagnose.md", "exec"), {"__name__": "__docs__"})
    assert out.getvalue() == shown
    assert re.search(r"never runs a model", section)
