"""output_shape, param_count and macs against real modules and FlopCounterMode."""

from __future__ import annotations

import pytest
import torch
from _layermath_oracle import ERROR, one_thread, ours_outcome, torch_outcome  # noqa: F401
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from netviz.layermath import macs, output_shape, param_count, supported_types

pytestmark = [
    pytest.mark.filterwarnings("ignore:LSTM with projections:UserWarning"),
    pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN:UserWarning"),
]

MODULES = [
    (lambda: nn.Conv2d(3, 4, 3, padding="same", padding_mode="circular"), (2, 3, 5, 6)),
    (lambda: nn.Conv1d(2, 4, 3, stride=2), (2, 9)),  # unbatched
    (
        lambda: nn.Conv3d(1, 2, (1, 2, 3), padding=(0, 1, 1), padding_mode="replicate"),
        (1, 1, 3, 4, 5),
    ),
    (lambda: nn.ConvTranspose2d(2, 3, 3, stride=2, output_padding=1), (2, 4, 4)),
    (lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True), (1, 2, 7, 8)),
    (lambda: nn.AvgPool1d(3, ceil_mode=True, padding=1), (2, 10)),
    (lambda: nn.AdaptiveAvgPool2d((3, None)), (2, 1, 7, 5)),
    (lambda: nn.AdaptiveMaxPool1d(4, return_indices=True), (2, 3, 9)),
    (lambda: nn.AdaptiveAvgPool3d(2), (1, 3, 5, 5)),
    (lambda: nn.Linear(5, 3), (2, 7, 5)),
    (lambda: nn.Linear(5, 3), (5,)),
    (lambda: nn.Flatten(), (2, 3, 4, 5)),
    (lambda: nn.Flatten(0, 2), (2, 3, 4, 5)),
    (lambda: nn.Unflatten(1, (2, -1)), (3, 8)),
    (lambda: nn.BatchNorm1d(3), (4, 3)),
    (lambda: nn.BatchNorm1d(3), (4, 3, 7)),
    (lambda: nn.BatchNorm2d(3), (2, 3, 4, 4)),
    (lambda: nn.LayerNorm((4, 5)), (2, 3, 4, 5)),
    (lambda: nn.GroupNorm(2, 4), (2, 4, 3)),
    (lambda: nn.Dropout(0.5), (2, 3)),
    (lambda: nn.GELU(), (2, 3, 4)),
    (lambda: nn.Softmax(dim=-1), (2, 3)),
    (lambda: nn.Identity(), (1, 2, 3)),
    (lambda: nn.Upsample(scale_factor=1.5), (1, 2, 5, 7)),
    (lambda: nn.Upsample(size=(4, 9), mode="bilinear"), (1, 2, 5, 7)),
    (lambda: nn.Upsample(scale_factor=(2, 3), mode="nearest"), (1, 1, 2, 3)),
    (lambda: nn.LSTM(5, 7, num_layers=2, bidirectional=True, proj_size=3), (4, 2, 5)),
    (lambda: nn.GRU(5, 7, batch_first=True), (2, 4, 5)),
    (lambda: nn.RNN(5, 7), (4, 5)),  # unbatched
    (lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), (2, 5, 8)),
    (
        lambda: nn.Sequential(
            nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 2)
        ),
        (3, 1, 8, 8),
    ),
]


@pytest.mark.parametrize(("build", "shape"), MODULES)
def test_output_shape_matches_forward(build, shape):
    module = build().eval()
    expected = torch_outcome(lambda: module, shape)
    assert expected != ERROR
    assert output_shape(module, shape) == expected


def test_output_shape_embedding_and_attention():
    emb = nn.Embedding(10, 4)
    assert output_shape(emb, (2, 3)) == tuple(emb(torch.zeros(2, 3, dtype=torch.long)).shape)
    for batch_first, shape in [(False, (5, 2, 8)), (True, (2, 5, 8)), (False, (5, 8))]:
        mha = nn.MultiheadAttention(8, 2, batch_first=batch_first)
        q = torch.randn(shape)
        assert output_shape(mha, shape) == tuple(mha(q, q, q)[0].shape)


@pytest.mark.parametrize(
    ("module", "shape", "match"),
    [
        (nn.Conv2d(3, 4, 3), (1, 2, 5, 5), "3 input channels"),
        (nn.Conv2d(3, 4, 3), (5, 5), "4-D"),
        (nn.Linear(4, 2), (3, 5), "last dimension of 4"),
        (nn.LSTM(4, 2), (3, 2, 5), "input_size 4"),
        (nn.LayerNorm(4), (3, 5), r"\(4,\)"),
        (nn.Conv1d(1, 1, 3, padding=3, padding_mode="reflect"), (1, 1, 3), "reflect"),
        (nn.MaxPool1d(4), (1, 1, 3), "kernel_size"),
    ],
)
def test_output_shape_refusals(module, shape, match):
    assert torch_outcome(lambda: module, shape) == ERROR  # PyTorch refuses too
    with pytest.raises(ValueError, match=match):
        output_shape(module, shape)


def test_unsupported_module_names_type_and_lists_supported():
    class Custom(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(NotImplementedError, match=r"Custom; supported types: .*Conv2d"):
        output_shape(Custom(), (1, 2))

    class MySeq(nn.Sequential):  # overriding forward: the chaining rule no longer applies
        def forward(self, x):
            return super().forward(x).sum()

    with pytest.raises(NotImplementedError, match="MySeq"):
        output_shape(MySeq(nn.ReLU()), (1, 2))
    assert "LSTM" in supported_types() and supported_types() == sorted(supported_types())


def test_output_shape_bad_types():
    with pytest.raises(TypeError, match="input_shape"):
        output_shape(nn.ReLU(), 5)
    with pytest.raises(TypeError, match="module"):
        output_shape("relu", (1,))


def numel(module):
    return sum(p.numel() for p in module.parameters())


@st.composite
def rnn_modules(draw):
    cls = draw(st.sampled_from([nn.RNN, nn.GRU, nn.LSTM]))
    kw = {
        "input_size": draw(st.integers(1, 6)),
        "hidden_size": draw(st.integers(2, 6)),
        "num_layers": draw(st.integers(1, 3)),
        "bias": draw(st.booleans()),
        "bidirectional": draw(st.booleans()),
    }
    if cls is nn.LSTM:
        kw["proj_size"] = draw(st.integers(0, kw["hidden_size"] - 1))
    return cls(**kw)


@given(rnn_modules())
def test_param_count_rnn(module):
    assert param_count(module) == numel(module)


@given(
    e=st.sampled_from([4, 6, 8]),
    heads=st.sampled_from([1, 2]),
    kdim=st.one_of(st.none(), st.integers(1, 5)),
    vdim=st.one_of(st.none(), st.integers(1, 5)),
    bias=st.booleans(),
    bias_kv=st.booleans(),
)
def test_param_count_multihead_attention(e, heads, kdim, vdim, bias, bias_kv):
    m = nn.MultiheadAttention(e, heads, bias=bias, add_bias_kv=bias_kv, kdim=kdim, vdim=vdim)
    assert param_count(m) == numel(m)
    if kdim is None and vdim is None and bias and not bias_kv:
        assert param_count(m) == 4 * e * e + 4 * e


@given(
    nd=st.integers(1, 3),
    groups=st.sampled_from([1, 2, 3]),
    c=st.integers(1, 3),
    k=st.integers(1, 3),
    bias=st.booleans(),
    transposed=st.booleans(),
)
def test_param_count_conv(nd, groups, c, k, bias, transposed):
    cls = (
        {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
        if transposed
        else {
            1: nn.Conv1d,
            2: nn.Conv2d,
            3: nn.Conv3d,
        }
    )
    m = cls[nd](groups * c, groups * (c + 1), k, groups=groups, bias=bias)
    assert param_count(m) == numel(m)


@pytest.mark.parametrize(
    "module",
    [
        nn.Linear(5, 3),
        nn.Linear(5, 3, bias=False),
        nn.Bilinear(2, 3, 4),
        nn.Embedding(10, 3),
        nn.BatchNorm2d(4),
        nn.BatchNorm1d(4, affine=False),
        nn.InstanceNorm2d(3, affine=True),
        nn.GroupNorm(2, 4),
        nn.LayerNorm((3, 4)),
        nn.LayerNorm(4, bias=False),
        nn.RMSNorm(5),
        nn.PReLU(3),
        nn.LSTMCell(3, 4),
        nn.GRUCell(3, 4, bias=False),
        nn.TransformerEncoderLayer(8, 2, 16),
        nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2, enable_nested_tensor=False),
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Sequential(nn.Linear(2, 2))),
    ],
)
def test_param_count_many_kinds(module):
    assert param_count(module) == numel(module)


def test_param_count_known_values():
    # independent hand computation, with the two RNN bias vectors
    assert param_count(nn.LSTM(10, 20)) == 4 * 20 * 10 + 4 * 20 * 20 + 2 * 4 * 20
    assert param_count(nn.BatchNorm2d(16)) == 32  # running stats are buffers


def test_param_count_custom_parameters_refused():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(3))

    with pytest.raises(NotImplementedError, match="Scale"):
        param_count(Scale())


def flops(module, *inputs):
    # with oneDNN off, as a fused oneDNN LSTM kernel would be opaque to the counter
    with (
        torch.backends.mkldnn.flags(enabled=False),
        FlopCounterMode(display=False) as counter,
        torch.no_grad(),
    ):
        module(*inputs)
    return counter.get_total_flops()


@pytest.mark.parametrize(
    ("module", "shape"),
    [
        (nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), (2, 4, 5, 5)),
        (nn.Conv1d(3, 5, 4, dilation=2), (3, 11)),
        (nn.Conv3d(2, 3, 2), (1, 2, 3, 4, 5)),
        (nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2), (2, 4, 5, 5)),
        (nn.Linear(7, 3), (2, 5, 7)),
        (nn.LSTM(5, 7, num_layers=2, bidirectional=True, proj_size=3), (4, 2, 5)),
        (nn.GRU(5, 7, batch_first=True), (2, 4, 5)),
        (
            nn.Sequential(
                nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 2)
            ),
            (3, 1, 8, 8),
        ),
    ],
)
def test_flop_counter_counts_twice_the_macs(module, shape):
    assert flops(module, torch.randn(shape)) == 2 * macs(module, shape)


def test_macs_attention_against_flop_counter():
    m = nn.MultiheadAttention(8, 2, kdim=5, vdim=6, batch_first=True)
    q, k, v = torch.randn(2, 4, 8), torch.randn(2, 6, 5), torch.randn(2, 6, 6)
    assert flops(m, q, k, v) == 2 * macs(m, ((2, 4, 8), (2, 6, 5)))
    m = nn.MultiheadAttention(8, 2)
    q = torch.randn(4, 3, 8)
    assert flops(m, q, q, q) == 2 * macs(m, (4, 3, 8))


def test_macs_by_hand_and_refusals():
    # 8 output channels x 3*3*3 taps x 32*32 positions
    assert macs(nn.Conv2d(3, 8, 3, padding=1), (1, 3, 32, 32)) == 8 * 27 * 32 * 32
    assert macs(nn.ReLU(), (4, 5)) == 0
    with pytest.raises(NotImplementedError, match="TransformerEncoderLayer"):
        macs(nn.TransformerEncoderLayer(8, 2), (3, 2, 8))
    with pytest.raises(ValueError, match="in"):
        macs(nn.Linear(3, 2), (4, 5))
    assert ours_outcome(lambda: macs(nn.Conv1d(1, 1, 5), (1, 1, 3))) == ERROR
