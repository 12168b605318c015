"""``diagnose`` on built pathologies and healthy controls, with fixed seeds."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import netviz
from netviz import Finding, Report, Thresholds, diagnose

ROOT = Path(__file__).resolve().parents[2]


def _sigmoid7():
    spec = importlib.util.spec_from_file_location("sigmoid7", ROOT / "examples" / "sigmoid7.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def deep_sigmoid(depth: int = 10, width: int = 16) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.Sigmoid()]
    return nn.Sequential(*layers, nn.Linear(width, 2))


def he_relu(depth: int = 8, width: int = 64) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        lin = nn.Linear(16 if i == 0 else width, width)
        nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, 3))


class ResBlock(nn.Module):
    def __init__(self, width: int, norm: type[nn.Module]):
        super().__init__()
        self.norm = norm(width)
        self.fc = nn.Linear(width, width)
        self.act = nn.ReLU()

    def forward(self, x):
        return x + self.act(self.fc(self.norm(x)))


def residual_mlp(norm: type[nn.Module], blocks: int = 12, width: int = 32) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(16, width), *[ResBlock(width, norm) for _ in range(blocks)], nn.Linear(width, 3)
    )


class Poison(nn.Module):
    """Finite for inputs > 0, NaN elsewhere: log of a shifted input."""

    def forward(self, x):
        return torch.log(x - 0.5)


class AbsViaSqrt(nn.Module):
    """|x| as sqrt(x * x): finite forward, NaN derivative (0 * inf) where x is exactly 0."""

    def forward(self, x):
        return torch.sqrt(x * x)


class RNNClassifier(nn.Module):
    """Vanilla RNN with W_hh = scale * orthogonal; classifies from the last step."""

    def __init__(self, scale: float, hidden: int = 16):
        super().__init__()
        self.rnn = nn.RNN(2, hidden, bias=False)
        self.head = nn.Linear(hidden, 2)
        q, _ = torch.linalg.qr(torch.randn(hidden, hidden))
        with torch.no_grad():
            self.rnn.weight_hh_l0.copy_(scale * q)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[-1])


def _x(n=64, d=16):
    return torch.randn(n, d)


# ---------------------------------------------------------------- pathologies
def test_deep_sigmoid_mlp_vanishes():
    report = diagnose(deep_sigmoid(), _x(), torch.randint(0, 2, (64,)))
    assert report.kinds() == ["vanishing_gradients"]
    f = report.findings[0]
    assert f.module == "0"  # the input-side end
    assert f.evidence["ratio"] < 1e-3
    assert math.isclose(f.evidence["ratio"], f.evidence["input_side"] / f.evidence["output_side"])
    assert "`0`" in f.message and "`20`" in f.message  # the range: first and last layer


def test_vanishing_ratio_matches_a_manual_computation():
    net = deep_sigmoid()
    x, y = _x(), torch.randint(0, 2, (64,))
    report = diagnose(net, x, y)
    F.cross_entropy(net(x), y).backward()

    def rms(m):
        g = torch.cat([p.grad.reshape(-1) for p in m.parameters()])
        return g.pow(2).mean().sqrt().item()

    ratio = rms(net[0]) / rms(net[20])
    assert report.findings[0].evidence["ratio"] == pytest.approx(ratio, rel=1e-4)


def test_seven_layer_net_vanishes_without_skips_and_not_with():
    s7 = _sigmoid7()
    plain = diagnose(*s7.build())
    assert plain.kinds() == ["vanishing_gradients"]
    assert plain.findings[0].module == "inp"
    assert plain.findings[0].evidence["orders_of_magnitude"] > 4
    skip = diagnose(*s7.build_skip())
    assert skip.findings == [] and skip.ok
    assert "No problems found" in str(skip)


def test_tanh_with_large_weights_saturates():
    layers: list[nn.Module] = []
    for _ in range(4):
        lin = nn.Linear(16, 16)
        nn.init.normal_(lin.weight, std=3.0)
        layers += [lin, nn.Tanh()]
    net = nn.Sequential(*layers, nn.Linear(16, 2))
    report = diagnose(net, _x())
    sat = report.by_kind("saturation")
    assert [f.module for f in sat] == ["1", "3", "5", "7"]
    # reference: the share of |tanh| >= 0.99 of the second tanh's output
    x = _x()
    report = diagnose(net, x)
    with torch.no_grad():
        h = net[:4](x)
    want = (h.abs() >= 0.99).float().mean().item()
    got = {f.module: f for f in report.by_kind("saturation")}["3"].evidence["saturated_frac"]
    assert got == pytest.approx(want)
    assert all(f.severity in ("warning", "error") for f in sat)


def test_relu_with_large_negative_bias_is_dead():
    net = nn.Sequential(
        nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2)
    )
    with torch.no_grad():
        net[2].bias.fill_(-50.0)
    report = diagnose(net, _x())
    dead = report.by_kind("dead_units")
    assert [(f.module, f.severity, f.evidence["dead_frac"]) for f in dead] == [("3", "error", 1.0)]
    # no gradient reaches the layers below the dead ReLU
    vanish = report.by_kind("vanishing_gradients")
    assert vanish and vanish[0].evidence["input_side"] == 0.0
    assert "No gradient at all" in vanish[0].message


def test_half_dead_layer_is_a_warning_with_the_right_fraction():
    net = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))
    with torch.no_grad():
        net[0].bias[:5] = -100.0  # 5 of 8 units can never fire
    report = diagnose(net, _x())
    (f,) = report.by_kind("dead_units")
    assert (f.module, f.severity, f.evidence["dead_frac"]) == ("1", "warning", 5 / 8)


def test_nan_in_the_middle_names_only_that_module():
    net = nn.Sequential(
        nn.Linear(16, 16),
        nn.ReLU(),
        nn.Linear(16, 16),
        Poison(),
        nn.Linear(16, 16),
        nn.ReLU(),
        nn.Linear(16, 2),
    )
    report = diagnose(net, _x(), torch.randint(0, 2, (64,)))
    assert report.kinds() == ["nonfinite"]
    (f,) = report.findings
    assert f.module == "3" and f.severity == "error"
    assert f.evidence["downstream"] == 3  # 4, 5, 6 inherit the NaN
    assert 0 < f.evidence["nonfinite_frac"] <= 1


def test_nonfinite_gradient_with_finite_forward_names_the_module():
    net = nn.Sequential(nn.Linear(16, 16), AbsViaSqrt(), nn.Linear(16, 2))
    with torch.no_grad():
        net[0].weight[0] = 0.0  # unit 0 is exactly 0 for every input
        net[0].bias[0] = 0.0
    report = diagnose(net, _x())
    (f,) = report.by_kind("nonfinite")
    assert f.module == "0" and "gradient" in f.message
    assert f.evidence["nonfinite_frac"] > 0
    # reference: the same backward by hand gives a non-finite gradient in "0" only
    net(_x()).sum().backward()
    assert not torch.isfinite(net[0].weight.grad).all()
    assert torch.isfinite(net[2].weight.grad).all()


def test_rnn_vanishes_and_explodes_through_time():
    x = 1e-3 * torch.randn(40, 8, 2)
    torch.manual_seed(0)
    small = diagnose(RNNClassifier(0.5), x)
    # through time only (the tiny inputs also make the depth flow vanish at `rnn`)
    (f,) = [f for f in small.by_kind("vanishing_gradients") if "through_time" in f.evidence]
    assert f.module == "rnn" and f.severity == "error"
    assert f.evidence["sigma_max_w_hh"] == pytest.approx(0.5, rel=1e-5)
    assert f.evidence["ratio"] < 1e-6
    torch.manual_seed(0)
    large = diagnose(RNNClassifier(1.5), x)
    found = [f for f in large.by_kind("exploding_gradients") if "through_time" in f.evidence]
    assert found and found[0].evidence["ratio"] > 1e3
    assert found[0].evidence["sigma_max_w_hh"] == pytest.approx(1.5, rel=1e-5)
    assert "t = 0" in found[0].message


# ---------------------------------------------------------- healthy controls
@pytest.mark.parametrize(
    "build",
    [
        pytest.param(he_relu, id="relu-he"),
        pytest.param(lambda: residual_mlp(nn.LayerNorm), id="residual-layernorm"),
        pytest.param(lambda: residual_mlp(nn.BatchNorm1d), id="residual-batchnorm"),
        pytest.param(lambda: RNNClassifier(1.0), id="rnn-orthogonal"),
    ],
)
def test_healthy_networks_get_no_findings(build):
    net = build()
    x = 1e-3 * torch.randn(40, 8, 2) if isinstance(net, RNNClassifier) else _x()
    report = diagnose(net, x, torch.randint(0, 2, (x.shape[-2] if x.dim() == 3 else 64,)))
    assert report.findings == [], str(report)
    assert report.ok


# ------------------------------------------------------ the model is untouched
def test_model_state_is_restored_exactly():
    net = nn.Sequential(
        nn.Linear(16, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2)
    )
    net.eval()
    net[3].train()  # mixed modes must come back as they were
    g = torch.ones_like(net[0].weight)
    net[0].weight.grad = g  # one gradient set, the others None
    params = {n: p.detach().clone() for n, p in net.named_parameters()}
    ids = {n: id(p) for n, p in net.named_parameters()}
    buffers = {n: b.clone() for n, b in net.named_buffers()}
    modes = [m.training for m in net.modules()]
    x, y = _x(), torch.randint(0, 2, (64,))
    rng = torch.get_rng_state()
    report = diagnose(net, x, y)
    assert isinstance(report, Report)
    assert torch.equal(torch.get_rng_state(), rng)
    for n, p in net.named_parameters():
        assert id(p) == ids[n] and torch.equal(p, params[n])
    assert net[0].weight.grad is g and torch.equal(g, torch.ones_like(g))
    assert all(p.grad is None for n, p in net.named_parameters() if n != "0.weight")
    for n, b in net.named_buffers():
        assert torch.equal(b, buffers[n]), n  # running stats untouched
    assert [m.training for m in net.modules()] == modes
    for m in net.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks
        assert not m._backward_hooks and not m._backward_pre_hooks


def test_state_is_restored_when_the_forward_fails():
    net = nn.Sequential(nn.Linear(16, 4))
    net.eval()
    with pytest.raises(RuntimeError):
        diagnose(net, torch.randn(8, 5))  # wrong input width
    assert not net.training and net[0].weight.grad is None
    assert not net[0]._forward_hooks


def test_eval_mode_option_is_reported():
    report = diagnose(he_relu(), _x(), train=False)
    assert report.summary["mode"] == "eval"
    assert "eval mode" in str(report)


# ---------------------------------------------------------- batches, losses
def test_iterable_of_batches_runs_one_step_each():
    net = deep_sigmoid()
    batches = [(_x(), torch.randint(0, 2, (64,))) for _ in range(3)]
    report = diagnose(net, batches)
    assert sorted(report.records.step.unique()) == [0, 1, 2]
    (f,) = report.findings
    assert f.evidence["steps_seen"] == 3 and "3 of 3 recorded steps" in f.message
    assert len(diagnose(net, iter(batches), max_batches=2).records.step.unique()) == 2


def test_default_losses_and_custom_loss():
    net = nn.Sequential(nn.Linear(16, 3))
    x = _x()
    assert "cross_entropy" in diagnose(net, x, torch.randint(0, 3, (64,))).summary["loss"]
    assert "mse" in diagnose(net, x, torch.randn(64, 3)).summary["loss"]
    assert "sum" in diagnose(net, x).summary["loss"]

    def my_loss(out, y):
        return (out - y).abs().mean()

    assert diagnose(net, x, torch.randn(64, 3), loss_fn=my_loss).summary["loss"] == "my_loss"
    # the default no-target loss gives each output element the gradient 1/N
    net.zero_grad()
    (net(x).sum() / 64).backward()
    want = torch.cat([net[0].weight.grad.ravel(), net[0].bias.grad]).norm().item()
    report = diagnose(net, x)
    got = report.records.query("probe == 'grad_stats' and stat == 'l2'").value.item()
    assert got == pytest.approx(want, rel=1e-5)


def test_tuple_and_dict_inputs():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 2)

        def forward(self, x, scale=1.0):
            return self.a(x) * scale

    x = torch.randn(8, 4)
    assert diagnose(Two(), (x, 2.0)).summary["steps"] == 1
    assert diagnose(Two(), {"x": x, "scale": 2.0}).summary["steps"] == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"inputs": None}, TypeError, "`inputs` is required"),
        ({"inputs": 3}, TypeError, "`inputs` must be"),
        ({"inputs": [torch.randn(2, 4)]}, TypeError, r"\(inputs, target\) pair"),
        ({"inputs": [], "max_batches": None}, ValueError, "no batches"),
        ({"inputs": [(torch.randn(2, 4), None)], "target": torch.zeros(2)}, TypeError, "`target`"),
        ({"inputs": torch.randn(2, 4), "loss_fn": 3}, TypeError, "`loss_fn`"),
        ({"inputs": torch.randn(2, 4), "loss_fn": lambda o: o}, ValueError, "scalar"),
        ({"inputs": torch.randn(2, 4), "target": torch.zeros(5, 7)}, ValueError, "pass `loss_fn"),
        ({"inputs": torch.randn(2, 4), "max_batches": 0}, ValueError, "`max_batches`"),
        ({"inputs": torch.randn(2, 4), "thresholds": {"a": 1}}, TypeError, "`thresholds`"),
    ],
)
def test_bad_arguments_say_what_is_wrong(kwargs, error, match):
    with pytest.raises(error, match=match):
        diagnose(nn.Linear(4, 2), **kwargs)


def test_frozen_model_is_an_error():
    net = nn.Linear(4, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="does not require grad"):
        diagnose(net, torch.randn(3, 4))
    assert all(p.grad is None for p in net.parameters())


def test_thresholds_validate_and_change_decisions():
    with pytest.raises(ValueError, match="vanishing_ratio"):
        Thresholds(vanishing_ratio=0.0)
    with pytest.raises(ValueError, match="dead_frac"):
        Thresholds(dead_frac=1.5)
    with pytest.raises(ValueError, match="vanishing_ratio < 1 < exploding_ratio"):
        Thresholds(exploding_ratio=0.5)
    s7 = _sigmoid7()
    lenient = diagnose(*s7.build(), thresholds=Thresholds(vanishing_ratio=1e-8))
    assert lenient.findings == []


def test_finding_validates_kind_and_severity():
    with pytest.raises(ValueError, match="kind"):
        Finding("slow", "x", "warning", "m")
    with pytest.raises(ValueError, match="severity"):
        Finding("dead_units", "x", "fatal", "m")


# ---------------------------------------------------------- report surface
def test_report_text_table_and_plot():
    s7 = _sigmoid7()
    report = diagnose(*s7.build())
    text = str(report)
    assert text.startswith("netviz diagnosis of SevenLayer (1 batch, loss: cross_entropy")
    assert "1. [WARNING] vanishing gradients at `inp`" in text
    assert "He initialisation" in text and "skip" in text  # remedies
    df = report.to_pandas()
    assert list(df.columns) == ["kind", "module", "severity", "message", "evidence"]
    assert df.kind.tolist() == ["vanishing_gradients"] and df.evidence[0]["ratio"] < 1e-3
    assert repr(report) == "<netviz.Report: 1 finding (1 warning), 1 batch>"
    ax = report.plot()
    assert ax.get_yscale() == "log"
    assert ax.get_xticklabels()[0].get_text() == "inp"


class SharedReLU(nn.Module):
    """One nn.ReLU applied after both layers; the second application is dead."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 16)
        self.fc2 = nn.Linear(16, 16)
        self.act = nn.ReLU()
        self.head = nn.Linear(16, 2)
        with torch.no_grad():
            self.fc2.bias.fill_(-100.0)

    def forward(self, x):
        return self.head(self.act(self.fc2(self.act(self.fc1(x)))))


def test_shared_relu_is_judged_per_call():
    report = diagnose(SharedReLU(), _x())
    (f,) = report.by_kind("dead_units")
    assert (f.module, f.evidence["call"], f.evidence["dead_frac"]) == ("act", 1.0, 1.0)
    assert "`act` (call 1)" in f.message


def test_lstm_through_time_gets_gate_advice():
    class LSTMHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(4, 32, batch_first=True)
            self.head = nn.Linear(32, 2)

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])

    report = diagnose(LSTMHead(), torch.randn(16, 30, 4), torch.randint(0, 2, (16,)))
    (f,) = report.by_kind("vanishing_gradients")
    assert f.module == "lstm" and f.evidence["gated"] == 1.0
    assert "forget gate" in f.message and "sigma_max_w_hh" not in f.evidence


def test_nonfinite_inputs_are_blamed_not_the_first_layer():
    net = deep_sigmoid(depth=2)
    x = _x()
    x[3, 5] = float("nan")
    report = diagnose(net, x)
    (f,) = report.findings
    assert (f.kind, f.module, f.evidence["nonfinite_inputs"]) == ("nonfinite", "<inputs>", 1.0)


def test_modules_selects_what_is_diagnosed_with_the_selectors_of_watch():
    net = deep_sigmoid()
    # comparing only the last two layers hides the vanishing gradient
    assert diagnose(net, _x(), modules=["18", "20"]).findings == []
    # a module type, as in watch: every Linear, so the vanishing gradient shows again
    report = diagnose(net, _x(), modules=nn.Linear)
    assert report.kinds() == ["vanishing_gradients"]
    assert report.summary["depth_layers"] == [str(i) for i in range(0, 21, 2)]
    # a predicate (name, module) -> bool
    last = diagnose(net, _x(), modules=lambda name, m: name in ("18", "20"))
    assert last.summary["depth_layers"] == ["18", "20"]
    with pytest.raises(ValueError, match="`modules`"):
        diagnose(net, _x(), modules=["nope"])
    with pytest.raises(TypeError, match="`modules`"):
        diagnose(net, _x(), modules=3)


def test_modules_of_a_record_table_are_globs_over_the_recorded_names():
    full = diagnose(deep_sigmoid(), _x())
    assert diagnose(records=full, modules=["18", "20"]).findings == []
    assert diagnose(records=full, modules="*").kinds() == ["vanishing_gradients"]
    picked = diagnose(records=full, modules=["1?", "20"]).summary["depth_layers"]
    assert picked == ["10", "12", "14", "16", "18", "20"]  # network order, not name order
    with pytest.raises(netviz.NetvizValueError, match="match no module name in the records"):
        diagnose(records=full, modules=["nope"])
    with pytest.raises(netviz.NetvizTypeError, match="holds module names only"):
        diagnose(records=full, modules=nn.Linear)


def test_a_record_table_passed_as_the_model_is_a_clear_type_error():
    full = diagnose(deep_sigmoid(), _x())
    for wrong in (full.records, full):
        with pytest.raises(netviz.NetvizTypeError, match=r"diagnose\(records=table\)"):
            diagnose(wrong)
    with pytest.raises(TypeError, match="needs a model"):
        diagnose()
    with pytest.raises(TypeError, match="reads a record table alone"):
        diagnose(deep_sigmoid(), _x(), records=full.records)


def test_works_inside_no_grad():
    with torch.no_grad():
        report = diagnose(deep_sigmoid(), _x())
    assert report.kinds() == ["vanishing_gradients"]
