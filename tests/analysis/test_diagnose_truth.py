"""``diagnose`` says what it checked: check statuses, no all-clear from nothing,
functional activations, errors naming the module, notebook display."""

from __future__ import annotations

from html.parser import HTMLParser

import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import netviz
from netviz import diagnose
from netviz.analysis import CHECKS
from netviz.capture.probes import UnitActivity
from netviz.diagnosis import ModelError


def _x(n=64, d=16):
    return torch.randn(n, d)


class FunctionalNet(nn.Module):
    """fc1 -> act -> fc2 with the activation a plain function; 24 of fc1's 32 units dead."""

    def __init__(self, act, dead: bool = True, std: float | None = None):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 2)
        self.act = act
        with torch.no_grad():
            if dead:
                self.fc1.bias[:24] = -100.0
            if std is not None:
                nn.init.normal_(self.fc1.weight, std=std)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def _dead_share(net, x):
    """Reference: share of fc1's units positive for at most 1% of the batch."""
    with torch.no_grad():
        return ((net.fc1(x) > 0).float().mean(0) <= 0.01).float().mean().item()


RELU_LIKE = {
    "F.relu": F.relu,
    "torch.relu": torch.relu,
    "x.relu()": lambda h: h.relu(),
    "F.relu(inplace=True)": lambda h: F.relu(h, inplace=True),
    "x.relu_()": lambda h: h.relu_(),
    "F.leaky_relu": F.leaky_relu,
    "F.leaky_relu_": F.leaky_relu_,
    "F.gelu": F.gelu,
    "F.silu": F.silu,
    "F.elu": F.elu,
}


# ------------------------------------------------------- functional activations
@pytest.mark.parametrize("name", list(RELU_LIKE))
def test_dead_units_behind_a_function_call_are_found(name):
    net = FunctionalNet(RELU_LIKE[name])
    x = _x()
    report = diagnose(net, x)
    (f,) = report.by_kind("dead_units")
    label = name.split("(")[0].replace("x.", "").replace("F.", "").replace("torch.", "")
    label = label.rstrip("_")
    assert f.module == f"fc1 -> {label}"
    assert f.evidence["dead_frac"] == pytest.approx(_dead_share(net, x)) == pytest.approx(0.75)
    assert report.check("dead_units").status == "found"


def test_function_and_module_give_the_same_number():
    class ModuleNet(FunctionalNet):
        def __init__(self):
            super().__init__(F.relu)
            self.act = nn.ReLU()

    torch.manual_seed(0)
    a = ModuleNet()
    torch.manual_seed(0)
    b = FunctionalNet(F.relu)
    x = _x()
    (fa,) = diagnose(a, x).by_kind("dead_units")
    (fb,) = diagnose(b, x).by_kind("dead_units")
    assert (fa.module, fb.module) == ("act", "fc1 -> relu")
    assert fa.evidence["dead_frac"] == fb.evidence["dead_frac"]


def test_leaky_relu_with_a_real_slope_is_not_dead():
    # slope 0.1 passes a tenth of the gradient: not a dead unit
    report = diagnose(FunctionalNet(lambda h: F.leaky_relu(h, 0.1)), _x())
    assert report.by_kind("dead_units") == []
    assert report.check("dead_units").status == "clear"


@pytest.mark.parametrize(
    ("name", "act", "bound"),
    [
        ("sigmoid", torch.sigmoid, (0.0, 1.0)),
        ("sigmoid", lambda h: h.sigmoid_(), (0.0, 1.0)),
        ("tanh", torch.tanh, (-1.0, 1.0)),
        ("tanh", lambda h: h.tanh(), (-1.0, 1.0)),
        ("tanh", F.tanh, (-1.0, 1.0)),
    ],
)
def test_saturation_behind_a_function_call_is_found(name, act, bound):
    torch.manual_seed(0)
    net = FunctionalNet(act, dead=False, std=5.0)
    x = _x()
    (f,) = diagnose(net, x).by_kind("saturation")
    with torch.no_grad():
        y = torch.sigmoid(net.fc1(x)) if name == "sigmoid" else torch.tanh(net.fc1(x))
    lo, hi = bound
    want = ((y <= lo + 0.01) | (y >= hi - 0.01)).float().mean().item()
    assert f.module == f"fc1 -> {name}"
    assert f.evidence["saturated_frac"] == pytest.approx(want)


def test_calls_inside_blocks_and_shared_functions_are_named_and_counted():
    class Block(nn.Module):
        def __init__(self, dead):
            super().__init__()
            self.fc = nn.Linear(16, 16)
            if dead:
                with torch.no_grad():
                    self.fc.bias.fill_(-100.0)

        def forward(self, x):
            return x + F.relu(self.fc(x))

    net = nn.Sequential(Block(False), Block(True), nn.Linear(16, 2))
    report = diagnose(net, _x())
    (f,) = report.by_kind("dead_units")
    assert f.module == "1.fc -> relu" and f.evidence["dead_frac"] == 1.0
    mods = set(report.records.query("probe == 'unit_activity'").module)
    assert mods == {"0.fc -> relu", "1.fc -> relu"}


def test_probe_replays_are_not_counted_as_the_models_activations():
    # the timestep_grad probe replays the RNN with torch.tanh: that is netviz, not the model
    class RNNHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNN(2, 8)
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            return self.head(self.rnn(x)[0][-1])

    report = diagnose(RNNHead(), torch.randn(12, 4, 2))
    assert "timestep_grad" in set(report.records.probe)
    assert not (report.records.probe == "unit_activity").any()
    assert report.check("saturation").status == "not_run"


# ------------------------------------------------ no all-clear from nothing
def test_zero_recorded_steps_is_an_error_not_an_all_clear():
    net = nn.Sequential(nn.Linear(4, 2))
    with netviz.watch(net) as mon:
        pass
    with pytest.raises(ValueError, match="has no records: nothing was recorded"):
        diagnose(records=mon)
    with pytest.raises(ValueError, match="not an all-clear"):
        diagnose(records=mon.to_pandas())


def test_records_without_unit_activity_do_not_claim_units():
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    x = torch.randn(32, 8)
    with netviz.watch(net, probes=["grad_stats", "activation_stats"]) as mon:
        for _ in range(2):
            net(x).sum().backward()
            mon.step()
            net.zero_grad()
    report = diagnose(records=mon)
    assert report.findings == []
    text = str(report)
    assert "dead" not in text.split("Checks")[0]  # the closing sentence claims no units
    c = report.check("dead_units")
    assert c.status == "not_run" and "no unit_activity records" in c.detail
    assert report.check("flow").status == "clear" and report.check("flow").steps == 2
    assert "not run  dead units" in text


def test_every_check_is_listed_with_a_status():
    report = diagnose(FunctionalNet(F.relu), _x())
    assert [c.name for c in report.checks] == list(CHECKS)
    status = {c.name: c.status for c in report.checks}
    assert status == {
        "nonfinite": "clear",
        "flow": "clear",
        "timesteps": "not_run",
        "dead_units": "found",
        "saturation": "not_run",
        "update_ratio": "not_run",
        "gradient_trend": "not_run",
        "gradient_spike": "not_run",
        "eval_drift": "not_run",
    }
    flow = report.check("flow")
    assert (flow.modules, flow.steps) == (2, 1) and "`fc1` to `fc2`" in flow.detail
    assert "Checks (3 ran, 6 not run):" in str(report)


def test_a_network_without_activations_claims_only_what_ran():
    report = diagnose(nn.Sequential(nn.Linear(16, 8), nn.Linear(8, 2)), _x())
    assert report.findings == []
    closing = str(report).split("\n\n")[1]
    assert closing.startswith("No problems found by the 2 checks that ran")
    assert "units" not in closing


# ------------------------------------------------------------------ errors
def test_forward_error_names_the_module_reached():
    net = nn.Sequential(nn.Linear(16, 4), nn.ReLU(), nn.Linear(5, 2))
    net.eval()
    with pytest.raises(ModelError, match=r"forward raised RuntimeError in `2` \(Linear\)") as info:
        diagnose(net, _x())
    assert isinstance(info.value.__cause__, RuntimeError)  # the original, chained
    assert "(64, 16)" in str(info.value)  # the batch's shapes
    assert not net.training and not any(m._forward_hooks for m in net.modules())
    assert not any(m._forward_pre_hooks for m in net.modules())


def test_loss_error_is_a_model_error():
    def bad_loss(out, y):
        raise KeyError("label")

    with pytest.raises(ModelError, match="`loss_fn` raised KeyError"):
        diagnose(nn.Linear(16, 2), _x(), torch.zeros(64), loss_fn=bad_loss)


# --------------------------------------------------------------- notebooks
class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        assert not any(k.startswith("on") for k, _ in attrs)  # no event handlers

    def handle_data(self, data):
        self.text.append(data)


def test_report_displays_as_its_findings_in_notebooks():
    report = diagnose(FunctionalNet(F.relu), _x())

    class P:
        def __init__(self):
            self.out = ""

        def text(self, s):
            self.out += s

    p = P()
    report._repr_pretty_(p, cycle=False)
    assert p.out == str(report) and "dead units at `fc1 -> relu`" in p.out
    page = report._repr_html_()
    parser = _Tags()
    parser.feed(page)
    assert "script" not in parser.tags and "<script" not in page.lower()
    text = "".join(parser.text)
    assert "dead units at fc1 -> relu" in text and "not run" in text
    assert parser.tags.count("tr") == 1 + len(CHECKS)  # header + one row per check
    assert "fc1 -&gt; relu" in page  # escaped


def test_unit_activity_records_from_watch_match_the_model_path():
    # the records path sees the nn.ReLU module; so does diagnose(model): one number
    net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2))
    with torch.no_grad():
        net[0].bias[:24] = -100.0
    x = _x()
    with netviz.watch(net, probes=["grad_stats", "activation_stats", UnitActivity()]) as mon:
        net(x).sum().backward()
        mon.step()
    net.zero_grad()
    rec = diagnose(records=mon.to_pandas())
    live = diagnose(net, x)
    key = [(f.kind, f.module, f.evidence["dead_frac"]) for f in rec.by_kind("dead_units")]
    assert key == [(f.kind, f.module, f.evidence["dead_frac"]) for f in live.by_kind("dead_units")]
    assert key == [("dead_units", "1", 0.75)]
    assert isinstance(rec.records, pd.DataFrame)


def test_token_features_are_the_units_after_a_linear():
    # (batch, tokens, features): 48 of the 64 feed-forward features are dead
    class FF(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear1 = nn.Linear(8, 64)
            self.linear2 = nn.Linear(64, 8)
            with torch.no_grad():
                self.linear1.bias[:48] = -100.0

        def forward(self, x):
            return self.linear2(F.relu(self.linear1(x)))

    (f,) = diagnose(FF(), torch.randn(16, 6, 8)).by_kind("dead_units")
    assert (f.module, f.evidence["dead_frac"]) == ("linear1 -> relu", 0.75)


def test_new_thresholds_and_checks_validate():
    from netviz.analysis import Check, Thresholds

    with pytest.raises(ValueError, match="trend_min_steps"):
        Thresholds(trend_min_steps=2.5)
    with pytest.raises(ValueError, match="spike_factor must be > 1"):
        Thresholds(spike_factor=0.5)
    with pytest.raises(ValueError, match="drift_scale"):
        Thresholds(drift_scale=1.0)
    with pytest.raises(ValueError, match=r"Check\.name"):
        Check("nope", "clear", "x")
    with pytest.raises(ValueError, match=r"Check\.status"):
        Check("flow", "maybe", "x")
    assert Check("flow", "not_run", "why").ran is False


def test_a_report_can_be_diagnosed_again_from_its_records():
    live = diagnose(FunctionalNet(F.relu), _x())
    again = diagnose(records=live)  # the report's records
    assert [(f.kind, f.module) for f in again] == [(f.kind, f.module) for f in live]
    assert again.summary["source"] == "records"
