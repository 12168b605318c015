"""Receptive fields against the measured support of an output unit's input gradient."""

from __future__ import annotations

import pytest
import torch
from _layermath_oracle import one_thread  # noqa: F401  (autouse fixture)
from hypothesis import example, given
from hypothesis import strategies as st
from torch import nn

from netviz.layermath import output_shape, receptive_field


@st.composite
def chains(draw):
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "conv", "avg", "max", "relu"]))
        k = draw(st.integers(1, 4))
        s = draw(st.integers(1, 3))
        if kind == "conv":
            d = draw(st.integers(1, 3))
            p = draw(st.integers(0, 3))
            conv = nn.Conv1d(1, 1, k, stride=s, padding=p, dilation=d, bias=False)
            nn.init.ones_(conv.weight)
            layers.append(conv)
        elif kind == "avg":
            layers.append(nn.AvgPool1d(k, s, draw(st.integers(0, k // 2))))
        elif kind == "max":
            layers.append(nn.MaxPool1d(k, s, draw(st.integers(0, k // 2)), draw(st.integers(1, 2))))
        else:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def gradient_support(net, n, t):
    x = torch.rand(1, 1, n, dtype=torch.float64) + 1.0  # positive: no cancellation, ReLU passes
    x.requires_grad_(True)
    net.double()(x)[0, 0, t].backward()
    return set(torch.nonzero(x.grad[0, 0]).flatten().tolist())


@given(chains(), st.integers(0, 3))
@example(nn.Sequential(nn.Conv1d(1, 1, 3, dilation=2, bias=False)), 0)
def test_receptive_field_bounds_the_gradient_support(net, extra):
    rf = receptive_field(net)[-1]
    # pick the first output unit whose field lies fully inside the input
    t = max(0, -(rf.start // rf.jump))
    n = rf.start + t * rf.jump + rf.size + extra
    while True:
        try:
            if output_shape(net, (1, 1, n))[-1] > t:
                break
        except ValueError:
            pass
        n += 1
    first, last = rf.start + t * rf.jump, rf.start + t * rf.jump + rf.size - 1
    assert first >= 0 and last <= n - 1
    support = gradient_support(net, n, t)
    assert support and min(support) >= first and max(support) <= last
    has_max = any(isinstance(m, nn.MaxPool1d) for m in net)
    if not has_max:  # max pooling routes the gradient to one arg-max only
        assert min(support) == first and max(support) == last


def test_alexnet_receptive_field_known_value():
    # AlexNet's published receptive fields: conv5 163, pool5 195 (Araujo et al., Table 1)
    layers = [
        nn.Conv2d(3, 64, 11, 4, 2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1),
        nn.Conv2d(384, 256, 3, padding=1),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.MaxPool2d(3, 2),
    ]
    rf = receptive_field(nn.Sequential(*layers), input_size=(224, 224))
    assert rf[7].size == (163, 163) and rf[8].size == (195, 195)
    assert rf[8].jump == (32, 32)
    assert rf[8].output_size == (6, 6)
    frame = rf.to_pandas()
    assert list(frame["size"])[-1] == (195, 195)
    assert len(frame) == 9


def test_output_sizes_follow_pytorch():
    net = nn.Sequential(
        nn.Conv2d(1, 1, 3, stride=2, padding=1),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.AvgPool2d(2, padding=1, ceil_mode=True),
    )
    rf = receptive_field(net, input_size=(13, 9))
    measured = [tuple(net[: i + 1](torch.zeros(1, 1, 13, 9)).shape[2:]) for i in range(3)]
    assert [r.output_size for r in rf] == measured


def test_same_padding_even_kernel_and_specs():
    rf = receptive_field([nn.Conv1d(1, 1, 4, padding="same")])
    assert (rf[0].size, rf[0].start) == (4, -1)  # 'same' pads 1 left, 2 right
    rf = receptive_field([{"kernel_size": 3, "stride": 2, "name": "a"}, (3, 1, 1, 2)])
    assert rf[0].name == "a" and [r.size for r in rf] == [3, 11]
    assert rf[1].start == -2 and rf[1].center == 3.0


@pytest.mark.parametrize(
    ("layers", "exc", "match"),
    [
        ([nn.ConvTranspose1d(1, 1, 3)], NotImplementedError, "ConvTranspose1d"),
        ([nn.Linear(3, 3)], NotImplementedError, "Linear"),
        ([nn.Conv1d(1, 1, 3), nn.Conv2d(1, 1, 3)], ValueError, "dimensionalities"),
        ([{"kernel": 3}], ValueError, "kernel_size"),
        ([(0,)], ValueError, "kernel_size"),
        ([(3, 0)], ValueError, "stride"),
        ([(3, 1, -1)], ValueError, "padding"),
        ([], ValueError, "empty"),
        ("conv", TypeError, "layers"),
    ],
)
def test_receptive_field_refusals(layers, exc, match):
    with pytest.raises(exc, match=match):
        receptive_field(layers)
