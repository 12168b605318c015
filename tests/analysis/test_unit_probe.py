"""``UnitActivity`` against counts made by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import netviz
from netviz.capture.probes import UnitActivity


def _stats(module, x, probe=None):
    with netviz.watch(module, probes=[probe or UnitActivity()]) as mon:
        module(x)
    df = mon.to_pandas()
    return dict(zip(df.stat, df.value))


def test_conv_channels_dead_fraction():
    x = torch.randn(4, 6, 5, 5)
    x[:, [1, 4]] = -1.0  # channels 1 and 4 never fire
    assert _stats(nn.ReLU(), x) == {"dead_frac": pytest.approx(2 / 6)}


def test_nearly_dead_uses_the_tolerance():
    x = -torch.ones(200, 3)
    x[0, 0] = 1.0  # unit 0 fires for 1 of 200 inputs (0.5% <= 1%): dead
    x[:3, 1] = 1.0  # unit 1 fires for 3 of 200 (1.5%): alive
    x[:, 2] = 1.0  # unit 2 always fires
    assert _stats(nn.ReLU(), x)["dead_frac"] == pytest.approx(1 / 3)
    assert _stats(nn.ReLU(), x, UnitActivity(dead_tol=0.0))["dead_frac"] == 0.0


def test_saturation_fraction_sigmoid_and_tanh():
    z = torch.tensor([[-10.0, -4.0, 0.0, 4.0, 10.0]])
    sig = torch.sigmoid(z)  # 4.54e-5, 0.018, 0.5, 0.982, 0.99995
    want = ((sig <= 0.01) | (sig >= 0.99)).float().mean().item()
    assert _stats(nn.Sigmoid(), z)["saturated_frac"] == pytest.approx(want) == pytest.approx(0.4)
    t = torch.tanh(z)
    want = (t.abs() >= 0.99).float().mean().item()
    assert _stats(nn.Tanh(), z)["saturated_frac"] == pytest.approx(want)


def test_other_modules_give_no_rows():
    assert _stats(nn.Linear(3, 2), torch.randn(4, 3)) == {}
    assert _stats(nn.GELU(), torch.randn(4, 3)) == {}


def test_bad_parameters():
    with pytest.raises(ValueError, match="`dead_tol`"):
        UnitActivity(dead_tol=1.0)
    with pytest.raises(ValueError, match="`eps`"):
        UnitActivity(eps=0.0)
