"""The Triton moments kernel, run by Triton's interpreter on CPU tensors.

Not collected on its own: ``tests/capture/test_triton_moments.py`` runs this
file with pytest in a subprocess whose environment has ``TRITON_INTERPRET=1``
from the start. (Triton decorates its own library functions, ``tl.sum`` and
the like, when it is imported, so the interpreter must be on before ``import
triton``; switching it on inside a process that imported Triton does not work,
and turning it on for a whole test process would break real GPU use there.)
The module fixture checks that the kernels are interpreted ones; the launch
counter shows that they really run. References are float64 NumPy (independent
of netviz) and netviz's eager torch-op kernel.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip(
        "run by test_triton_moments.py in a subprocess with TRITON_INTERPRET=1",
        allow_module_level=True,
    )

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

triton = pytest.importorskip("triton")
from triton.runtime.interpreter import InterpretedFunction  # noqa: E402

from netviz.capture import _triton_moments as T  # noqa: E402
from netviz.capture.stats import (  # noqa: E402
    ACTIVATION_STATS,
    finalize_moments,
    tensor_moments,
)

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
NAN, INF = float("nan"), float("inf")


@pytest.fixture(scope="module", autouse=True)
def interpreter():
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("NETVIZ_KERNEL", raising=False)
        T._VERDICTS.clear()
        kernels = T._kernels(True)
        assert kernels is not None
        assert all(isinstance(k, InterpretedFunction) for k in kernels)
        yield kernels
    T._VERDICTS.clear()


@pytest.fixture
def launches(monkeypatch):
    """Count kernel launches by name (the interpreter's ``run``)."""
    seen: list[str] = []
    run = InterpretedFunction.run

    def counting(self, *args, **kwargs):
        seen.append(self.fn.__name__)
        return run(self, *args, **kwargs)

    monkeypatch.setattr(InterpretedFunction, "run", counting)
    return seen


def oracle(x: np.ndarray) -> dict[str, float]:
    """Activation statistics of ``x`` computed independently in float64 NumPy."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    fin = x[np.isfinite(x)]
    out = {"numel": float(x.size)}
    if x.size:
        out["zero_frac"] = float((x == 0).mean())
        out["nonfinite_frac"] = float((~np.isfinite(x)).mean())
    if fin.size:
        out |= {
            "mean": fin.mean(),
            "std": fin.std(),
            "min": fin.min(),
            "max": fin.max(),
            "abs_mean": np.abs(fin).mean(),
        }
    return out


def stats(raw: torch.Tensor) -> dict[str, float]:
    return dict(zip(ACTIVATION_STATS, finalize_moments(raw.numpy()[None])[0]))


def assert_close(got: dict[str, float], want: dict[str, float], dtype: torch.dtype) -> None:
    """The documented bounds: counts and extremes exact; mean, abs_mean within
    ``rel * abs_mean``, std within ``rel * std + rel * max|x|``; ``rel`` is
    1e-5 for float32 arithmetic (float16/bfloat16/float32), 1e-12 for float64."""
    rel = 1e-12 if dtype == torch.float64 else 1e-5
    for k in ("numel", "zero_frac", "nonfinite_frac", "min", "max"):
        if k in want:
            assert got[k] == want[k], k
    if "mean" not in want:
        assert np.isnan([got[k] for k in ("mean", "std", "min", "max", "abs_mean")]).all()
        return
    amax = max(abs(want["min"]), abs(want["max"]))
    assert abs(got["abs_mean"] - want["abs_mean"]) <= rel * want["abs_mean"]
    assert abs(got["mean"] - want["mean"]) <= rel * want["abs_mean"]
    assert abs(got["std"] - want["std"]) <= rel * want["std"] + rel * amax


@st.composite
def tensors(draw, max_size=120, lo=-30.0, hi=30.0, special=True):
    """Tensors with log-uniform magnitudes 10**lo..10**hi around a random scale,
    random signs, zeros and (if ``special``) NaN/+-Inf at random positions."""
    dtype = draw(st.sampled_from(DTYPES))
    n = draw(st.integers(0, max_size))
    seed = draw(st.integers(0, 2**32 - 1))
    centre = draw(st.floats(lo, hi))
    rng = np.random.default_rng(seed)
    width = draw(st.sampled_from([0.0, 0.5, 3.0]))  # 0: all magnitudes equal
    mags = 10.0 ** np.clip(centre + rng.uniform(-width, width, n), lo, hi)
    x = mags * rng.choice([-1.0, 1.0], n) * (draw(st.floats(-2, 2)) if width == 0 else 1.0)
    x[rng.random(n) < draw(st.sampled_from([0.0, 0.2]))] = 0.0
    if special and n:
        for value in (NAN, INF, -INF):
            x[rng.random(n) < draw(st.sampled_from([0.0, 0.05]))] = value
    return torch.from_numpy(x).to(dtype)


@settings(max_examples=25)
@given(tensors(), st.sampled_from([(16, 2), (32, 3), (2048, 1024)]))
def test_matches_float64_oracle(x, geometry):
    # small tiles: one and several programs, each looping over several tiles
    block, programs = geometry
    got = stats(T.moments(x, block=block, max_programs=programs))
    assert_close(got, oracle(x.double().numpy()), x.dtype)


@settings(max_examples=15)
@given(tensors(lo=-3.0, hi=3.0))
def test_matches_eager_kernel(x):
    # magnitudes where the eager float32 kernel's squares neither overflow nor
    # underflow; without a Scratch, tensor_moments is the torch-op kernel
    eager = stats(tensor_moments(x))
    got = stats(T.moments(x, block=32, max_programs=2))
    rel = 1e-5 if x.dtype != torch.float64 else 1e-12
    for k in ACTIVATION_STATS:
        if np.isnan(eager[k]):
            assert np.isnan(got[k]), k
        else:
            scale = max(abs(eager["min"]), abs(eager["max"])) if k in ("mean", "std") else 0.0
            assert got[k] == pytest.approx(eager[k], rel=10 * rel, abs=10 * rel * scale), k


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "values",
    [[], [2.5], [-0.0], [NAN], [INF], [-INF], [NAN, INF, -INF], [3.0, 3.0, 3.0]],
    ids=["empty", "one", "neg_zero", "nan", "inf", "ninf", "all_nonfinite", "equal"],
)
def test_edge_cases_match_torch_op_kernel_and_oracle(dtype, values):
    x = torch.tensor(values, dtype=dtype)
    got = T.moments(x)
    want = tensor_moments(x)  # the torch-op kernel, as tensor_moments returns it
    if x.numel() == 0:
        assert torch.equal(got, want)  # [0, 0, 0, 0, 0, inf, -inf, 0, 0]
    else:
        assert_close(stats(got), oracle(x.double().numpy()), dtype)
        counts = [0, 1, 7, 8]  # numel, nonfinite, l1, nonzero
        assert torch.equal(got[counts], want[counts])


def test_extreme_magnitudes_stay_finite_and_accurate():
    # squares of 1e30 overflow float32 and squares of 1e-30 underflow it
    g = torch.Generator().manual_seed(0)
    base = torch.randn(300, generator=g, dtype=torch.float64)
    for scale in (1e-30, 1e-20, 1.0, 1e20, 1e30):
        for dtype in (torch.float32, torch.bfloat16, torch.float64):
            x = (base * scale + 2 * scale).to(dtype)
            got = stats(T.moments(x, block=64, max_programs=2))
            assert np.isfinite(list(got.values())).all(), (scale, dtype)
            assert_close(got, oracle(x.double().numpy()), dtype)


def test_one_launch_up_to_a_block_two_above(launches):
    T.moments(torch.randn(2048))
    assert launches == ["_partials_kernel"]
    launches.clear()
    T.moments(torch.randn(2049))
    assert launches == ["_partials_kernel", "_merge_kernel"]


def test_layouts_and_out_buffer():
    g = torch.Generator().manual_seed(1)
    base = torch.randn(2, 3, 5, 7, generator=g)
    want = T.moments(base.contiguous(), block=64)
    for view in (
        base.to(memory_format=torch.channels_last),
        base.transpose(1, 3),
        torch._neg_view(-base),
    ):
        torch.testing.assert_close(T.moments(view, block=64), want, rtol=1e-6, atol=1e-6)
    buffer = torch.full((3, 9), -1.0, dtype=torch.float64)
    T.moments(base, buffer[1], block=64)
    torch.testing.assert_close(buffer[1], want, rtol=1e-6, atol=1e-6)
    assert (buffer[[0, 2]] == -1).all()  # only its row written
    with pytest.raises(ValueError, match="contiguous float64"):
        T.moments(base, torch.empty(9, dtype=torch.float32))
    with pytest.raises(TypeError, match="float16, bfloat16, float32 or float64"):
        T.moments(base.to(torch.int32))


def test_no_host_sync_in_launch(scalar_counter):
    x = torch.randn(3000)
    assert T.triton_moments_available(dtype=x.dtype)  # self-test before counting
    with scalar_counter:
        out = T.maybe_triton_moments(x)
    assert out is not None and scalar_counter.count == 0
    assert scalar_counter.ops > 0  # the mode saw the wrapper's torch calls


def test_selection(monkeypatch):
    x = torch.randn(10)
    assert T.maybe_triton_moments(x) is not None
    assert T.maybe_triton_moments(torch.nn.Parameter(x)) is not None  # detached first
    assert T.maybe_triton_moments(x.to(torch.int64)) is None
    assert T.maybe_triton_moments(torch.randn(3, dtype=torch.complex64)) is None
    assert T.maybe_triton_moments(x.to_sparse()) is None

    class Sub(torch.Tensor):
        pass

    assert T.maybe_triton_moments(x.as_subclass(Sub)) is None
    monkeypatch.setenv("NETVIZ_KERNEL", "eager")
    T._VERDICTS.clear()
    assert T.maybe_triton_moments(x) is None
    assert not T.triton_moments_available()
    monkeypatch.delenv("NETVIZ_KERNEL")
    T._VERDICTS.clear()
    monkeypatch.delenv("TRITON_INTERPRET")  # CPU tensors need the interpreter
    assert T.maybe_triton_moments(x) is None
    assert not T.triton_moments_available("cpu")
    with pytest.raises(RuntimeError, match="CUDA tensors, or on CPU tensors under"):
        T.moments(x)


def test_self_test_catches_a_wrong_kernel(monkeypatch):
    assert T._self_test(torch.device("cpu"), torch.float32)
    real = T.moments

    def off_by_one_nonzero(x, out=None, **kw):
        m = real(x, out, **kw)
        m[8] += 1
        return m

    monkeypatch.setattr(T, "moments", off_by_one_nonzero)
    assert not T._self_test(torch.device("cpu"), torch.float32)
    T._VERDICTS.clear()
    with pytest.warns(RuntimeWarning, match="failed its self-test"):
        assert T.maybe_triton_moments(torch.randn(4)) is None
    T._VERDICTS.clear()


def test_self_test_runs_in_a_clean_context(monkeypatch, scalar_counter):
    seen = {}
    real = T._self_test

    def spy(device, dtype):
        seen["grad"] = torch.is_grad_enabled()
        seen["inference"] = torch.is_inference_mode_enabled()
        seen["autocast"] = torch.is_autocast_enabled("cpu")
        return real(device, dtype)

    monkeypatch.setattr(T, "_self_test", spy)
    T._VERDICTS.clear()
    x = torch.randn(5, requires_grad=True)
    with (
        torch.inference_mode(),
        torch.autocast("cpu", dtype=torch.bfloat16),
        scalar_counter,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("error")
        assert T.maybe_triton_moments(x.detach().clone()) is not None
    assert seen == {"grad": False, "inference": False, "autocast": False}
    assert scalar_counter.count == 0  # the self-test's host reads hidden from the mode
