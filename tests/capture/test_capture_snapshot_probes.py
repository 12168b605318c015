"""The ``attention`` and ``feature_maps`` probes of watch()."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _attention_reference import hook_counts, sdpa_reference
from torch import nn

import netviz
from netviz.capture.attention import capture_attention
from netviz.capture.probes import BUILTIN_PROBES, AttentionSnapshots, FeatureMapSnapshots
from netviz.capture.probes.snapshots import snapshot_tensors

BUILTIN = torch._C._nn.scaled_dot_product_attention


def _encoder():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)


def test_registered_by_name():
    assert BUILTIN_PROBES["attention"] is AttentionSnapshots
    assert BUILTIN_PROBES["feature_maps"] is FeatureMapSnapshots


def test_attention_snapshots_at_recorded_steps_equal_capture():
    enc = _encoder()
    xs = [torch.randn(2, 4, 8) for _ in range(3)]
    seen = []  # is SDPA patched while the watched model's forward runs?
    spy = enc.layers[0].register_forward_hook(
        lambda *a: seen.append(F.scaled_dot_product_attention is not BUILTIN)
    )
    with netviz.watch(enc, probes=["attention"], every=2) as mon:
        for x in xs:
            enc(x).sum().backward()
            # process-wide patches only around forwards of the watched model
            assert F.scaled_dot_product_attention is BUILTIN
            mon.step()
    assert seen == [True, False, True]  # patched on recorded steps 0 and 2 only
    spy.remove()
    snaps = mon.snapshots()
    assert sorted(snaps) == [0, 2]
    assert set(snaps[0]) == {
        ("attention", "layers.0.self_attn", 0),
        ("attention", "layers.1.self_attn", 0),
    }
    for step in (0, 2):
        want = capture_attention(enc, xs[step])
        got = snapshot_tensors(mon, step=step)
        assert list(got) == list(want)
        for k in want:
            torch.testing.assert_close(got[k], want[k])
            assert got[k].device.type == "cpu"
    # detached: nothing left behind
    assert hook_counts(enc) == 0
    assert F.scaled_dot_product_attention is BUILTIN
    assert torch.backends.mha.get_fastpath_enabled()


def test_attention_probe_eval_mode_and_fast_path_restored_on_detach():
    enc = _encoder().eval()
    x = torch.randn(2, 4, 8)
    mon = netviz.watch(enc, probes=["attention"])
    inside = []
    spy = enc.layers[0].register_forward_hook(
        lambda *a: inside.append(torch.backends.mha.get_fastpath_enabled())
    )
    assert torch.backends.mha.get_fastpath_enabled()  # other models are not affected
    with torch.no_grad():
        enc(x)
    assert inside == [False]  # off only during the watched model's forward
    assert torch.backends.mha.get_fastpath_enabled()
    spy.remove()
    mon.detach()
    assert torch.backends.mha.get_fastpath_enabled()
    assert list(snapshot_tensors(mon)) == ["layers.0.self_attn", "layers.1.self_attn"]


class SdpaNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.Module()
        self.attn.q = nn.Linear(4, 4)
        self.out = nn.Linear(4, 4)

    def forward(self, x):
        q = self.attn.q(x)[:, None]
        return self.out(F.scaled_dot_product_attention(q, q, q, is_causal=True)[:, 0])


def test_sdpa_model_run_twice_per_step_keeps_the_first_micro_batch():
    # two forwards in one step are two micro-batches: the step keeps micro-batch 0's
    net = SdpaNet()
    x = torch.randn(2, 3, 4)
    with netviz.watch(net, probes=["attention", "activation_stats"]) as mon:
        net(x)
        net(x * 2)
        mon.step()
    snaps = mon.snapshots()[0]
    assert set(snaps) == {("attention", "", 0)}
    q = net.attn.q(x)[:, None].detach()
    torch.testing.assert_close(snaps[("attention", "", 0)], sdpa_reference(q, q, is_causal=True))
    assert list(snapshot_tensors(mon)) == [""]
    acts = mon.to_pandas().query("module == 'out' and stat == 'numel'")
    assert acts.micro.tolist() == [0, 1] and acts.call.tolist() == [0, 0]


class SdpaTwice(SdpaNet):
    def forward(self, x):
        q = self.attn.q(x)[:, None]
        h = F.scaled_dot_product_attention(q, q, q, is_causal=True)
        return self.out(F.scaled_dot_product_attention(h, h, h)[:, 0])


def test_sdpa_twice_in_one_forward_gives_calls_0_and_1():
    net = SdpaTwice()
    x = torch.randn(2, 3, 4)
    with netviz.watch(net, probes=["attention"]) as mon:
        net(x)
        mon.step()
    assert set(mon.snapshots()[0]) == {("attention", "", 0), ("attention", "", 1)}
    assert list(snapshot_tensors(mon)) == ["#0", "#1"]


def test_feature_map_snapshots():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 20, 3), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(20 * 16, 2)
    )
    x = torch.randn(4, 1, 6, 6)
    with netviz.watch(net, probes=["feature_maps"]) as mon:
        net(x)
        mon.step()
    got = snapshot_tensors(mon, probe="feature_maps")
    assert list(got) == ["0", "1"]  # 2-D outputs are left out by default
    conv = net[0](x).detach()
    torch.testing.assert_close(got["0"], conv[:1, :16])
    torch.testing.assert_close(got["1"], conv[:1, :16].clamp_min(0))
    assert hook_counts(net) == 0
    probe = FeatureMapSnapshots(max_batch=2, max_channels=3, min_dim=2)
    with netviz.watch(net, probes=[probe]) as mon:
        net(x)
    got = snapshot_tensors(mon, probe="feature_maps")
    assert {k: tuple(v.shape) for k, v in got.items()} == {
        "0": (2, 3, 4, 4),
        "1": (2, 3, 4, 4),
        "2": (2, 3),
        "3": (2, 2),
    }


def test_errors():
    with pytest.raises(ValueError, match="max_channels"):
        FeatureMapSnapshots(max_channels=0)
    with pytest.raises(ValueError, match="no snapshots of probe 'attention'"):
        snapshot_tensors({})
    with pytest.raises(ValueError, match="steps with snapshots"):
        snapshot_tensors({0: {("attention", "a", 0): torch.zeros(1)}}, step=3)


def test_exception_inside_watch_leaves_nothing_behind():
    enc = _encoder().eval()
    with pytest.raises(KeyError), netviz.watch(enc, probes=["attention", "feature_maps"]):
        with torch.no_grad():
            enc(torch.randn(1, 3, 8))
        raise KeyError("user error")
    assert hook_counts(enc) == 0
    assert F.scaled_dot_product_attention is BUILTIN
    assert torch.backends.mha.get_fastpath_enabled()
