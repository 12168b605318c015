"""Every statistic of ``watch`` against an independent computation on toy models."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import netviz


def ref_activation(x: torch.Tensor) -> dict[str, float]:
    """Reference activation statistics, computed directly in float64."""
    x = x.detach().double().flatten()
    fin = x[torch.isfinite(x)]
    nan = float("nan")
    return {
        "mean": fin.mean().item() if fin.numel() else nan,
        "std": fin.std(correction=0).item() if fin.numel() else nan,
        "min": fin.min().item() if fin.numel() else nan,
        "max": fin.max().item() if fin.numel() else nan,
        "abs_mean": fin.abs().mean().item() if fin.numel() else nan,
        "zero_frac": (x == 0).double().mean().item(),
        "nonfinite_frac": (~torch.isfinite(x)).double().mean().item(),
        "numel": float(x.numel()),
    }


def rows(
    df: pd.DataFrame, probe: str, module: str, step: int = 0, call: int = 0
) -> dict[str, float]:
    sel = df[(df.probe == probe) & (df.module == module) & (df.step == step) & (df.call == call)]
    return dict(zip(sel.stat, sel.value))


def assert_stats(got: dict[str, float], want: dict[str, float], rtol: float = 1e-5) -> None:
    assert set(got) == set(want), (sorted(got), sorted(want))
    for k, v in want.items():
        if math.isnan(v):
            assert math.isnan(got[k]), k
        else:
            assert got[k] == pytest.approx(v, rel=rtol, abs=1e-6), k


class Recorder:
    """Independent capture: forward hooks that clone outputs (no netviz code)."""

    def __init__(self, model: nn.Module):
        self.outputs: dict[str, list[torch.Tensor]] = {}
        self.handles = []
        for name, m in model.named_modules():
            self.handles.append(m.register_forward_hook(self._hook(name)))

    def _hook(self, name):
        def hook(module, args, out):
            while not isinstance(out, torch.Tensor):
                out = next(iter(out.values())) if isinstance(out, dict) else out[0]
            self.outputs.setdefault(name, []).append(out.detach().clone())

        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


def test_linear_inplace_relu_records_pre_activation():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 16), nn.ReLU(inplace=True), nn.Linear(16, 3))
    x = torch.randn(32, 5)
    rec = Recorder(net)
    with netviz.watch(net) as mon:
        net(x).square().mean().backward()
        mon.step()
    rec.remove()
    df = mon.to_pandas()
    lin = rows(df, "activation_stats", "0")
    assert lin["min"] < 0  # recorded before the in-place ReLU overwrote it
    assert_stats(lin, ref_activation(rec.outputs["0"][0]))
    assert_stats(rows(df, "activation_stats", "1"), ref_activation(rec.outputs["1"][0]))
    assert_stats(rows(df, "activation_stats", "2"), ref_activation(rec.outputs["2"][0]))
    # grad_norm of each Linear against torch's own norm of its gradients
    for name in ("0", "2"):
        m = net.get_submodule(name)
        want = torch.sqrt(
            m.weight.grad.double().square().sum() + m.bias.grad.double().square().sum()
        )
        assert rows(df, "grad_norm", name)["l2"] == pytest.approx(want.item(), rel=1e-6)
    # ReLU has no parameters: no gradient rows
    assert rows(df, "grad_norm", "1") == {}


class Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return self.lin(torch.tanh(self.lin(x)))


def test_module_called_twice_gets_call_index():
    torch.manual_seed(1)
    net = Twice()
    x = torch.randn(8, 4)
    rec = Recorder(net)
    with netviz.watch(net, probes=["activation_stats"]) as mon:
        net(x)
        mon.step()
        net(x)
        mon.step()
    rec.remove()
    df = mon.to_pandas()
    for step in (0, 1):
        for call in (0, 1):
            got = rows(df, "activation_stats", "lin", step=step, call=call)
            assert_stats(got, ref_activation(rec.outputs["lin"][2 * step + call]))
    assert sorted(df.call.unique()) == [0, 1]


class DictOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 2)

    def forward(self, x):
        return {"first": self.a(x) * 2, "second": x}


class TupleOut(nn.Module):
    def forward(self, x):
        return ("not a tensor", (x - 1, x + 1))


def test_dict_and_tuple_outputs_use_first_tensor_depth_first():
    torch.manual_seed(2)
    net = nn.ModuleDict({"d": DictOut(), "t": TupleOut()})
    x = torch.randn(6, 3)
    with netviz.watch(net, probes=["activation_stats"], modules=["d", "t"]) as mon:
        out = net["d"](x)
        net["t"](x)
        mon.step()
    df = mon.to_pandas()
    assert_stats(rows(df, "activation_stats", "d"), ref_activation(out["first"]))
    assert_stats(rows(df, "activation_stats", "t"), ref_activation(x - 1))


def test_lstm_output_and_gradients():
    torch.manual_seed(3)
    lstm = nn.LSTM(4, 5, num_layers=2, batch_first=True)
    x = torch.randn(3, 7, 4)
    with netviz.watch(lstm, probes=["activation_stats", "grad_norm", "grad_stats"]) as mon:
        out, _ = lstm(x)
        out.sum().backward()
        mon.step()
    df = mon.to_pandas()
    assert_stats(rows(df, "activation_stats", ""), ref_activation(out))
    grads = torch.cat([p.grad.double().flatten() for p in lstm.parameters()])
    assert rows(df, "grad_norm", "")["l2"] == pytest.approx(grads.norm().item(), rel=1e-6)
    gs = rows(df, "grad_stats", "")
    assert gs["mean"] == pytest.approx(grads.mean().item(), rel=1e-5, abs=1e-9)
    assert gs["std"] == pytest.approx(grads.std(correction=0).item(), rel=1e-5)
    assert gs["abs_mean"] == pytest.approx(grads.abs().mean().item(), rel=1e-5)
    assert gs["abs_max"] == pytest.approx(grads.abs().max().item(), rel=1e-6)
    assert gs["l2"] == pytest.approx(grads.norm().item(), rel=1e-6)
    assert gs["zero_frac"] == pytest.approx((grads == 0).double().mean().item())
    assert gs["nonfinite_frac"] == 0


def test_transformer_encoder_training_mode():
    torch.manual_seed(4)
    layer = nn.TransformerEncoderLayer(
        d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True
    )
    enc = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    x = torch.randn(2, 5, 8)
    rec = Recorder(enc)
    with netviz.watch(enc) as mon:
        enc(x).square().mean().backward()
        mon.step()
    rec.remove()
    df = mon.to_pandas()
    name = "layers.1.linear1"
    assert_stats(rows(df, "activation_stats", name), ref_activation(rec.outputs[name][0]))
    # MultiheadAttention owns in_proj_weight directly; out_proj is never called
    # as a module, but its parameters have gradients and must be reported.
    attn = enc.layers[0].self_attn
    want = torch.sqrt(
        attn.in_proj_weight.grad.double().square().sum()
        + attn.in_proj_bias.grad.double().square().sum()
    )
    assert rows(df, "grad_norm", "layers.0.self_attn")["l2"] == pytest.approx(want.item(), rel=1e-6)
    op = attn.out_proj
    want = torch.sqrt(op.weight.grad.double().square().sum() + op.bias.grad.double().square().sum())
    assert rows(df, "grad_norm", "layers.0.self_attn.out_proj")["l2"] == pytest.approx(
        want.item(), rel=1e-6
    )
    assert rows(df, "activation_stats", "layers.0.self_attn.out_proj") == {}


def test_frozen_parameters_produce_no_rows():
    net = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
    for p in net[0].parameters():
        p.requires_grad_(False)
    with netviz.watch(net, probes=["grad_norm", "grad_stats"]) as mon:
        net(torch.randn(4, 3)).sum().backward()
        mon.step()
    df = mon.to_pandas()
    assert set(df.module) == {"1"}


def test_partially_frozen_module_counts_only_trainable_parameters():
    lin = nn.Linear(3, 2)
    lin.bias.requires_grad_(False)
    with netviz.watch(lin, probes=["grad_norm"]) as mon:
        lin(torch.randn(5, 3)).sum().backward()
        mon.step()
    got = rows(mon.to_pandas(), "grad_norm", "")["l2"]
    assert got == pytest.approx(lin.weight.grad.double().norm().item(), rel=1e-6)


class NaNMiddle(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, x):
        h = self.a(x)
        h = h.clone()
        h[0, 0] = float("nan")
        h[1, 1] = float("inf")
        return self.b(torch.nan_to_num(h, nan=0.0, posinf=0.0))


def test_nan_in_output_is_counted_and_finite_stats_ignore_it():
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(4, 4), nn.Identity())
    x = torch.randn(3, 4)
    x[0, 0] = float("nan")
    x[2, 3] = float("-inf")
    with netviz.watch(net, probes=["activation_stats"], modules=["1"]) as mon:
        out = net[1](x)
        mon.step()
    got = rows(mon.to_pandas(), "activation_stats", "1")
    assert_stats(got, ref_activation(out))
    assert got["nonfinite_frac"] == pytest.approx(2 / 12)
    assert np.isfinite(got["mean"]) and np.isfinite(got["std"])


def test_all_nonfinite_output_gives_nan_moments():
    ident = nn.Identity()
    with netviz.watch(ident, probes=["activation_stats"]) as mon:
        ident(torch.full((2, 2), float("nan")))
        mon.step()
    got = rows(mon.to_pandas(), "activation_stats", "")
    assert got["nonfinite_frac"] == 1.0 and got["numel"] == 4
    assert all(math.isnan(got[k]) for k in ("mean", "std", "min", "max", "abs_mean"))


def test_nan_gradient_is_reported_not_dropped():
    lin = nn.Linear(2, 1)
    with netviz.watch(lin, probes=["grad_norm", "grad_stats"]) as mon:
        lin(torch.tensor([[1.0, float("nan")]])).sum().backward()
        mon.step()
    df = mon.to_pandas()
    assert math.isnan(rows(df, "grad_norm", "")["l2"])
    gs = rows(df, "grad_stats", "")
    assert gs["nonfinite_frac"] == pytest.approx(1 / 3)  # weight[0, 1] and ... only NaN entries
    assert math.isfinite(gs["abs_max"])


def test_eval_and_no_grad_record_activations_without_gradient_rows():
    torch.manual_seed(6)
    net = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2)).eval()
    x = torch.randn(5, 3)
    with netviz.watch(net, probes=["activation_stats", "grad_norm", "grad_stats"]) as mon:
        with torch.no_grad():
            out = net(x)
        mon.step()
    df = mon.to_pandas()
    assert set(df.probe) == {"activation_stats"}
    assert_stats(rows(df, "activation_stats", "2"), ref_activation(out))


def test_bfloat16_statistics_are_computed_in_float32():
    x = (torch.arange(4096, dtype=torch.float32) / 1000).to(torch.bfloat16).reshape(64, 64)
    ident = nn.Identity()
    with netviz.watch(ident, probes=["activation_stats"]) as mon:
        ident(x)
        mon.step()
    got = rows(mon.to_pandas(), "activation_stats", "")
    assert_stats(got, ref_activation(x.float()), rtol=1e-6)


def test_weight_stats_update_ratio_against_manual_copy():
    torch.manual_seed(7)
    net = nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 1))
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    after = []  # weights of net[0] after each optimizer step (when the step closes)
    with netviz.watch(net, probes=["weight_stats"], every=2, optimizer=opt) as mon:
        for _ in range(5):
            opt.zero_grad()
            net(torch.randn(8, 6)).square().mean().backward()
            opt.step()
            after.append(torch.cat([p.detach().double().flatten() for p in net[0].parameters()]))
    df = mon.to_pandas()
    assert sorted(df.step.unique()) == [0, 2, 4]
    assert rows(df, "weight_stats", "0", step=0) == {
        "l2": pytest.approx(after[0].norm().item(), rel=1e-6)
    }
    for step, prev in ((2, 0), (4, 2)):
        got = rows(df, "weight_stats", "0", step=step)
        want = (after[step] - after[prev]).norm() / after[prev].norm()
        assert got["l2"] == pytest.approx(after[step].norm().item(), rel=1e-6)
        assert got["update_ratio"] == pytest.approx(want.item(), rel=1e-4)


def test_weight_stats_exact_values():
    lin = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, 4.0]]))
    with netviz.watch(lin, probes=["weight_stats"]) as mon:
        mon.step()  # step 0: l2 = 5, no ratio yet
        with torch.no_grad():
            lin.weight.add_(torch.tensor([[0.03, 0.04]]))
        mon.step()  # step 1: ||dw|| = 0.05, ||w_prev|| = 5 -> 0.01
    df = mon.to_pandas()
    assert rows(df, "weight_stats", "", step=0) == {"l2": pytest.approx(5.0)}
    r1 = rows(df, "weight_stats", "", step=1)
    assert r1["l2"] == pytest.approx(5.05, rel=1e-6)
    assert r1["update_ratio"] == pytest.approx(0.01, rel=1e-5)


def test_every_n_records_only_those_steps_and_optimizer_closes_steps():
    net = nn.Linear(2, 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with netviz.watch(net, every=3, optimizer=opt) as mon:
        for _ in range(7):
            opt.zero_grad()
            net(torch.randn(4, 2)).sum().backward()
            opt.step()
    df = mon.to_pandas()
    assert sorted(df.step.unique()) == [0, 3, 6]
    assert mon.step_index == 7


def test_glob_type_and_predicate_selection():
    net = nn.Sequential(
        nn.Sequential(nn.Linear(2, 3), nn.ReLU()),
        nn.Sequential(nn.Linear(3, 3), nn.ReLU()),
        nn.Linear(3, 1),
    )
    x = torch.randn(2, 2)

    def names(**kw):
        with netviz.watch(net, probes=["activation_stats"], **kw) as mon:
            net(x)
            mon.step()
        return sorted(mon.to_pandas().module.unique())

    assert names(modules="*.0") == ["0.0", "1.0"]
    assert names(modules=["0.*", "2"]) == ["0.0", "0.1", "2"]
    assert names(modules=nn.ReLU) == ["0.1", "1.1"]
    assert names(modules=(nn.ReLU, nn.Linear)) == ["0.0", "0.1", "1.0", "1.1", "2"]
    assert names(modules=lambda n, m: n.startswith("1")) == ["1", "1.0", "1.1"]
    assert names() == ["0.0", "0.1", "1.0", "1.1", "2"]


def test_watch_does_not_change_outputs_or_gradients():
    torch.manual_seed(8)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(inplace=True), nn.LayerNorm(8), nn.Linear(8, 2))
    x = torch.randn(5, 4)
    out_ref = net(x)
    out_ref.sum().backward()
    grads_ref = [p.grad.clone() for p in net.parameters()]
    net.zero_grad(set_to_none=True)
    with netviz.watch(
        net, probes=["activation_stats", "grad_norm", "grad_stats", "weight_stats"]
    ) as mon:
        out = net(x)
        out.sum().backward()
        mon.step()
    assert torch.equal(out, out_ref)
    assert all(torch.equal(p.grad, g) for p, g in zip(net.parameters(), grads_ref))


def test_custom_probe_object():
    class OutputMax(netviz.Probe):
        name = "output_max"
        raw_fields = ("max",)
        stats = ("max",)
        needs_forward = True

        def on_forward(self, ctx, name, module, args, output):
            ctx.emit(name, output.detach().amax().double().reshape(1), call=ctx.call_index(name))

    net = nn.Sequential(nn.Linear(2, 2))
    x = torch.randn(3, 2)
    with netviz.watch(net, probes=[OutputMax()]) as mon:
        out = net(x)
        mon.step()
    df = mon.to_pandas()
    assert df.value.tolist() == [pytest.approx(out.max().item())]
    assert df.probe.tolist() == ["output_max"]
