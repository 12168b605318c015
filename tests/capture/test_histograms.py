"""Histogram grids, kernels and probes against numpy.histogram (exact integer counts)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import netviz
from netviz.capture import _fused_hist
from netviz.capture.histogram import HistogramGrid, tensor_histogram, torch_histogram
from netviz.capture.probes import ActivationHist, GradHist
from netviz.records.histograms import HIST_COLUMNS, dense_counts, load_histograms

FUSED = _fused_hist.load()
needs_fused = pytest.mark.skipif(FUSED is None, reason="no C compiler / OpenMP torch here")

GRIDS = {
    "log": HistogramGrid.log(),
    "log-coarse": HistogramGrid.log(-10, 10, 1),
    "log-fine": HistogramGrid.log(-30, 30, 16),
    "linear": HistogramGrid.linear(-3.0, 5.0, 40),
    "linear-odd": HistogramGrid.linear(-0.1, 0.7, 7),  # edges not exact in float32
}
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def reference(x: torch.Tensor, grid: HistogramGrid) -> np.ndarray:
    """numpy.histogram of the finite values on the grid's edges, then NaN, +Inf, -Inf counts."""
    a = x.double().numpy().ravel()  # exact for every floating dtype
    counts, _ = np.histogram(a[np.isfinite(a)], bins=grid.edges)
    return np.array([*counts, np.isnan(a).sum(), (a == np.inf).sum(), (a == -np.inf).sum()])


def nasty(dtype: torch.dtype, grid: HistogramGrid, n: int = 5000, seed: int = 0) -> torch.Tensor:
    """Random values over many decades with NaN, infinities, zeros, -0.0, subnormals, edges."""
    g = torch.Generator().manual_seed(seed)
    scale = 10.0 ** torch.randint(-40, 40, (n,), generator=g).double()
    x = torch.randn(n, generator=g, dtype=torch.float64) * scale
    fin = torch.finfo(dtype)
    x = x.clamp(-fin.max, fin.max).to(dtype)
    edges = grid.edges[1:-1]
    on_edges = torch.tensor(edges[np.abs(edges) < fin.max]).to(dtype)
    k = min(on_edges.numel(), n // 2)
    x[:k] = on_edges[torch.randperm(on_edges.numel(), generator=g)[:k]]
    x[k : k + 50] = 0.0
    x[k + 50 : k + 60] = -0.0
    x[k + 60 : k + 70] = fin.tiny / 4  # subnormal in dtype
    x[k + 70 : k + 80] = -fin.tiny / 2
    x[k + 80 : k + 83] = float("nan")
    x[k + 83 : k + 87] = float("inf")
    x[k + 87 : k + 89] = -float("inf")
    x[k + 89] = fin.max
    x[k + 90] = -fin.max
    return x[torch.randperm(n, generator=g)]


def test_default_grid_by_hand():
    grid = HistogramGrid.log()
    e = grid.edges
    assert e[0] == -np.inf and e[-1] == np.inf and np.all(np.diff(e) > 0)
    # 54 octaves (2**-27 .. 2**27) x 4 bins per sign, 2 underflow, zero, 2 overflow
    assert grid.nbins == 2 * 54 * 4 + 5
    mid = int(np.flatnonzero(e == 0.0)[0])
    assert e[mid + 1] == 5e-324  # zero bin [0, 5e-324): only zeros
    assert e[mid + 2] == 2.0**-27 and e[-2] == 2.0**27
    assert list(e[mid + 2 : mid + 7]) == [2.0**-27 * f for f in (1, 1.25, 1.5, 1.75, 2)]
    np.testing.assert_array_equal(e[1:mid], -e[mid + 2 : -1][::-1])
    # every edge is exact in float32
    finite = e[np.isfinite(e) & (e != 5e-324)]
    assert np.array_equal(finite.astype(np.float32).astype(np.float64), finite)
    counts = tensor_histogram(torch.tensor([1.0, -1.0, 0.0, -0.0, 1.2, 2.0**30]), grid).numpy()
    lo = grid.edges[:-1]
    hit = {float(lo[i]): int(c) for i, c in enumerate(counts[: grid.nbins]) if c}
    # [1, 1.25) holds 1.0 and 1.2; -1.0 lies in [-1, -0.875); zeros in [0, 5e-324)
    assert hit == {1.0: 2, -1.0: 1, 0.0: 2, 2.0**27: 1}


@pytest.mark.parametrize("grid_name", sorted(GRIDS))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("kernel", ["fused", "bincount", "histc", "sorted"])
def test_counts_equal_numpy_histogram(grid_name, dtype, kernel, monkeypatch):
    if kernel == "fused" and FUSED is None:
        pytest.skip("no fused kernel here")
    if kernel == "sorted":  # the device path under torch.use_deterministic_algorithms(True)
        monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: True)
    grid = GRIDS[grid_name]
    for seed in range(3):
        x = nasty(dtype, grid, seed=seed)
        if kernel == "fused":
            got = tensor_histogram(x, grid, kernel="fused")
        else:
            got = torch_histogram([x], grid, histc=kernel in ("histc", "sorted"))
        assert got.dtype == torch.float64
        want = reference(x, grid)
        np.testing.assert_array_equal(got.numpy(), want)
        assert got.sum().item() == x.numel()


@pytest.mark.parametrize("kernel", ["auto", "eager"])
def test_constant_empty_views_and_several_tensors(kernel):
    grid = HistogramGrid.log()
    c = tensor_histogram(torch.full((3, 7), 0.3), grid, kernel)
    (nonzero,) = np.flatnonzero(c.numpy())
    assert c[nonzero] == 21 and grid.edges[nonzero] <= 0.3 < grid.edges[nonzero + 1]
    empty = tensor_histogram(torch.empty(0, 5), grid, kernel)
    assert empty.shape == (grid.nbins + 3,) and empty.sum() == 0
    x = torch.randn(64, 33, dtype=torch.float64)
    for view in (x.t(), x[:, ::2], torch.randn(2, 3, 8, 8).to(memory_format=torch.channels_last)):
        np.testing.assert_array_equal(
            tensor_histogram(view, grid, kernel).numpy(), reference(view, grid)
        )
    parts = [torch.randn(100), torch.randn(3, 4) * 1e-9, torch.zeros(0)]
    together = tensor_histogram(parts, grid, kernel).numpy()
    np.testing.assert_array_equal(together, reference(torch.cat([p.ravel() for p in parts]), grid))
    ints = tensor_histogram(torch.tensor([0, 1, 1, -3]), grid, kernel).numpy()
    np.testing.assert_array_equal(ints, reference(torch.tensor([0.0, 1.0, 1.0, -3.0]), grid))


@needs_fused
def test_fused_large_tensor_uses_threads_and_stays_exact():
    grid = HistogramGrid.log()
    x = torch.randn(300_000) * 1e3
    x[::1000] = float("nan")
    np.testing.assert_array_equal(tensor_histogram(x, grid, "fused").numpy(), reference(x, grid))


@pytest.mark.parametrize("deterministic", [False, True])
def test_torch_kernel_never_syncs(scalar_counter, deterministic, monkeypatch):
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: deterministic)
    grid_log, grid_lin = HistogramGrid.log(), HistogramGrid.linear(-1, 1, 10)
    x = torch.randn(1000)
    with scalar_counter as counter:
        for grid in (grid_log, grid_lin):
            torch_histogram([x], grid, histc=True)
    assert counter.ops > 10 and counter.count == 0


def test_grid_errors():
    with pytest.raises(ValueError, match="per_octave"):
        HistogramGrid.log(per_octave=3)
    with pytest.raises(ValueError, match="min_exp < max_exp"):
        HistogramGrid.log(5, 5)
    with pytest.raises(ValueError, match="finite lo < hi"):
        HistogramGrid.linear(1.0, 0.0)
    with pytest.raises(ValueError, match="`bins`"):
        HistogramGrid.linear(0.0, 1.0, 0)
    with pytest.raises(TypeError, match="HistogramGrid"):
        ActivationHist(bins="wide")
    with pytest.raises(ValueError, match="`kernel`"):
        GradHist(kernel="fast")
    assert ActivationHist(bins=(0.0, 1.0, 4)).grid == HistogramGrid.linear(0.0, 1.0, 4)


def test_fused_required_but_missing(monkeypatch):
    monkeypatch.setattr(_fused_hist, "load", lambda: None)
    with pytest.raises(RuntimeError, match="fused histogram kernel is not available"):
        ActivationHist(kernel="fused")


# ----------------------------------------------------------------- the probes
def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)
    )


def _hist(rows: pd.DataFrame, grid: HistogramGrid) -> np.ndarray:
    """Dense counts (bins, NaN, +Inf, -Inf) of one histogram's rows, on ``grid``."""
    out = np.zeros(grid.nbins + 3, dtype=np.int64)
    bins = rows[rows.kind == "bin"]
    idx = np.searchsorted(grid.edges, bins.bin_lo.to_numpy())
    np.testing.assert_array_equal(grid.edges[idx + 1], bins.bin_hi.to_numpy())
    out[idx] = bins["count"].to_numpy()
    for j, kind in enumerate(("nan", "posinf", "neginf")):
        (c,) = rows[rows.kind == kind]["count"].to_numpy()
        out[grid.nbins + j] = c
    return out


@pytest.mark.parametrize("kernel", ["auto", "eager"])
def test_probes_match_numpy_on_activations_gradients_weights(kernel, tmp_path):
    net = _net()
    outputs: dict[str, list[torch.Tensor]] = {}
    for name, m in net.named_children():
        m.register_forward_hook(
            lambda mod, a, out, name=name: outputs.setdefault(name, []).append(out.detach().clone())
        )
    probes = [ActivationHist(kernel=kernel), GradHist(kernel=kernel), "weight_hist", "grad_norm"]
    grads, weights = {}, {}
    with netviz.watch(net, probes=probes) as mon:
        for step in range(2):
            outputs.clear()
            x = torch.randn(32, 6)
            x[0, 0] = float("nan") if step else 0.0
            net(x).square().mean().backward()
            grads[step] = {
                n: [p.grad.clone() for p in m.parameters()] for n, m in net.named_children()
            }
            weights[step] = {
                n: [p.detach().clone() for p in m.parameters()] for n, m in net.named_children()
            }
            acts = {n: v[0] for n, v in outputs.items()}
            mon.step()
            h = mon.histograms()
            h = h[h.step == step]
            grid = HistogramGrid.log()
            for name, out in acts.items():
                rows = h[(h.probe == "activation_hist") & (h.module == name)]
                np.testing.assert_array_equal(_hist(rows, grid), reference(out, grid))
                assert set(rows.micro) == {0} and set(rows.phase) == {"train"}
            for name in ("0", "2", "4"):
                for probe, src in (("grad_hist", grads), ("weight_hist", weights)):
                    rows = h[(h.probe == probe) & (h.module == name)]
                    flat = torch.cat([t.ravel() for t in src[step][name]])
                    np.testing.assert_array_equal(_hist(rows, grid), reference(flat, grid))
                    assert set(rows.micro) == {-1} and set(rows.call) == {0}
            assert not len(
                h[h.probe.isin(["grad_hist", "weight_hist"]) & h.module.isin(["1", "3"])]
            )
            order = h.groupby("module").order.first()
            assert list(order[["0", "1", "2", "3", "4"]]) == [0, 1, 2, 3, 4]
    h = mon.histograms()
    assert list(h.columns) == list(HIST_COLUMNS)
    # the NaN of step 1 reached every activation after the first Linear's row 0
    nan_rows = h[(h.kind == "nan") & (h.probe == "activation_hist")]
    assert list(nan_rows[nan_rows.step == 1].sort_values("order")["count"]) == [16, 16, 16, 16, 3]
    assert (nan_rows[nan_rows.step == 0]["count"] == 0).all()  # rows present even when zero
    # records of other probes are unaffected; histograms are not in to_pandas()
    assert set(mon.to_pandas().probe) == {"grad_norm"}
    for suffix in (".parquet", ".csv"):
        path = mon.save(tmp_path / f"run{suffix}")
        assert (tmp_path / f"run.histograms{suffix}").exists()
        back = netviz.load_histograms(path)
        pd.testing.assert_frame_equal(back, h)
        pd.testing.assert_frame_equal(load_histograms(tmp_path / f"run.histograms{suffix}"), h)
        assert set(netviz.load(path).probe) == {"grad_norm"}


def test_counts_sum_to_numel_and_dense_counts_roundtrip():
    net = _net()
    with netviz.watch(net, probes=["activation_hist", "activation_stats"]) as mon:
        net(torch.randn(5, 6))
        net(torch.randn(7, 6))  # second forward pass: micro 1
        mon.step()
    h = mon.histograms()
    assert sorted(set(zip(h.micro, h.call))) == [(0, 0), (1, 0)]
    totals = h.groupby(["module", "micro"])["count"].sum()
    stats = mon.to_pandas()
    numel = stats[stats.stat == "numel"].set_index(["module", "micro"]).value.sort_index()
    pd.testing.assert_series_equal(totals.astype(float), numel.rename("count"), check_names=False)
    keys, edges, counts = dense_counts(h)
    assert len(keys) == 10 and counts.shape == (10, len(edges) + 2)
    np.testing.assert_array_equal(counts.sum(1), numel.loc[list(zip(keys.module, keys.micro))])
    # shuffled rows give the same dense histograms
    keys2, edges2, counts2 = dense_counts(h.sample(frac=1.0, random_state=0))
    pd.testing.assert_frame_equal(keys2, keys)
    np.testing.assert_array_equal(edges2, edges)
    np.testing.assert_array_equal(counts2, counts)


def test_merge_of_ranks():
    act, grad = ActivationHist(), GradHist()
    raw = np.arange(2 * 3 * len(act.raw_fields), dtype=float).reshape(2, 3, -1)
    sharded = np.array([True, False, True])
    np.testing.assert_array_equal(act.merge(raw, sharded), raw.sum(0))
    merged = grad.merge(raw, sharded)
    np.testing.assert_array_equal(merged[[0, 2]], raw.sum(0)[[0, 2]])  # FSDP shards add up
    np.testing.assert_array_equal(merged[1], raw[0, 1])  # DDP: replicated, rank 0's


def test_histograms_in_the_one_transfer(monkeypatch):
    import netviz.capture.step_buffer as buffer_module

    calls = []
    real = buffer_module._to_host
    monkeypatch.setattr(buffer_module, "_to_host", lambda b: calls.append(b.shape) or real(b))
    net = _net()
    with netviz.watch(net, probes=["activation_hist", "grad_hist", "grad_norm"]) as mon:
        net(torch.randn(4, 6)).sum().backward()
        mon.step()
    assert len(calls) == 1
    grid = HistogramGrid.log()
    assert calls[0][0] == 5 * (grid.nbins + 3) + 3 * (grid.nbins + 3) + 3


def test_record_model_columns_eval_phase_and_order():
    net = _net()
    with netviz.watch(net, probes=["activation_hist", "grad_hist", "activation_stats"]) as mon:
        net(torch.randn(4, 6)).sum().backward()
        with torch.no_grad():
            net(torch.randn(3, 6))  # a validation forward in the same step
        mon.step()
    h = mon.histograms()
    assert list(h.columns) == list(HIST_COLUMNS) and not h.skipped.any()
    act = h[h.probe == "activation_hist"]
    per_phase = act.groupby(["phase", "module"])["count"].sum()
    assert set(per_phase["train"]) == {4 * 16, 4 * 3} and set(per_phase["eval"]) == {3 * 16, 3 * 3}
    # order agrees with the record table's order of each module
    stats = mon.to_pandas()
    want = stats.groupby("module").order.first().to_dict()
    assert h.groupby("module").order.first().to_dict() == want
    assert set(h[h.probe == "grad_hist"].phase) == {"train"}


@needs_fused
def test_no_host_synchronisation_in_hooks(scalar_counter):
    net = _net()
    with netviz.watch(net, probes=["activation_hist", "grad_hist", "weight_hist"]) as mon:
        with scalar_counter as counter:
            net(torch.randn(4, 6)).sum().backward()
        mon.step()
    assert counter.ops > 20 and counter.count == 0  # the C kernel reads nothing back
    assert set(mon.histograms().probe) == {"activation_hist", "grad_hist", "weight_hist"}


def test_every_counts_on_some_steps_only():
    net = _net()
    probes = [ActivationHist(every=3), GradHist(every=2), "grad_norm"]
    with netviz.watch(net, probes=probes) as mon:
        for _ in range(7):
            net(torch.randn(2, 6)).sum().backward()
            mon.step()
    h = mon.histograms()
    assert sorted(set(h[h.probe == "activation_hist"].step)) == [0, 3, 6]
    assert sorted(set(h[h.probe == "grad_hist"].step)) == [0, 2, 4, 6]
    assert sorted(set(mon.to_pandas().step)) == list(range(7))
    with pytest.raises(ValueError, match="`every`"):
        ActivationHist(every=0)


# ------------------------------------------------- one read: moments and counts


@needs_fused
@pytest.mark.parametrize("grid_name", sorted(GRIDS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_one_read_counts_equal_numpy_and_moments_match_the_moments_kernel(grid_name, dtype):
    from netviz.capture import _fused

    moments_kernel = _fused.load()
    assert moments_kernel is not None
    grid = GRIDS[grid_name]
    cases = [nasty(dtype, grid, n=n, seed=n) for n in (200, 5000, 300_000)]
    cases += [
        torch.tensor([-2.5], dtype=dtype),
        torch.empty(0, dtype=dtype),
        torch.full((70_000,), 0.3, dtype=dtype),  # constant, over several threads' runs
        torch.zeros(3, dtype=dtype),
        torch.full((5,), torch.finfo(dtype).tiny / 8, dtype=dtype),  # only subnormals
        torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=dtype),  # nothing finite
        torch.randn(2000, dtype=dtype) * 1e25,  # the moments' scaled second read
        # mostly zeros (ReLU outputs): the zero bin is counted by compaction
        torch.relu(nasty(dtype, grid, n=300_000, seed=3)),
        torch.where(torch.rand(5003) < 0.9, 0.0, nasty(dtype, grid, n=5003, seed=4)).to(dtype),
    ]
    for x in cases:
        moments, counts = FUSED.moments_histogram(x, grid)
        np.testing.assert_array_equal(counts.numpy(), reference(x, grid))
        assert counts.sum().item() == x.numel()
        plain = moments_kernel.moments(x)
        exact = [0, 1, 5, 6, 8]  # counts and extremes; sums may differ by FMA contraction
        assert torch.equal(moments[exact], plain[exact])
        torch.testing.assert_close(moments, plain, rtol=1e-12, atol=0.0, equal_nan=True)


def _shared_net(dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 128),
        nn.ReLU(inplace=True),  # the Linear's output, changed in place (a new version)
        nn.Identity(),  # the very same tensor again
        nn.Linear(128, 600),  # 64 x 600 elements: the parallel path of the kernels
        nn.Tanh(),
    ).to(dtype)


def _run_shared(probes: list, dtype: torch.dtype = torch.float32) -> tuple:
    net = _shared_net(dtype)
    outputs: dict[tuple[int, str], torch.Tensor] = {}
    step = [0]
    for name, m in net.named_children():
        m.register_forward_hook(
            lambda mod, a, out, name=name: outputs.__setitem__(
                (step[0], name), out.detach().clone()
            )
        )
    g = torch.Generator().manual_seed(1)
    with netviz.watch(net, probes=probes) as mon:
        for step[0] in range(4):
            x = torch.randn(64, 6, generator=g).to(dtype)
            x[0, 0] = float("nan") if step[0] == 1 else x[0, 0]
            net(x).float().square().mean().backward()
            mon.step()
    return mon.to_pandas(), mon.histograms(), outputs


@needs_fused
@pytest.mark.parametrize("hist_first", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_activation_stats_and_hist_read_each_output_once(hist_first, dtype, monkeypatch):
    from netviz.capture._fused import FusedMoments
    from netviz.capture.probes import ActivationStats

    # separate reads: a histogram probe on the torch kernel shares nothing
    want_stats, _, _ = _run_shared(
        [ActivationStats(), ActivationHist(kernel="eager", every=2)], dtype
    )
    calls = {"moments": 0, "histogram": 0, "one read": 0}

    def counting(name, real):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)

        return wrapper

    for cls, attr, name in (
        (FusedMoments, "moments", "moments"),
        (_fused_hist.FusedHistogram, "histogram", "histogram"),
        (_fused_hist.FusedHistogram, "moments_histogram", "one read"),
    ):
        monkeypatch.setattr(cls, attr, counting(name, getattr(cls, attr)))
    probes = [ActivationStats(), ActivationHist(every=2)]
    stats, hist, outputs = _run_shared(probes[::-1] if hist_first else probes, dtype)
    # the statistics are those of separate reads, exactly; the counts numpy's
    cols = ["step", "module", "call", "stat"]
    pd.testing.assert_frame_equal(
        stats.sort_values(cols).reset_index(drop=True),
        want_stats.sort_values(cols).reset_index(drop=True),
    )
    grid = HistogramGrid.log()
    assert sorted(set(hist.step)) == [0, 2]
    for (step, name), out in outputs.items():
        rows = hist[(hist.step == step) & (hist.module == name)]
        if step % 2:
            assert rows.empty
        else:
            np.testing.assert_array_equal(_hist(rows, grid), reference(out, grid))
    if dtype == torch.float32:
        # 5 modules x 2 counted steps in one read each; 5 x 2 other steps: moments alone
        assert calls == {"moments": 10, "histogram": 0, "one read": 10}
    elif hist_first:
        # half precision: each probe converts the output to a float32 copy of
        # its own; the histogram probe sees that it cannot share and counts alone
        assert calls == {"moments": 20, "histogram": 10, "one read": 0}
    else:
        # the stats probe's read counts its copy too, which the histogram
        # probe's own copy does not match: it counts alone (the documented waste)
        assert calls == {"moments": 10, "histogram": 10, "one read": 10}


@needs_fused
def test_a_stats_probe_outlives_the_monitor_of_its_histogram_probe():
    from netviz.capture.probes import ActivationStats

    stats = ActivationStats()
    want, _, _ = _run_shared([ActivationStats()])
    first, _, _ = _run_shared([stats, ActivationHist()])
    import gc

    gc.collect()  # the first monitor is gone; the stats probe still holds its share hook
    again, hist, _ = _run_shared([stats])
    assert hist.empty
    pd.testing.assert_frame_equal(again, want)
    pd.testing.assert_frame_equal(first, want)


@needs_fused
@pytest.mark.parametrize("grid_name", sorted(GRIDS))
def test_many_groups_in_one_call_equal_numpy(grid_name):
    grid = GRIDS[grid_name]
    big = [nasty(torch.float32, grid, n=150_000, seed=7), nasty(torch.float64, grid, seed=8)]
    groups = [
        big,  # split between the threads, across the two tensors
        [],
        [nasty(torch.bfloat16, grid, seed=9), torch.randn(40, 30).t()],  # converted; a view
        [torch.full((3,), 0.3)],
        [torch.empty(0)],
    ]
    out = FUSED.histograms(groups, grid)
    assert out.shape == (len(groups), grid.nbins + 3)
    for row, group in zip(out.numpy(), groups):
        flat = torch.cat([t.double().ravel() for t in group]) if group else torch.zeros(0)
        np.testing.assert_array_equal(row, reference(flat, grid))


@needs_fused
def test_netviz_kernel_is_read_per_call_not_fixed_for_the_process(monkeypatch):
    assert _fused_hist.get("auto") is not None  # built and cached
    monkeypatch.setenv("NETVIZ_KERNEL", "eager")
    assert _fused_hist.get("auto") is None  # the cached build does not fix the choice
    with pytest.raises(netviz.NetvizRuntimeError, match="NETVIZ_KERNEL"):
        _fused_hist.get("fused")
    monkeypatch.delenv("NETVIZ_KERNEL")
    assert _fused_hist.get("auto") is not None
