"""Distribution plots from histogram records, and activation_distributions: checked through artists."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import netviz
from netviz.capture.histogram import HistogramGrid
from netviz.plot.distributions import (
    distributions_over_steps,
    histogram_percentiles,
    histograms_over_steps,
    layer_histograms,
)
from netviz.plot.gradients import activation_distributions
from netviz.records.histograms import HistogramStore, dense_counts


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _counts(values: np.ndarray, grid: HistogramGrid) -> np.ndarray:
    fin = values[np.isfinite(values)]
    c, _ = np.histogram(fin, bins=grid.edges)
    return np.array(
        [*c, np.isnan(values).sum(), (values == np.inf).sum(), (values == -np.inf).sum()]
    )


def _table(layers: dict[str, list[np.ndarray]], grid: HistogramGrid, orders: dict[str, int]):
    """A histogram table: ``layers[name][step]`` values of each layer at each step."""
    store = HistogramStore()
    names = list(layers)
    steps = len(next(iter(layers.values())))
    for s in range(steps):
        store.append(
            s,
            "activation_hist",
            grid.edges,
            np.stack([_counts(layers[n][s], grid) for n in names]),
            names,
            [0] * len(names),
            phases=["train"] * len(names),
            micros=[0] * len(names),
            orders=[orders[n] for n in names],
        )
    return store.to_pandas()


def _texts(ax, gid):
    return [t.get_text() for t in ax.texts if t.get_gid() == gid]


def test_lazy_names():
    assert netviz.plot.layer_histograms is layer_histograms
    assert netviz.plot.distributions_over_steps is distributions_over_steps
    assert netviz.plot.histograms_over_steps is histograms_over_steps


def test_percentiles_by_hand():
    edges = np.array([-np.inf, 0.0, 1.0, 2.0, 3.0, np.inf])
    vals, beyond = histogram_percentiles(edges, [0, 10, 10, 0, 0], (0, 25, 50, 100))
    np.testing.assert_allclose(vals[0], [0.0, 0.5, 1.0, 2.0])
    assert not beyond.any()
    vals, beyond = histogram_percentiles(edges, [5, 0, 0, 0, 5], (0, 50, 100))
    np.testing.assert_array_equal(vals[0], [0.0, 0.0, 3.0])  # the finite edges of the outer bins
    assert beyond[0].tolist() == [True, True, True]
    vals, _ = histogram_percentiles(edges, [0, 0, 0, 0, 0], (50,))
    assert np.isnan(vals[0, 0])


def test_layer_histograms_network_order_ridges_and_out_of_range_marks():
    grid = HistogramGrid.linear(-2.0, 2.0, 40)
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.5, 4000)
    b = np.concatenate([np.tanh(rng.normal(0, 4, 3000)), [50.0] * 7, [-3.0] * 2, [np.nan] * 4])
    df = _table({"late": [b], "early": [a]}, grid, {"early": 0, "late": 1})
    ax = layer_histograms(df.sample(frac=1.0, random_state=1), bins=20, range=(-1.0, 1.0))
    ticks = {t.get_text(): t.get_position()[1] for t in ax.get_yticklabels()}
    assert list(ticks) == ["early", "late"] and ticks["early"] > ticks["late"]  # input on top
    # values of "late" beyond the range are counted at the ends, never in the edge bins
    assert sorted(_texts(ax, "out_of_range")) == sorted(
        [f"◀ {(a < -1).sum()}", f"{(a > 1).sum()} ▶", "◀ 2", "7 ▶"]
    )
    assert _texts(ax, "nonfinite") == ["NaN/Inf 4"]
    # the ridge of "late" (second line): heights of the 20 drawn bins = numpy's counts of
    # the in-range values, on the recorded bins (width 0.1) grouped two by two
    line = ax.get_lines()[1]
    heights = np.asarray(line.get_ydata(), float)[:-1]
    want, _ = np.histogram(b[(b >= -1) & (b <= 1)], bins=np.linspace(-1, 1, 21))
    np.testing.assert_allclose(heights, want / want.max() * 0.9, atol=1e-9)
    # saturation at +-1 is real here, and stays in the edge bins
    assert np.argmax(heights) in (0, 19)


def test_layer_histograms_from_a_monitor_by_step():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.Sigmoid(), nn.Linear(16, 16), nn.Sigmoid())
    with netviz.watch(net, probes="activation_hist", modules=nn.Sigmoid) as mon:
        for _ in range(3):
            net(torch.randn(32, 4))
            mon.step()
    ax = layer_histograms(mon, step=1)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1", "3"]
    assert ax.get_xlabel() == "activation value (step 1)"
    lo, hi = ax.get_xlim()
    assert 0 <= lo < hi <= 1  # sigmoid outputs, edges snapped to recorded bins
    with pytest.raises(ValueError, match="recorded steps"):
        layer_histograms(mon, step=7)


def test_distributions_over_steps_bands_and_marks():
    grid = HistogramGrid.log()
    rng = np.random.default_rng(0)
    steps = [rng.normal(0, 1.0 / (s + 1), 2000) for s in range(5)]
    steps[3] = np.concatenate([steps[3], [np.nan, np.inf], [1e9] * 3])
    df = _table({"x": steps}, grid, {"x": 0})
    _, given = plt.subplots()
    ax = distributions_over_steps(df, given, modules="x")
    assert ax is given
    assert len(ax.collections) == 4  # four bands
    median = ax.get_lines()[0]
    np.testing.assert_array_equal(median.get_xdata(), np.arange(5))
    true_median = [np.median(v[np.isfinite(v)]) for v in steps]
    # within one recorded bin of the median (bins 1.25x apart in magnitude)
    assert np.all(np.abs(np.asarray(median.get_ydata()) - true_median) < 0.1)
    assert _texts(ax, "out_of_range") == ["≥ 1.34e+08: 3 max/step"]
    assert _texts(ax, "nonfinite") == ["NaN/Inf: 2 max/step"]
    two = _table({"a": steps, "b": steps}, grid, {"a": 1, "b": 0})
    out = distributions_over_steps(two)
    assert isinstance(out, netviz.plot.PlotGrid) and out.axes.shape == (1, 2)
    assert [a.get_title() for a in out.axes.flat] == ["b", "a"]  # network order
    # one layer without an Axes is still a grid (the return type follows `ax`)
    assert distributions_over_steps(two, modules="a").axes.shape == (1, 1)
    with pytest.raises(ValueError, match="selects 2 layers"):
        distributions_over_steps(two, plt.subplots()[1])
    with pytest.raises(ValueError, match="match no module name"):
        distributions_over_steps(df, modules="zz")


def test_histograms_over_steps_cells_are_the_counts():
    grid = HistogramGrid.linear(0.0, 1.0, 4)
    data = [np.array([0.1, 0.1, 0.6, 2.0]), np.array([0.3, np.nan, -5.0, -5.0])]
    ax = histograms_over_steps(_table({"m": data}, grid, {"m": 0}), colorbar=False)
    (mesh,) = ax.collections
    cells = np.ma.filled(mesh.get_array(), 0).reshape(-1, 2)  # rows: bins, then NaN; cols: steps
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["< 0", "0", "0.25", "0.5", "0.75", "≥ 1", "NaN"]
    np.testing.assert_array_equal(cells, [[0, 2], [2, 0], [0, 1], [1, 0], [0, 0], [1, 0], [0, 1]])
    assert ax.get_xlabel() == "step"


def test_input_errors():
    with pytest.raises(TypeError, match="histogram table"):
        layer_histograms(42)
    empty = HistogramStore().to_pandas()
    with pytest.raises(ValueError, match="no histograms to draw"):
        layer_histograms(empty)
    df = _table({"m": [np.zeros(3)]}, HistogramGrid.log(), {"m": 0})
    with pytest.raises(ValueError, match="grad_hist"):
        layer_histograms(df, probe="grad_hist")
    with pytest.raises(ValueError, match="`bins`"):
        layer_histograms(df, bins=0)


def test_activation_distributions_counts_out_of_range_values_apart():
    torch.manual_seed(0)
    x = torch.randn(5000)
    acts = {
        "a": x,
        "b": torch.cat([torch.tanh(4 * x), torch.full((9,), 3.0), torch.tensor([float("nan")])]),
    }
    ax = activation_distributions(acts, bins=10, range=(-1.0, 1.0))
    lines = ax.get_lines()
    b = acts["b"].numpy()
    b = b[np.isfinite(b)]
    want, _ = np.histogram(b[(b >= -1) & (b <= 1)], bins=np.linspace(-1, 1, 11))
    heights = np.asarray(lines[1].get_ydata(), float)[:-1]
    np.testing.assert_allclose(heights, want / want.max() * 0.9, atol=1e-9)
    # the 9 values at 3.0 are a count at the end, not a spike in the last bin
    assert want[-1] == ((b > 0.8) & (b <= 1)).sum()
    a = x.numpy()
    assert sorted(_texts(ax, "out_of_range")) == sorted(
        [f"◀ {(a < -1).sum()}", f"{(a > 1).sum()} ▶", "9 ▶"]
    )
    assert _texts(ax, "nonfinite") == ["NaN/Inf 1"]
    # default range: tanh saturation at +-1 is inside it and piles up in the edge bins
    sat = activation_distributions({"t": torch.tanh(5 * x)}, bins=20)
    h = np.asarray(sat.get_lines()[0].get_ydata(), float)[:-1]
    assert np.argmax(h) in (0, 19) and sat.get_xlim() == (-1.0, 1.0)
    assert not _texts(sat, "out_of_range")


def test_histogram_table_plots_from_a_saved_run(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with netviz.watch(net, probes=["grad_hist", "grad_norm"], optimizer=opt) as mon:
        for _ in range(3):
            opt.zero_grad()
            net(torch.randn(8, 4)).square().mean().backward()
            opt.step()
    path = mon.save(tmp_path / "run.parquet")
    ax = histograms_over_steps(path, modules="2", colorbar=False)
    assert ax.get_ylabel() == "grad_hist bin (lower edge)"
    (mesh,) = ax.collections
    assert np.ma.filled(mesh.get_array(), 0).sum() == 3 * (8 * 2 + 2)  # numel of layer 2's grads
    assert isinstance(pd.read_parquet(tmp_path / "run.histograms.parquet"), pd.DataFrame)


@pytest.mark.slow
def test_the_docs_figure_run_collapses_its_last_layer(monkeypatch):
    """What docs/watch.md says of examples/sigmoid_distributions.py, from its records."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "examples"))
    from sigmoid_distributions import train

    hist = train(steps=301).histograms()
    keys, edges, counts = dense_counts(hist)
    at = keys.step.to_numpy() == 300
    values, _ = histogram_percentiles(edges, counts[at][:, : len(edges) - 1], (50,))
    median = values[:, 0]
    by_layer = dict(zip(keys.module[at], median))
    assert by_layer["9"] < 0.15  # the last sigmoid collapsed towards 0
    assert all(0.4 < by_layer[m] < 0.65 for m in ("1", "3", "5"))
