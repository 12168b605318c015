"""Property tests: every statistic against a float64 NumPy oracle, both kernels.

Random shapes and layouts (0-dim, empty, one element, non-contiguous,
channels-last, expanded, flipped, lazily negated), dtypes (float16,
bfloat16, float32, float64, integers, bool), log-uniform magnitudes over each
dtype's range and NaN/+Inf/-Inf at random positions. The bounds asserted
here are the ones stated in docs/watch.md ("Accuracy and what is skipped"):

- counts (``numel``, ``zero_frac``, ``nonfinite_frac``), ``min``, ``max``
  and ``abs_max``: exact;
- ``mean`` and ``std``: within ``EPS * std + EPS / 1000 * abs_mean`` of the
  float64 value;
- ``abs_mean`` and ``l2``: within ``EPS`` relative;

where EPS is 1e-5 for tensors reduced in float32 (float16, bfloat16,
float32, bool) and 1e-12 for those reduced in float64 (float64; integers on
CPU). Everything of a finite tensor is finite (float64: while numel * max|x|
stays below 1e300; ``l2`` of float64 gradients: magnitudes 1e-150..1e150).
"""

from __future__ import annotations

import math
import platform
import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import netviz
from netviz.capture import _fused
from netviz.capture.probes import GradNorm, GradStats
from netviz.capture.stats import ACTIVATION_STATS, Scratch, finalize_moments, tensor_moments

HAS_COMPILER = platform.system() == "Linux" and any(shutil.which(c) for c in ("cc", "gcc", "clang"))

FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
INTS = (torch.uint8, torch.int32, torch.int64, torch.bool)
#: log10 of the smallest (subnormal) and largest finite magnitude generated per dtype
RANGE = {
    torch.float16: (-7.2, math.log10(65504.0)),
    torch.bfloat16: (-40.5, 38.5),
    torch.float32: (-44.8, 38.5),
    torch.float64: (-320.0, 300.0),  # numel * max|x| < 1e308: sums stay representable
}
LAYOUTS = (
    "contiguous",
    "0-dim",
    "empty",
    "one",
    "transposed",
    "sliced",
    "channels_last",
    "expanded",
    "flipped",
    "neg_view",
)


def eps_for(dtype: torch.dtype) -> float:
    """The documented bound: 1e-12 where the statistics are taken in float64, else 1e-5."""
    return (
        1e-12
        if dtype == torch.float64 or not (dtype.is_floating_point or dtype == torch.bool)
        else 1e-5
    )


def _values(rng: np.random.Generator, n: int, dtype: torch.dtype, kind: str) -> np.ndarray:
    if dtype == torch.bool:
        return rng.random(n) < 0.5
    if not dtype.is_floating_point:
        info = torch.iinfo(dtype)
        top = min(info.max, 2**62)
        bits = rng.uniform(0, math.log2(top))
        v = np.floor(rng.uniform(0, 2**bits, n))
        return v if info.min == 0 else v * rng.choice([-1, 1], n)
    lo, hi = RANGE[dtype]
    centre = rng.uniform(lo, hi)  # log-uniform over the dtype's range
    width = {"narrow": 0.5, "wide": 6.0, "all": hi - lo}.get(kind, 1.0)
    mag = 10.0 ** np.clip(rng.uniform(centre - width, centre + width, n), lo, hi)
    v = mag * rng.choice([-1.0, 1.0], n)
    if kind == "offset":  # a large common offset over a small spread
        v = 10.0 ** min(centre + 3, hi - 0.5) + mag * 1e-3 * rng.standard_normal(n)
    elif kind == "equal":
        v = np.full(n, v[0] if n else 1.0)
    elif kind == "positive":  # ReLU-like: zeros and positives
        v = np.where(rng.random(n) < 0.5, 0.0, np.abs(v))
    return v


@st.composite
def tensors(draw, dtypes=FLOATS + INTS, specials: bool = True) -> torch.Tensor:
    dtype = draw(st.sampled_from(dtypes))
    layout = draw(st.sampled_from(LAYOUTS))
    kind = draw(st.sampled_from(["normal", "narrow", "wide", "all", "offset", "equal", "positive"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows = draw(st.integers(1, 70))
    cols = draw(st.integers(1, 60))
    shape = {
        "0-dim": (),
        "empty": (0, cols),
        "one": (1,),
        "channels_last": (2, 3, rows % 9 + 1, cols % 7 + 1),
        "expanded": (rows, 1),
    }.get(layout, (rows, cols))
    n = int(np.prod(shape))
    vals = _values(rng, n, dtype, kind)
    if specials and dtype.is_floating_point and n and draw(st.booleans()):
        k = draw(st.integers(1, max(1, n // 3)))
        pos = rng.choice(n, size=k, replace=False)
        vals = vals.astype(np.float64)
        vals[pos] = rng.choice([np.nan, np.inf, -np.inf], k)
    x = torch.from_numpy(np.asarray(vals).reshape(shape)).to(dtype)
    if layout == "transposed":
        x = x.t()
    elif layout == "sliced":
        x = x[::2, 1:]
    elif layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    elif layout == "expanded":
        x = x.expand(rows, cols)  # stride 0: each value counted cols times
    elif layout == "flipped":
        x = x.flip(0)  # torch has no negative strides: flip is a reversed copy
    elif layout == "neg_view" and dtype.is_floating_point:
        x = torch._neg_view(x)  # a lazy negation, not in memory
    return x


def oracle(x: torch.Tensor) -> dict[str, float]:
    """Statistics of ``x`` in float64 NumPy, scaled by a power of two so no square overflows."""
    v = x.resolve_neg().to(torch.float64).numpy().reshape(-1)
    fin = v[np.isfinite(v)]
    out = {
        "numel": float(v.size),
        "zero_frac": float((v == 0).mean()) if v.size else math.nan,
        "nonfinite_frac": float((~np.isfinite(v)).mean()) if v.size else math.nan,
    }
    if fin.size == 0:
        return out | dict.fromkeys(
            ("mean", "std", "min", "max", "abs_mean", "abs_max", "l2"), math.nan
        )
    top = float(np.abs(fin).max())
    unit = 2.0 ** np.frexp(top)[1] if top > 0 else 1.0
    f = fin / unit  # exact (power of two); elements flushed to 0 here are below rounding
    return out | {
        "mean": float(f.mean() * unit),
        "std": float(f.std() * unit),
        "min": float(fin.min()),
        "max": float(fin.max()),
        "abs_mean": float(np.abs(f).mean() * unit),
        "abs_max": top,
        "l2": float(np.sqrt(np.sum(f * f)) * unit),
    }


def assert_within_bounds(got: dict[str, float], want: dict[str, float], eps: float) -> None:
    """The documented bounds (module docstring), statistic by statistic."""
    for k in ("numel", "zero_frac", "nonfinite_frac", "min", "max", "abs_max"):
        if k in got and not (math.isnan(want[k]) and math.isnan(got[k])):
            assert got[k] == want[k], (k, got[k], want[k])
    if math.isnan(want["mean"]):  # no finite element
        for k in ("mean", "std", "abs_mean"):
            assert math.isnan(got[k]), k
        return
    for k in ("mean", "std", "abs_mean") + (("l2",) if "l2" in got else ()):
        assert math.isfinite(got[k]), (k, got[k])
    tol = eps * want["std"] + eps / 1000 * want["abs_mean"]
    assert abs(got["mean"] - want["mean"]) <= tol, ("mean", got["mean"], want["mean"], tol)
    assert abs(got["std"] - want["std"]) <= tol, ("std", got["std"], want["std"], tol)
    for k in ("abs_mean",) + (("l2",) if "l2" in got else ()):
        assert abs(got[k] - want[k]) <= eps * want[k], (k, got[k], want[k])


def kernel_stats(x: torch.Tensor, scratch: Scratch | None) -> dict[str, float]:
    raw = tensor_moments(x, scratch).numpy()[None]
    return dict(zip(ACTIVATION_STATS, finalize_moments(raw)[0].tolist()))


KERNELS = {
    "fused": lambda: Scratch(kernel="fused"),
    "eager": lambda: Scratch(kernel="eager"),
    "eager_chunked": lambda: Scratch(chunk=1000, kernel="eager"),  # merged on the device
    "eager_no_scratch": lambda: None,  # the CUDA path's code, run on CPU
}


@pytest.fixture(params=list(KERNELS), scope="module")
def scratch(request):
    if request.param == "fused" and _fused.load() is None:
        if HAS_COMPILER:
            pytest.fail("a C compiler is here but the fused kernel did not load")
        pytest.skip("no C compiler: the fused kernel is not built here")
    return KERNELS[request.param]()


@given(x=tensors())
def test_activation_statistics_within_documented_bounds(scratch, x):
    if x.numel() == 0:
        got = kernel_stats(x, scratch)
        assert got["numel"] == 0 and all(math.isnan(got[k]) for k in ("mean", "std", "min"))
        return
    want = oracle(x)
    got = kernel_stats(x, scratch)
    assert_within_bounds(got, want, eps_for(x.dtype))


class Holder(nn.Module):
    """A module whose one parameter has the shape and dtype of a given gradient."""

    def __init__(self, like: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(like.shape, dtype=like.dtype))


#: float64 gradients: l2 is a sum of squares in float64, so magnitudes 1e-150..1e150
GRAD_RANGE = {**RANGE, torch.float64: (-150.0, 150.0)}


@settings(max_examples=40)
@given(g=tensors(dtypes=FLOATS), kernel=st.sampled_from(["auto", "eager"]))
def test_grad_norm_and_grad_stats_within_documented_bounds(g, kernel):
    if g.numel() == 0 or (g.dtype == torch.float64 and g.isfinite().any()):
        fin = g[g.isfinite()].abs().double()
        top = float(fin.max()) if fin.numel() else 0.0
        if g.numel() == 0 or not (top == 0 or 1e-150 <= top <= 1e150):
            return  # outside the documented float64 gradient range (or nothing to reduce)
    model = Holder(g)
    model.w.grad = g.clone()
    with netviz.watch(model, probes=[GradNorm(), GradStats(kernel=kernel)]) as mon:
        mon.step()
    df = mon.to_pandas()
    got = {f"{r.probe}.{r.stat}": r.value for r in df.itertuples()}
    want = oracle(g)
    eps = eps_for(g.dtype)
    stats = {k.split(".")[1]: v for k, v in got.items() if k.startswith("grad_stats.")}
    assert set(stats) == {"mean", "std", "abs_mean", "abs_max", "l2", "zero_frac", "nonfinite_frac"}
    if want["nonfinite_frac"] > 0:  # the norm of a tensor holding NaN/Inf is NaN/Inf
        v = g.double().reshape(-1)
        expect = math.nan if v.isnan().any() else math.inf
        for k in ("grad_norm.l2", "grad_stats.l2"):
            assert got[k] == expect or (math.isnan(expect) and math.isnan(got[k])), k
        stats.pop("l2")
        want = {k: v for k, v in want.items() if k != "l2"}
    if "l2" in want:
        assert abs(got["grad_norm.l2"] - want["l2"]) <= eps * want["l2"], (got, want)
    assert_within_bounds(stats, want, eps)


@pytest.mark.parametrize("scale", [1.0, 1e18, 1e-30, 1e-44, 3e38])
def test_fused_sum_squares_where_float32_squares_overflow_or_underflow(scale):
    kernel = _fused.load()
    if kernel is None:
        pytest.skip("no fused kernel here")
    g = torch.Generator().manual_seed(7)
    x = (torch.rand(5000, generator=g, dtype=torch.float64) * 2 - 1).mul(scale).float()
    parts = [x, x[:1000].half() if scale == 1.0 else x[:1000], x[::3], torch._neg_view(x)]
    got = kernel.sum_squares(parts)
    for p, s in zip(parts, got.tolist()):
        v = p.resolve_neg().double()
        unit = float(v.abs().max())
        want = float(((v / unit) ** 2).sum()) * unit * unit
        assert s == pytest.approx(want, rel=1e-5)
    bad = x.clone()
    bad[10], bad[20] = float("inf"), float("nan")
    inf_only, nan_too = kernel.sum_squares([bad[:15], bad]).tolist()
    assert inf_only == math.inf and math.isnan(nan_too)
