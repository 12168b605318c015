"""Subclasses of every supported layer work like their base: no class-name parsing.

A user's ``class MyConv(nn.Conv2d)`` (no forward of its own) must give the
shape its real forward gives, the same receptive field as the base layer and
an ``ok`` row in ``netviz.summary``. The subclasses here are named without
a digit or a ``Nd`` suffix, so any rule read off the class name would fail.
"""

from __future__ import annotations

import pytest
import torch
from _layermath_oracle import ERROR, one_thread, torch_outcome  # noqa: F401
from test_layermath_modules import MODULES
from torch import nn

from netviz import summary
from netviz.errors import LayerConfigError
from netviz.layermath import macs, output_shape, param_count, receptive_field

pytestmark = [
    pytest.mark.filterwarnings("ignore:LSTM with projections:UserWarning"),
    pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN:UserWarning"),
]

EXTRA = [
    (lambda: nn.Conv1d(2, 4, 3, stride=2, dilation=2), (3, 2, 20)),
    (lambda: nn.Conv3d(2, 2, 2, groups=2), (1, 2, 3, 3, 3)),
    (lambda: nn.ConvTranspose1d(2, 3, 4, stride=3, padding=1), (2, 2, 5)),
    (lambda: nn.ConvTranspose3d(1, 2, 2, stride=2, output_padding=1), (1, 1, 2, 3, 2)),
    (lambda: nn.MaxPool1d(3, 2, dilation=2), (2, 3, 11)),
    (lambda: nn.MaxPool3d(2, ceil_mode=True), (1, 1, 5, 5, 5)),
    (lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True), (1, 2, 7, 8)),
    (lambda: nn.AvgPool3d(2), (1, 1, 4, 4, 4)),
    (lambda: nn.AdaptiveMaxPool2d(3), (1, 2, 7, 8)),
    (lambda: nn.AdaptiveAvgPool1d(2), (2, 3, 9)),
    (lambda: nn.AdaptiveMaxPool3d((1, 2, 3)), (1, 1, 4, 4, 4)),
    (lambda: nn.BatchNorm3d(2), (2, 2, 3, 3, 3)),
    (lambda: nn.Dropout2d(0.5), (1, 2, 3, 3)),
    (lambda: nn.Bilinear(3, 4, 5), (2, 3)),
]


def subclassed(module: nn.Module) -> nn.Module:
    """``module`` turned into an instance of a user subclass that adds nothing."""
    module.__class__ = type("Custom", (type(module),), {"__module__": __name__})
    return module


@pytest.mark.parametrize(("build", "shape"), MODULES + EXTRA)
def test_output_shape_of_a_subclass_matches_its_forward(build, shape):
    base = build().eval()
    module = subclassed(build().eval())
    assert isinstance(module, type(base)) and type(module) is not type(base)
    if isinstance(base, nn.Bilinear):
        expected = tuple(module(torch.zeros(shape), torch.zeros(2, 4)).shape)
    else:
        expected = torch_outcome(lambda: module, shape)
    assert expected != ERROR
    assert output_shape(module, shape) == expected
    assert param_count(module) == sum(p.numel() for p in module.parameters())
    if not isinstance(base, (nn.Sequential, nn.TransformerEncoderLayer, nn.Bilinear)):
        assert macs(module, shape) == macs(base, shape)


def test_a_subclass_with_its_own_forward_is_not_predicted():
    class Doubling(nn.Linear):
        def forward(self, x):
            return torch.cat([super().forward(x)] * 2, dim=-1)

    with pytest.raises(NotImplementedError, match="Doubling"):
        output_shape(Doubling(3, 4), (2, 3))


class MyConv(nn.Conv2d):
    pass


class MyPool(nn.MaxPool2d):
    pass


class MyAvg(nn.AvgPool1d):
    pass


class MyLine(nn.Conv1d):
    pass


def test_receptive_field_of_subclasses_equals_the_base_layers():
    ours = receptive_field([MyConv(1, 1, 3, stride=2), MyPool(2), MyConv(1, 1, 3)], (16, 16))
    base = receptive_field(
        [nn.Conv2d(1, 1, 3, stride=2), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3)], (16, 16)
    )
    assert [(r.size, r.jump, r.start, r.output_size) for r in ours] == [
        (r.size, r.jump, r.start, r.output_size) for r in base
    ]
    assert ours[-1].size == (13, 13)  # 3, then the pool adds 1*2, the conv 2*4
    # the dimensionality of a subclass comes from its base class, not its name
    with pytest.raises(LayerConfigError, match="dimensionalities"):
        receptive_field([MyLine(1, 1, 3), MyConv(1, 1, 3)])
    one_d = receptive_field([MyLine(1, 1, 3), MyAvg(2)], 10)
    assert [r.size for r in one_d] == [3, 4] and one_d[-1].output_size == 4


def test_summary_rows_of_subclasses_are_checked():
    model = nn.Sequential(MyConv(1, 4, 3, padding=1), nn.ReLU(), MyPool(2), nn.Flatten())
    rows = summary(model, (2, 1, 8, 8)).to_pandas().set_index("module")
    assert list(rows.loc[["0", "2", "3"], "check"]) == ["ok", "ok", "ok"]
    assert rows.loc["2", "output_shape"] == rows.loc["2", "predicted_shape"] == (2, 4, 4, 4)
    assert rows.loc["0", "type"] == "MyConv"
    assert rows.loc["2", "receptive_field"] == (4, 4)
