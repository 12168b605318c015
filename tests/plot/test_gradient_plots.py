"""Gradient plots: inspect the artists (axes, scales, data), not pictures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import netviz
from netviz.plot.gradients import (
    activation_distributions,
    gradient_flow,
    stat_over_steps,
    timestep_gradients,
)


def _records(steps=3, scale=1.0):
    """grad_norm rows for modules "a" (input side) and "b", plus activation rows in execution order."""
    rows = []
    for s in range(steps):
        # activation rows: "b" registered second but "a" runs first
        rows += [
            (s, "a", 0, "activation_stats", "mean", 0.0),
            (s, "b", 0, "activation_stats", "mean", 0.0),
        ]
        rows += [(s, "b", 0, "grad_norm", "l2", scale * 10.0 ** (s + 1))]
        rows += [(s, "a", 0, "grad_norm", "l2", scale * 10.0**-s)]
    return pd.DataFrame(rows, columns=["step", "module", "call", "probe", "stat", "value"])


def test_lazy_names_resolve_to_this_module():
    assert netviz.plot.gradient_flow is gradient_flow
    assert netviz.plot.timestep_gradients is timestep_gradients


def test_gradient_flow_boxes_per_layer_on_log_scale():
    ax = gradient_flow(_records())
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]  # network order
    # seaborn draws one box patch per layer; its whiskers span the recorded values
    ymin, ymax = ax.get_ylim()
    assert ymin <= 1e-2 and ymax >= 1e3
    assert len(ax.patches) == 2


def test_gradient_flow_single_step_draws_points_with_the_values():
    ax = gradient_flow(_records(steps=1))
    line = ax.get_lines()[0]
    np.testing.assert_allclose(np.asarray(line.get_ydata(), float), [1.0, 10.0])


def test_gradient_flow_compare_side_by_side():
    ax = gradient_flow(_records(), label="plain", compare={"skip": _records(scale=2.0)})
    assert len(ax.patches) >= 4  # two runs x two layers
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["plain", "skip"]
    # compare alone works as well
    ax2 = gradient_flow(None, compare={"x": _records(), "y": _records()})
    assert [t.get_text() for t in ax2.get_legend().get_texts()] == ["x", "y"]


def test_gradient_flow_from_a_model_uses_gradient_entries():
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    net(torch.randn(5, 3)).sum().backward()
    ax = gradient_flow(net)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "2"]
    assert ax.get_ylabel() == "|gradient|"
    # the box medians are the medians of the absolute gradient entries
    medians = [m.get_ydata()[0] for m in ax.containers[0].medians]
    for name, got in zip(["0", "2"], medians):
        mod = net.get_submodule(name)
        entries = torch.cat([p.grad.ravel() for p in mod.parameters()]).abs().numpy()
        assert got == pytest.approx(np.median(entries))


def test_gradient_flow_on_given_axes_and_errors():
    _, ax = plt.subplots()
    assert gradient_flow(_records(), ax=ax) is ax
    with pytest.raises(ValueError, match="no gradient statistics"):
        gradient_flow(_records().query("probe != 'grad_norm'"))
    with pytest.raises(ValueError, match="without gradients"):
        gradient_flow(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="`compare` must be a dict"):
        gradient_flow(_records(), compare=[1])
    with pytest.raises(TypeError, match="record table"):
        gradient_flow(3)
    with pytest.raises(ValueError, match="available"):
        gradient_flow(_records(), stat="abs_mean")


def test_timestep_gradients_from_records_matches_values():
    rnn = nn.RNN(2, 4)
    with netviz.watch(rnn, probes="timestep_grad") as mon:
        for _ in range(2):
            out, _ = rnn(torch.randn(6, 3, 2))
            out[-1].sum().backward()
            mon.step()
    df = mon.to_pandas()
    ax = timestep_gradients(df)
    assert ax.get_yscale() == "log"
    line = ax.get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), np.arange(6))
    want = df.groupby("call").value.median().to_numpy()
    np.testing.assert_allclose(line.get_ydata(), want)
    assert len(ax.collections) == 1  # the IQR band over the two steps
    ax = timestep_gradients(df, step=1)
    np.testing.assert_allclose(
        ax.get_lines()[0].get_ydata(), df[df.step == 1].sort_values("call").value
    )


def test_timestep_gradients_compare_and_errors():
    ax = timestep_gradients(
        None,
        compare={"sigma 0.5": 0.5 ** np.arange(5)[::-1], "sigma 1.5": 1.5 ** np.arange(5)[::-1]},
    )
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["sigma 0.5", "sigma 1.5"]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), 1.5 ** np.arange(5)[::-1])
    with pytest.raises(ValueError, match="timestep_grad"):
        timestep_gradients(
            pd.DataFrame(columns=["step", "module", "call", "probe", "stat", "value"])
        )
    with pytest.raises(ValueError, match="1-D"):
        timestep_gradients(np.zeros((2, 2, 2)))


def test_stat_over_steps_one_line_per_layer():
    ax = stat_over_steps(_records(), stat="l2")
    assert ax.get_yscale() == "log"  # spans five decades
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["a", "b"]
    a, b = ax.get_lines()[:2]  # data lines come first, in hue order
    np.testing.assert_allclose(a.get_ydata(), [1.0, 0.1, 0.01])
    np.testing.assert_allclose(b.get_ydata(), [10.0, 100.0, 1000.0])
    with pytest.raises(ValueError, match="available"):
        stat_over_steps(_records(), stat="nope")
    with pytest.raises(ValueError, match="`modules`"):
        stat_over_steps(_records(), stat="l2", modules=["zz"])
    one = stat_over_steps(_records(), stat="l2", modules="b")
    assert [t.get_text() for t in one.get_legend().get_texts()] == ["b"]


def test_stat_over_steps_needs_probe_when_ambiguous():
    df = pd.concat([_records(), _records().assign(probe="grad_stats")])
    with pytest.raises(ValueError, match="choose one with `probe=`"):
        stat_over_steps(df, stat="l2")
    assert stat_over_steps(df, stat="l2", probe="grad_stats").get_ylabel() == "grad_stats · l2"


def test_activation_distributions_ridges_and_records():
    acts = {"l1": torch.tanh(torch.randn(2000)), "l2": torch.tanh(5 * torch.randn(2000))}
    ax = activation_distributions(acts, bins=20)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["l1", "l2"]
    assert len(ax.collections) == 2  # one filled ridge per layer
    # the saturated layer's ridge peaks at the bounds
    lines = ax.get_lines()
    y_sat = np.asarray(lines[1].get_ydata(), float)
    assert np.argmax(y_sat) in (0, len(y_sat) - 1)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    with netviz.watch(net, probes="activation_stats") as mon:
        net(torch.randn(8, 3))
    ax = activation_distributions(mon.to_pandas())
    assert sorted(t.get_text() for t in ax.get_yticklabels()) == ["0", "1"]
    with pytest.raises(ValueError, match="`bins`"):
        activation_distributions(acts, bins=0)
    with pytest.raises(ValueError, match="empty"):
        activation_distributions({})
