"""A hook never breaks the user's forward: transforms, meta/fake/sparse/nested tensors, inference mode.

Also the accuracy cases that used to give inf or 0 (float16 gradients of
large finite values, activations of 1e18 and 1e-30) and the attach-time
warning when the fused kernel is not used.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import netviz
from netviz.capture import _fused
from netviz.capture.probes import ActivationStats, GradStats
from netviz.capture.stats import ACTIVATION_STATS, finalize_moments, tensor_moments

KERNELS = ["auto", "eager"]


def act_stats(mon) -> dict[tuple[str, str], float]:
    df = mon.to_pandas()
    df = df[df.probe == "activation_stats"]
    return {(r.module, r.stat): r.value for r in df.itertuples()}


def np_stats(x: torch.Tensor) -> dict[str, float]:
    v = x.detach().double().numpy().reshape(-1)
    return {
        "mean": v.mean(),
        "std": v.std(),
        "min": v.min(),
        "max": v.max(),
        "abs_mean": np.abs(v).mean(),
        "zero_frac": (v == 0).mean(),
        "nonfinite_frac": 0.0,
        "numel": float(v.size),
    }


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))


# ------------------------------------------------------------- torch.func


@pytest.mark.parametrize("kernel", KERNELS)
def test_func_grad_over_functional_call(kernel):
    model = mlp()
    x = torch.randn(5, 4)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p, inputs):
        return torch.func.functional_call(model, p, (inputs,)).square().sum()

    want = torch.func.grad(loss)(params, x)
    with netviz.watch(model, probes=[ActivationStats(kernel=kernel)]) as mon:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing skipped, nothing warned
            got = torch.func.grad(loss)(params, x)
        mon.step()
        plain_in = x
        plain = {}
        for name, module in model.named_children():  # the non-transformed forward
            plain_in = module(plain_in)
            plain[name] = np_stats(plain_in)
    for k in want:
        assert torch.equal(got[k], want[k]), k  # the user's result is unchanged
    rec = act_stats(mon)
    assert mon.skips().empty
    for name, ref in plain.items():
        for stat, value in ref.items():
            assert rec[(name, stat)] == pytest.approx(value, rel=1e-5, abs=1e-6), (name, stat)


@pytest.mark.parametrize("kernel", KERNELS)
def test_vmap_of_per_sample_gradients(kernel):
    model = mlp()
    x, y = torch.randn(6, 4), torch.randn(6, 1)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p, xi, yi):
        out = torch.func.functional_call(model, p, (xi[None],))
        return nn.functional.mse_loss(out, yi[None])

    per_sample = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))
    want = per_sample(params, x, y)
    with netviz.watch(model, probes=[ActivationStats(kernel=kernel), "grad_norm"]) as mon:
        got = per_sample(params, x, y)
        mon.step()
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=0)
    # under vmap a hook sees the whole batch: the statistics of the plain batched forward
    rec = act_stats(mon)
    h = model[0](x)
    for name, out in (("0", h), ("1", torch.tanh(h)), ("2", model(x))):
        for stat, value in np_stats(out).items():
            assert rec[(name, stat)] == pytest.approx(value, rel=1e-5, abs=1e-6), (name, stat)
    assert mon.skips().empty


@pytest.mark.slow  # a fresh interpreter: about 5 s
def test_first_use_inside_vmap_in_a_fresh_process():
    # the fused kernel is built and self-tested at attach time, never inside vmap
    script = textwrap.dedent(
        """
        import warnings
        import torch
        from torch import nn
        import netviz
        from netviz.capture import _fused

        warnings.simplefilter("error")
        model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
        params = {k: v.detach() for k, v in model.named_parameters()}
        assert _fused._load.cache_info().currsize == 0
        with netviz.watch(model, probes="activation_stats") as mon:
            built = _fused._load.cache_info().currsize
            f = lambda x: torch.func.functional_call(model, params, (x,)).sum()
            out = torch.func.vmap(f)(torch.randn(5, 3))
            mon.step()
        assert built == 1, built
        assert out.shape == (5,)
        df = mon.to_pandas()
        assert set(df.module) == {"0", "1"}, df
        print("ok", _fused.load() is not None)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")


# ------------------------------------------------ tensors without values


def test_meta_device_forward_is_skipped_and_counted():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).to("meta")
    x = torch.randn(3, 4, device="meta")
    probes = ("activation_stats", "grad_norm", "weight_stats")
    with (
        pytest.warns(RuntimeWarning, match="not recorded: meta tensor") as caught,
        netviz.watch(model, probes=probes) as mon,
    ):
        out = model(x)
        model(x)
        mon.step()
    assert out.shape == (3, 2) and out.is_meta
    skips = mon.skips()
    assert list(skips.columns) == ["module", "probe", "reason", "count"]
    act = skips[skips.probe == "activation_stats"].set_index("module")["count"]
    assert act.to_dict() == {"0": 2, "1": 2, "2": 2}  # two forwards each
    weights = skips[skips.probe == "weight_stats"]
    assert set(weights.module) == {"0", "2"} and set(weights.reason) == {"meta tensor (no data)"}
    # one warning per module and reason, not per call
    texts = [str(w.message) for w in caught if "not recorded" in str(w.message)]
    assert len(texts) == len(set(texts)) == len(skips)
    assert mon.to_pandas().empty


def test_fake_tensor_forward_is_skipped():
    from torch._subclasses.fake_tensor import FakeTensorMode

    model = nn.Linear(4, 2)
    with netviz.watch(model, probes="activation_stats") as mon:
        with (
            pytest.warns(RuntimeWarning, match="fake tensor"),
            FakeTensorMode(allow_non_fake_inputs=True) as mode,
        ):
            out = model(mode.from_tensor(torch.randn(3, 4)))
        assert out.shape == (3, 2)
        mon.step()
    assert mon.skips()["count"].tolist() == [1]


class Opaque(torch.Tensor):
    """A wrapper subclass whose operations all fail (a stand-in for exotic subclasses)."""

    @staticmethod
    def __new__(cls, shape):
        return torch.Tensor._make_wrapper_subclass(cls, shape, dtype=torch.float32)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten.detach.default, torch.ops.aten.alias.default):
            return Opaque(args[0].shape)
        raise NotImplementedError(f"Opaque does not implement {func}")


class MakesOpaque(nn.Module):
    def forward(self, x):
        return Opaque(x.shape)


def test_unreadable_tensor_subclass_is_skipped_with_the_error():
    model = MakesOpaque()
    with (
        pytest.warns(RuntimeWarning, match="tensor subclass Opaque cannot be read"),
        netviz.watch(model, probes="activation_stats") as mon,
    ):
        out = model(torch.randn(2, 2))
        mon.step()
    assert isinstance(out, Opaque)
    assert mon.skips().loc[0, "reason"].startswith("tensor subclass Opaque cannot be read")


# ------------------------------------------------- sparse and nested outputs


class Returns(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def watched_stats(fn, x, kernel="auto") -> dict[str, float]:
    model = Returns(fn)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="netviz")  # nothing skipped
        with netviz.watch(model, probes=[ActivationStats(kernel=kernel)]) as mon:
            model(x)
            mon.step()
    assert mon.skips().empty
    return {stat: v for (_, stat), v in act_stats(mon).items()}


def dense_with_zeros() -> torch.Tensor:
    torch.manual_seed(1)
    x = torch.randn(40, 30)
    return x * (torch.rand(40, 30) < 0.2)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(
    "to_sparse",
    [
        lambda x: x.to_sparse(),
        lambda x: x.to_sparse_csr(),
        lambda x: x.to_sparse_csc(),
        lambda x: x.to_sparse_bsr((2, 3)),
        lambda x: x.to_sparse(sparse_dim=1),  # hybrid COO: dense rows
    ],
    ids=["coo", "csr", "csc", "bsr", "hybrid"],
)
def test_sparse_output_gives_the_statistics_of_its_dense_value(to_sparse, kernel):
    x = dense_with_zeros()
    got = watched_stats(to_sparse, x, kernel)
    for stat, value in np_stats(x).items():
        assert got[stat] == pytest.approx(value, rel=1e-6, abs=1e-7), stat


def test_uncoalesced_sparse_output_sums_duplicates():
    i = torch.tensor([[0, 0, 1], [2, 2, 0]])
    x = torch.sparse_coo_tensor(i, torch.tensor([1.0, 2.0, -4.0]), (3, 3))  # (0, 2) twice
    got = watched_stats(lambda _: x, torch.zeros(1))
    dense = torch.zeros(3, 3)
    dense[0, 2], dense[1, 0] = 3.0, -4.0
    assert got == pytest.approx(np_stats(dense))


@pytest.mark.parametrize("layout", [torch.jagged, torch.strided])
def test_nested_output_gives_the_statistics_of_its_elements(layout):
    torch.manual_seed(2)
    parts = [torch.randn(3, 5), torch.randn(7, 5) * 3, torch.randn(1, 5) + 10]
    got = watched_stats(lambda _: torch.nested.nested_tensor(parts, layout=layout), torch.zeros(1))
    want = np_stats(torch.cat([p.reshape(-1) for p in parts]))
    assert got == pytest.approx(want, rel=1e-6)


# ----------------------------------------------------------- inference mode


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("context", [torch.inference_mode, torch.no_grad])
def test_inference_forward_then_training_forward(kernel, context):
    torch.manual_seed(3)
    # above the eager kernel's first buffer size, so its buffers are made in the first hook
    model = nn.Sequential(nn.Linear(16, 600), nn.ReLU(), nn.Linear(600, 1))
    x = torch.randn(64, 16)
    with netviz.watch(model, probes=[ActivationStats(kernel=kernel), "grad_norm"]) as mon:
        with context():
            model(x)
        mon.step()
        model(x).sum().backward()  # used to raise: inplace update to inference tensor
        mon.step()
        with context():
            model(x)
        mon.step()
    df = mon.to_pandas()
    df = df[df.probe == "activation_stats"]
    df = df.pivot_table(index=["module", "stat"], columns="step", values="value")
    np.testing.assert_allclose(df.iloc[:, 0], df.iloc[:, 1], rtol=1e-12)
    np.testing.assert_allclose(df.iloc[:, 0], df.iloc[:, 2], rtol=1e-12)


# ------------------------------------------------------------------ accuracy


def test_float16_layer_with_large_finite_gradients():
    torch.manual_seed(4)
    lin = nn.Linear(1000, 1000).half()
    lin.weight.grad = (torch.rand(1000, 1000) * 1024 - 512).half()  # max 512: finite
    lin.bias.grad = torch.full((1000,), 512.0).half()
    ref = math.sqrt(
        lin.weight.grad.double().square().sum().item()
        + lin.bias.grad.double().square().sum().item()
    )
    assert ref > 65504  # the norm itself is not a float16 number
    with netviz.watch(lin, probes=("grad_norm", "grad_stats", "weight_stats")) as mon:
        mon.step()
    df = mon.to_pandas()
    values = {(r.probe, r.stat): r.value for r in df.itertuples()}
    assert values[("grad_norm", "l2")] == pytest.approx(ref, rel=1e-6)
    assert values[("grad_stats", "l2")] == pytest.approx(ref, rel=1e-6)
    assert values[("grad_stats", "nonfinite_frac")] == 0.0
    w = math.sqrt(
        lin.weight.double().square().sum().item() + lin.bias.double().square().sum().item()
    )
    assert values[("weight_stats", "l2")] == pytest.approx(w, rel=1e-6)
    report = netviz.diagnose(records=df)
    assert [f for f in report.findings if f.kind == "nonfinite"] == []


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("scale", [1e18, 1e-30, 1e38, 1e-42])
def test_activations_of_extreme_magnitude(kernel, scale):
    torch.manual_seed(5)
    x = torch.randn(3000, dtype=torch.float64).mul(scale).clamp(-3e38, 3e38).float()
    assert x.isfinite().all()
    got = watched_stats(lambda t: t, x, kernel)
    # subnormal float32 values (1e-42) are coarse: some round to 0
    zero_frac = (x == 0).double().mean().item()
    want = np_stats(x.double() / scale) | {"zero_frac": zero_frac}
    for stat in ACTIVATION_STATS:
        assert math.isfinite(got[stat]), stat
        if stat in ("mean", "std", "min", "max", "abs_mean"):
            want[stat] *= scale  # the reference computed near 1, in float64
    # the bounds of docs/watch.md: mean within 1e-5 std, the others 1e-5 relative (float32)
    assert got["mean"] == pytest.approx(want["mean"], abs=1e-5 * want["std"])
    for stat in ("std", "abs_mean", "min", "max", "numel", "zero_frac", "nonfinite_frac"):
        assert got[stat] == pytest.approx(want[stat], rel=1e-5), stat


def test_float64_std_over_the_whole_range():
    for scale in (1e300, 1e-300):
        x = torch.randn(5000, dtype=torch.float64) * scale
        raw = tensor_moments(x).numpy()[None]
        std = finalize_moments(raw)[0][1]
        want = (x / scale).std(correction=0).item() * scale
        assert std == pytest.approx(want, rel=1e-12)


# --------------------------------------------------------- kernel fallback


def test_fallback_to_the_eager_kernel_is_warned_at_attach(monkeypatch):
    reason = "no C compiler was found ($CC, cc, gcc or clang)"
    monkeypatch.setattr(_fused, "_load", lambda: (None, reason))
    model = nn.Linear(3, 3)
    with pytest.warns(RuntimeWarning, match=r"slower.*no C compiler.*NETVIZ_KERNEL=eager"):
        mon = netviz.watch(model, probes=("activation_stats", "grad_stats"))
    mon.detach()
    # chosen, not fallen back to: silent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        netviz.watch(model, probes=[ActivationStats(kernel="eager")]).detach()
        monkeypatch.setattr(_fused, "_load", lambda: (None, _fused.CHOSEN_EAGER))
        netviz.watch(model, probes=[ActivationStats(), GradStats()]).detach()


def test_the_fallback_warning_is_said_once_per_process(monkeypatch):
    monkeypatch.setattr(_fused, "_load", lambda: (None, "it failed its self-test"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's own default: once per location and text
        for _ in range(3):
            netviz.watch(nn.Linear(2, 2), probes=("activation_stats", "grad_stats")).detach()
    assert len([w for w in caught if "self-test" in str(w.message)]) == 1
