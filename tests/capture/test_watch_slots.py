"""The capture hot path: CPU rows written in place (per-probe slabs), module indices,
the dense ``grad_norm`` close. Every value is checked against numpy / torch in float64
computed from tensors captured independently of netviz."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import netviz
from netviz.capture import _fused
from netviz.capture.probes import ActivationStats
from netviz.errors import NetvizValueError


def _reference(x: torch.Tensor) -> dict[str, float]:
    a = x.detach().double().numpy().ravel()
    fin = a[np.isfinite(a)]
    return {
        "mean": fin.mean(),
        "std": fin.std(),
        "min": fin.min(),
        "max": fin.max(),
        "abs_mean": np.abs(fin).mean(),
        "zero_frac": float((a == 0).sum()) / a.size,
        "nonfinite_frac": 1 - fin.size / a.size,
        "numel": float(a.size),
    }


class _Tape:
    """Outputs of every call of the given modules, in call order (our own hooks)."""

    def __init__(self, modules: dict[str, nn.Module]):
        self.calls: list[tuple[str, bool, torch.Tensor]] = []
        self.handles = [m.register_forward_hook(self._hook(n)) for n, m in modules.items()]

    def _hook(self, name):
        def hook(module, args, out):
            self.calls.append((name, torch.is_grad_enabled(), out.detach().clone()))

        return hook


def _activation_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[df.probe == "activation_stats"].pivot_table(
        index=["step", "phase", "micro", "module", "call"], columns="stat", values="value"
    )


def _check_against_tape(df: pd.DataFrame, tape: _Tape, step: int = 0) -> None:
    rows = _activation_rows(df)
    seen: dict[tuple, int] = {}
    micro = {True: -1, False: -1}
    last_forward = None
    for name, train, out in tape.calls:
        if name == "first":  # marks the start of a forward in these models
            micro[train] += 1
            seen = {k: v for k, v in seen.items() if k[0] != train}
            last_forward = train
        assert last_forward == train
        call = seen.get((train, name), 0)
        seen[(train, name)] = call + 1
        got = rows.loc[(step, "train" if train else "eval", micro[train], name, call)]
        want = _reference(out)
        for stat, value in want.items():  # float32 sums: the kernel's stated bound
            exact = stat in ("min", "max", "numel", "zero_frac", "nonfinite_frac")
            scale = 1e-6 * want["abs_mean"]  # float32 sums of values of this size
            tol = (
                pytest.approx(value, abs=0) if exact else pytest.approx(value, rel=1e-6, abs=scale)
            )
            assert got[stat] == tol, (name, call, stat)
    assert len(rows.loc[step]) == len(tape.calls)


class Repeated(nn.Module):
    """``shared`` runs three times per forward; ``first`` opens every forward."""

    def __init__(self):
        super().__init__()
        self.first = nn.Linear(5, 6)
        self.shared = nn.Linear(6, 6)
        self.last = nn.Linear(6, 2)

    def forward(self, x):
        h = self.first(x)
        for _ in range(3):
            h = torch.tanh(self.shared(h))
        return self.last(h)


@pytest.fixture(autouse=True)
def _needs_fused():
    if _fused.load() is None:  # the slabs are also used without it; the C path needs it
        pytest.skip("the fused kernel is not available here")


def test_repeated_calls_micro_batches_and_eval_forwards_land_in_their_rows():
    torch.manual_seed(0)
    net = Repeated()
    tape = _Tape({"first": net.first, "shared": net.shared, "last": net.last})
    with netviz.watch(net) as mon:
        for _ in range(2):  # two micro-batches
            net(torch.randn(4, 5)).sum().backward()
        with torch.no_grad():  # an eval forward inside the step
            net(torch.randn(3, 5))
        net(torch.randn(2, 5)).sum().backward()  # a third training micro-batch
        mon.step()
    df = mon.to_pandas()
    _check_against_tape(df, tape)
    act = df[df.probe == "activation_stats"]
    assert sorted(act[act.phase == "train"].micro.unique()) == [0, 1, 2]
    assert sorted(act[act.phase == "eval"].micro.unique()) == [0]
    assert sorted(act[act.module == "shared"].call.unique()) == [0, 1, 2]
    order = act.groupby("module").order.first().to_dict()
    assert order == {"first": 0, "shared": 1, "last": 2}


def test_a_failed_forward_is_rolled_back():
    torch.manual_seed(1)

    class Fails(Repeated):
        boom = False

        def forward(self, x):
            h = self.first(x)
            if self.boom:
                raise RuntimeError("boom")
            return self.last(torch.tanh(self.shared(h)))

    net = Fails()
    tape = _Tape({"first": net.first, "shared": net.shared, "last": net.last})
    with netviz.watch(net) as mon:
        net(torch.randn(4, 5)).sum().backward()
        net.boom = True
        with pytest.raises(RuntimeError, match="boom"):
            net(torch.randn(4, 5))
        net.boom = False
        del tape.calls[-1]  # the failed forward's "first": not a record
        net(torch.randn(4, 5)).sum().backward()
        mon.step()
    df = mon.to_pandas()
    _check_against_tape(df, tape)
    assert sorted(df[df.probe == "activation_stats"].micro.unique()) == [0, 1]


def test_slabs_grow_past_their_first_capacity_and_are_reused_step_after_step():
    torch.manual_seed(2)
    net = nn.Sequential(*[nn.Linear(3, 3) for _ in range(150)])  # > 64 rows per step
    tape = _Tape({str(i): m for i, m in enumerate(net)})
    with netviz.watch(net, modules=nn.Linear) as mon:
        for step in range(3):
            tape.calls.clear()
            net(torch.randn(2, 3)).sum().backward()
            mon.step()
            df = mon.to_pandas()
            rows = _activation_rows(df).loc[step]
            assert len(rows) == 150
            for name, _, out in tape.calls:
                got = rows.loc[("train", 0, name, 0)]
                want = _reference(out)
                assert got["mean"] == pytest.approx(want["mean"], abs=1e-6 * want["abs_mean"])
                assert got["max"] == _reference(out)["max"]


def test_fast_and_general_rows_of_one_probe_keep_their_forward_order():
    """A float32 output takes the C path, a bfloat16 one the general path: one slab."""
    torch.manual_seed(3)

    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.b = nn.Linear(4, 4).to(torch.bfloat16)
            self.c = nn.Linear(4, 4)

        def forward(self, x):
            h = self.a(x)
            h = self.b(h.to(torch.bfloat16)).float()
            return self.c(h)

    net = Mixed()
    tape = _Tape({"a": net.a, "b": net.b, "c": net.c})
    with netviz.watch(net, probes=["activation_stats"]) as mon:
        net(torch.randn(5, 4))
        mon.step()
    df = mon.to_pandas()
    assert df.drop_duplicates("module").module.tolist() == ["a", "b", "c"]  # row order too
    assert df.groupby("module").order.first().to_dict() == {"a": 0, "b": 1, "c": 2}
    for name, _, out in tape.calls:
        got = _activation_rows(df).loc[(0, "train", 0, name, 0)]
        want = _reference(out.float())
        assert got["mean"] == pytest.approx(want["mean"], rel=1e-6)
        assert got["numel"] == want["numel"]


def _norms(net: nn.Module) -> dict[str, float]:
    out = {}
    for name, m in net.named_modules():
        grads = [p.grad for p in m.parameters(recurse=False) if p.grad is not None]
        if grads:
            out[name] = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))
    return out


def test_grad_norm_dense_close_matches_float64_and_follows_replaced_parameters():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3), nn.Linear(3, 2))
    net[3].bias.requires_grad_(False)  # frozen: not counted
    with netviz.watch(net, probes=["grad_norm"]) as mon:
        net(torch.randn(7, 6)).pow(2).sum().backward()
        want0 = _norms(net)
        mon.step()
        # a parameter replaced after attach: its new gradient is read
        net[0].weight = nn.Parameter(torch.randn(5, 6, dtype=torch.float64).float() * 10)
        net.zero_grad()
        net(torch.randn(7, 6)).pow(2).sum().backward()
        want1 = _norms(net)
        mon.step()
    df = mon.to_pandas()
    for step, want in ((0, want0), (1, want1)):
        got = df[df.step == step].set_index("module").value.to_dict()
        assert set(got) == set(want)
        for name, value in want.items():
            assert got[name] == pytest.approx(value, rel=1e-6)  # float32 squares
    assert df.micro.unique().tolist() == [-1]


@pytest.mark.parametrize("kind", ["sparse", "strided"])
def test_grad_norm_general_path_for_other_gradients(kind):
    torch.manual_seed(5)
    emb = nn.Embedding(10, 4, sparse=kind == "sparse")
    lin = nn.Linear(4, 3)
    net = nn.Sequential(emb, lin)
    with netviz.watch(net, probes=["grad_norm"]) as mon:
        net(torch.tensor([1, 2, 2, 7])).pow(2).sum().backward()
        if kind == "strided":
            lin.weight.grad = lin.weight.grad.t().contiguous().t()  # not contiguous
        want = {
            "0": float(emb.weight.grad.to_dense().double().norm()),
            "1": float(
                torch.sqrt(
                    lin.weight.grad.double().pow(2).sum() + lin.bias.grad.double().pow(2).sum()
                )
            ),
        }
        mon.step()
    got = mon.to_pandas().set_index("module").value.to_dict()
    assert got["0"] == pytest.approx(want["0"], rel=1e-6)
    assert got["1"] == pytest.approx(want["1"], rel=1e-6)


def test_a_module_added_after_attach_is_not_watched_and_breaks_nothing():
    torch.manual_seed(6)
    net = nn.Sequential(nn.Linear(3, 3))
    tape = _Tape({"0": net[0]})
    with netviz.watch(net) as mon:
        net.append(nn.Linear(3, 2))  # added after attach: no hook, not in ctx.modules
        net(torch.randn(4, 3)).sum().backward()
        mon.step()
    df = mon.to_pandas()
    assert set(df.module) == {"0"}
    got = _activation_rows(df).loc[(0, "train", 0, "0", 0)]
    assert got["std"] == pytest.approx(_reference(tape.calls[0][2])["std"], rel=1e-6)


def test_unrecorded_steps_never_enter_the_monitor(monkeypatch):
    net = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    entered = []
    with netviz.watch(net, every=3) as mon:
        real = mon._on_forward
        monkeypatch.setattr(mon, "_on_forward", lambda *a: entered.append(a[1]) or real(*a))
        for _ in range(6):
            net(torch.randn(2, 3)).sum().backward()
            mon.step()
    assert entered == ["0", "1"] * 2  # steps 0 and 3 only
    assert sorted(mon.to_pandas().step.unique()) == [0, 3]


def test_watch_kernel_option_applies_to_named_probes_only():
    net = nn.Linear(3, 3)
    own = ActivationStats()
    mon = netviz.watch(net, probes=["grad_norm", "grad_stats", own], kernel="eager")
    kernels = [p._scratch.kernel for p in mon.probes]
    mon.detach()
    assert kernels == ["eager", "eager", "auto"]
    with pytest.raises(NetvizValueError, match="`kernel` must be None or one of"):
        netviz.watch(net, kernel="cuda")
