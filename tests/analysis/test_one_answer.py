"""One answer: a network diagnosed live and from its ``watch`` records agrees.

Each network is trained a few steps, then one more step is recorded with
``watch``; ``diagnose(model, batch)`` on the same network and batch must give
the same kinds, modules, layers that count for depth and flow ratio.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import netviz
from netviz import diagnose
from netviz.capture.probes import UnitActivity

PROBES = ["grad_norm", "grad_stats", "activation_stats", UnitActivity()]


def mlp_with_a_dead_layer():
    net = nn.Sequential(
        nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4)
    )
    with torch.no_grad():
        net[2].bias[:24] = -100.0
    return net, torch.randn(64, 16), torch.randint(0, 4, (64,))


class ConvBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.act = nn.ReLU()
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        h = self.act(self.bn1(self.conv1(x)))
        h = self.act(self.bn2(self.conv2(h)))
        return self.head(h.mean(dim=(2, 3)))


def cnn_with_batchnorm():
    return ConvBN(), torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(8, 32)
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 3)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x)).mean(1))


def transformer_encoder():
    return Encoder(), torch.randn(16, 6, 8), torch.randint(0, 3, (16,))


def _trained_then_recorded(build):
    torch.manual_seed(0)
    net, x, y = build()
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    opt.zero_grad()
    with netviz.watch(net, probes=PROBES) as mon:
        F.cross_entropy(net(x), y).backward()
        mon.step()
    opt.zero_grad()
    return net, x, y, mon.to_pandas()


def _answer(report):
    flow = report.check("flow")
    return {
        "findings": [(f.kind, f.module, f.severity) for f in report.findings],
        "layers": report.summary["layers"],
        "depth_layers": report.summary["depth_layers"],
        "flow": (flow.status, flow.modules),
    }


@pytest.mark.parametrize(
    ("build", "n_layers"),
    [
        pytest.param(mlp_with_a_dead_layer, 3, id="mlp"),
        pytest.param(cnn_with_batchnorm, 5, id="cnn-batchnorm"),
        # embed, 2 x (self_attn, out_proj, linear1, linear2, norm1, norm2), head
        pytest.param(transformer_encoder, 14, id="transformer-encoder"),
    ],
)
def test_model_and_records_give_one_answer(build, n_layers):
    net, x, y, records = _trained_then_recorded(build)
    live = diagnose(net, x, y)
    rec = diagnose(records=records)
    assert _answer(live) == _answer(rec)
    assert live.summary["layers"] == n_layers
    a = live.summary["healthy_flow"] or ""
    b = rec.summary["healthy_flow"] or ""
    assert a == b  # the same factor over the same layers, printed the same way
    if build is mlp_with_a_dead_layer:
        assert ("dead_units", "3", "warning") in _answer(live)["findings"]


def test_transformer_depth_ends_are_real_layers():
    # out_proj is used through its weight (never called): it belongs inside its
    # attention, not at the output end of the depth series
    _, _, _, records = _trained_then_recorded(transformer_encoder)
    layers = diagnose(records=records).summary["depth_layers"]
    assert layers[0] == "embed" and layers[-1] == "head"
    i = layers.index("encoder.layers.0.self_attn")
    assert layers[i + 1] == "encoder.layers.0.self_attn.out_proj"


def test_flow_ratio_counts_normalisation_layers_both_ways():
    net, x, y, _ = _trained_then_recorded(cnn_with_batchnorm)
    live = diagnose(net, x, y)
    assert "bn1" in live.summary["depth_layers"]  # one definition: modules with gradients
    assert live.summary["depth_layers"] == ["conv1", "bn1", "conv2", "bn2", "head"]
