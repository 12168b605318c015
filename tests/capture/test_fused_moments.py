"""The fused one-pass CPU moments kernel against float64 NumPy references and the eager kernel."""

from __future__ import annotations

import platform
import shutil
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import netviz
from netviz.capture import _fused
from netviz.capture.probes import ActivationStats
from netviz.capture.stats import ACTIVATION_STATS, Scratch, finalize_moments, tensor_moments

HAS_COMPILER = platform.system() == "Linux" and any(shutil.which(c) for c in ("cc", "gcc", "clang"))


@pytest.fixture(scope="module")
def kernel():
    k = _fused.load()
    if k is None:
        if HAS_COMPILER:
            pytest.fail("a C compiler is here but the fused kernel did not load")
        pytest.skip("no C compiler: the fused kernel is not built here")
    return k


def reference(x: np.ndarray) -> dict[str, float]:
    """The activation statistics of ``x`` computed independently in float64."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    fin = x[np.isfinite(x)]
    out = {
        "zero_frac": float((x == 0).mean()),
        "nonfinite_frac": float((~np.isfinite(x)).mean()),
        "numel": float(x.size),
    }
    if fin.size:
        out |= {
            "mean": fin.mean(),
            "std": fin.std(),
            "min": fin.min(),
            "max": fin.max(),
            "abs_mean": np.abs(fin).mean(),
        }
    return out


def fused_stats(kernel, x: torch.Tensor) -> dict[str, float]:
    return dict(zip(ACTIVATION_STATS, finalize_moments(kernel.moments(x).numpy()[None])[0]))


def assert_matches(got: dict[str, float], want: dict[str, float], scale: float) -> None:
    for k in ("zero_frac", "nonfinite_frac", "numel", "min", "max"):
        if k in want:
            assert got[k] == want[k], k  # counts and extremes are exact
    for k in ("mean", "abs_mean", "std"):
        if k in want:
            assert got[k] == pytest.approx(want[k], rel=1e-5, abs=1e-6 * scale), k
        else:
            assert np.isnan(got[k]), k


special = st.sampled_from([0.0, -0.0, float("nan"), float("inf"), -float("inf")])
finite32 = st.floats(-1e6, 1e6, width=32)


@given(
    st.lists(st.one_of(finite32, special), min_size=1, max_size=3000),
    st.sampled_from([torch.float32, torch.float64]),
)
def test_fused_equals_float64_reference(kernel, values, dtype):
    # up to three blocks of 1024, so partial and several blocks are covered
    x = torch.tensor(values, dtype=dtype)
    scale = max(1.0, float(np.nanmax(np.abs(np.where(np.isfinite(values), values, 0)))))
    assert_matches(fused_stats(kernel, x), reference(x.numpy()), scale)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_large_tensor_on_torch_threads(kernel, threads, dtype):
    # above 64 blocks the kernel runs on PyTorch's OpenMP threads
    torch.set_num_threads(threads)  # restored by the autouse fixture
    g = torch.Generator().manual_seed(1)
    x = torch.randn(300_001, generator=g, dtype=dtype) * 4 - 3
    x[::7] = 0.0
    x[11], x[150_000], x[-1] = float("nan"), float("inf"), -float("inf")
    x[4096:9000] = float("nan")  # whole blocks without a finite value
    assert_matches(fused_stats(kernel, x), reference(x.numpy()), 10.0)


def test_fused_all_nonfinite(kernel):
    x = torch.tensor([float("nan")] * 2000 + [float("inf")] * 100)
    got = fused_stats(kernel, x)
    assert got["nonfinite_frac"] == 1.0 and got["zero_frac"] == 0.0
    assert np.isnan([got[k] for k in ("mean", "std", "min", "max", "abs_mean")]).all()


def test_fused_spread_has_no_cancellation(kernel):
    # a large offset with a small spread: sum-of-squares formulas lose it all
    g = torch.Generator().manual_seed(2)
    x = 1e4 + torch.randn(200_000, generator=g) * 1e-2
    want = x.double().std(correction=0).item()
    assert fused_stats(kernel, x)["std"] == pytest.approx(want, rel=1e-4)


def test_extremes_exact_when_finite_values_are_equal(kernel):
    v = 171.18637084960938
    x = torch.tensor([v, v, v, float("nan")] * 700)
    got = fused_stats(kernel, x)
    assert got["min"] == got["max"] == torch.tensor(v).item()
    assert got["std"] == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize(
    "make",
    [
        lambda t: t.to(memory_format=torch.channels_last),  # dense, not contiguous
        lambda t: t.transpose(1, 3),  # strided view: copied first
        lambda t: t[:, :, ::2],  # non-dense slice
        lambda t: t.to(torch.bfloat16),
        lambda t: t.to(torch.float16),
        lambda t: (t * 100).to(torch.int32),
        lambda t: t[:1, :1, :1, :1].expand(4, 6, 20, 30),  # overlapping: stride 0
        lambda t: torch._neg_view(t),  # negation bit, not in memory
    ],
    ids=["channels_last", "transposed", "slice", "bf16", "fp16", "int32", "expanded", "neg_view"],
)
def test_tensor_moments_layouts_and_dtypes(kernel, make):
    g = torch.Generator().manual_seed(3)
    base = torch.randn(4, 6, 20, 30, generator=g).relu()
    x = make(base)
    got = dict(
        zip(ACTIVATION_STATS, finalize_moments(tensor_moments(x, Scratch()).numpy()[None])[0])
    )
    assert_matches(got, reference(x.float().resolve_neg().numpy()), 10.0)


def test_watch_uses_the_fused_kernel_and_both_kernels_agree(kernel):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(inplace=True), nn.Conv2d(8, 4, 3))
    x = torch.randn(4, 3, 40, 40)
    x[0, 0, 0, 0] = float("nan")
    frames = {}
    for k in ("fused", "eager"):
        with netviz.watch(model, probes=[ActivationStats(kernel=k)]) as mon:
            model(x)
            mon.step()
        frames[k] = mon.to_pandas().set_index(["module", "stat"]).value.sort_index()
    np.testing.assert_allclose(frames["fused"], frames["eager"], rtol=1e-4, atol=1e-6)
    assert frames["fused"][("0", "nonfinite_frac")] > 0


def test_kernel_choice_is_validated():
    with pytest.raises(
        ValueError, match=r"`kernel` must be one of 'auto', 'fused', 'eager', got 'c'"
    ):
        Scratch(kernel="c")
    with pytest.raises(ValueError, match="`kernel` must be one of"):
        ActivationStats(kernel="fast")


def test_required_fused_kernel_fails_early_where_unavailable(monkeypatch):
    monkeypatch.setattr(_fused, "load", lambda: None)
    with pytest.raises(RuntimeError, match="fused moments kernel is not available"):
        ActivationStats(kernel="fused")
    # "auto" falls back to the eager kernel with the same results
    x = torch.tensor([1.0, float("nan"), -2.0, 0.0])
    np.testing.assert_array_equal(tensor_moments(x, Scratch()), tensor_moments(x))


def test_environment_turns_the_fused_kernel_off_per_monitor(monkeypatch):
    """NETVIZ_KERNEL is read when a monitor is created, not once per process."""
    net = nn.Linear(3, 3)
    x = torch.randn(4, 3)
    monkeypatch.setenv("NETVIZ_KERNEL", "eager")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # chosen, not fallen back to: silent
        eager = netviz.watch(net, probes=[ActivationStats(), "grad_norm"])
    assert all(p._scratch.fused() is None for p in eager.probes)
    monkeypatch.delenv("NETVIZ_KERNEL")
    fused = netviz.watch(net, probes=[ActivationStats(), "grad_norm"])
    assert all(p._scratch.fused() is _fused.load() is not None for p in fused.probes)
    assert all(p._scratch.fused() is None for p in eager.probes)  # its choice is kept
    net(x).sum().backward()
    eager.step()
    fused.step()
    a, b = eager.to_pandas(), fused.to_pandas()
    np.testing.assert_allclose(a.value.to_numpy(), b.value.to_numpy(), rtol=1e-5)
    # the loader's cache holds the build and self-test only, not the choice
    monkeypatch.setenv("NETVIZ_KERNEL", "eager")
    assert _fused.load() is not None


def test_eager_choice_never_loads_the_kernel(monkeypatch):
    def boom():
        raise AssertionError("loaded")

    monkeypatch.setattr(_fused, "load", boom)
    x = torch.randn(5000)
    np.testing.assert_allclose(tensor_moments(x, Scratch(kernel="eager")), tensor_moments(x))


def test_a_failed_self_test_falls_back_with_a_warning(monkeypatch):
    if not HAS_COMPILER:
        pytest.skip("no C compiler")
    monkeypatch.setattr(_fused, "_self_test", lambda kernel: False)
    kernel, reason = _fused._load.__wrapped__()
    assert kernel is None and "failed its self-test" in reason
    # the warning comes when a probe is attached (here: the cached loader's answer faked)
    monkeypatch.setattr(_fused, "_load", lambda: (kernel, reason))
    with pytest.warns(RuntimeWarning, match="failed its self-test.*NETVIZ_KERNEL=eager"):
        netviz.watch(nn.Linear(2, 2), probes="activation_stats").detach()


def test_no_compiler_means_no_fused_kernel(monkeypatch):
    monkeypatch.setattr(_fused, "_compiler", lambda: None)
    assert _fused._load.__wrapped__() == (None, "no C compiler was found ($CC, cc, gcc or clang)")


def test_the_kernel_runs_on_pytorchs_openmp_runtime(kernel):
    # a second OpenMP pool would spin against PyTorch's threads
    torch.set_num_threads(3)  # restored by the autouse fixture
    assert kernel._threads() == 3
    assert _fused._shares_torch_threads(kernel)


def test_a_kernel_on_another_runtime_is_refused(kernel, monkeypatch):
    # another runtime: its thread count is its own, torch never sees it
    own = {"n": 7}
    monkeypatch.setattr(kernel, "_threads", lambda: own["n"])
    monkeypatch.setattr(kernel, "_set_threads", lambda n: own.update(n=n))
    assert not _fused._shares_torch_threads(kernel)
    own["n"] = torch.get_num_threads()  # same count by chance: still refused
    assert not _fused._shares_torch_threads(kernel)
    assert torch.get_num_threads() == 1 and own["n"] == 1  # both left as they were


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x.index_fill_(0, torch.tensor([0, 1024, 2048]), 1e6),  # outlier first in a block
        lambda x: x.add_(3e4),  # large common offset
        lambda x: x.mul_(1e-30),  # tiny values
        lambda x: x.zero_().index_fill_(0, torch.tensor([0]), -7.0),  # one non-zero, first
    ],
    ids=["outlier_first", "offset", "tiny", "single"],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_spread_is_accurate_where_the_shift_is_poor(kernel, make, dtype):
    g = torch.Generator().manual_seed(4)
    x = make(torch.randn(5000, generator=g, dtype=dtype))
    want = x.double().std(correction=0).item()
    got = fused_stats(kernel, x)
    assert got["std"] == pytest.approx(want, rel=2e-6)
    assert got["mean"] == pytest.approx(x.double().mean().item(), rel=1e-6, abs=1e-6 * want)


def test_tensor_subclasses_take_the_torch_kernel(kernel):
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        x = torch.randn(5000)
        assert not kernel.supports(x)  # no data pointer to read
        out = tensor_moments(x, Scratch())
    assert out.shape == (9,)


@pytest.mark.slow
def test_watch_of_a_compiled_model_matches_the_eager_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    x = torch.randn(4, 8)
    frames = []
    for run in (lambda: model(x), lambda: torch.compile(model)(x)):
        with netviz.watch(model, probes="activation_stats") as mon:
            run()
            mon.step()
        frames.append(mon.to_pandas().set_index(["module", "stat"]).value.sort_index())
    np.testing.assert_allclose(frames[1], frames[0], rtol=1e-5, atol=1e-7)
