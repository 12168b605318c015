"""Output-size formulas against the real PyTorch modules (Hypothesis).

Each test draws valid *and* invalid configurations (zero strides and kernels,
negative or oversized padding, kernels larger than the input, large
output_padding), runs the real module as the oracle, and asserts that either
both give the same size or both refuse (PyTorch raises -> we raise ValueError).
"""

from __future__ import annotations

import math

import pytest
import torch
from _layermath_oracle import ERROR, one_thread, ours_outcome, torch_outcome  # noqa: F401
from hypothesis import example, given
from hypothesis import strategies as st
from torch import nn

from netviz._compat import conv_transpose_accepts_empty
from netviz.layermath import (
    adaptive_pool_windows,
    avg_pool_output_size,
    conv_output_size,
    conv_transpose_output_size,
    output_shape,
    pool_output_size,
    unfold_blocks,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning"),
    pytest.mark.filterwarnings("ignore:Initializing zero-element tensors:UserWarning"),
    pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN:UserWarning"),
]

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONV_T = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
MAXPOOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
AVGPOOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}


def per_dim(nd, values):
    """An int (same for all dims) or a tuple of length nd."""
    return st.one_of(values, st.tuples(*([values] * nd)))


@st.composite
def conv_configs(draw):
    nd = draw(st.integers(1, 3))
    hi = 9 if nd < 3 else 6
    size = draw(st.tuples(*([st.integers(1, hi)] * nd)))
    k = draw(per_dim(nd, st.integers(0, 4)))
    s = draw(per_dim(nd, st.integers(0, 3)))
    d = draw(per_dim(nd, st.integers(1, 3)))
    p = draw(st.one_of(per_dim(nd, st.integers(-1, 3)), st.sampled_from(["same", "valid"])))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    groups = draw(st.sampled_from([1, 2]))
    return nd, size, k, s, p, d, mode, groups


@given(conv_configs())
@example((1, (5,), 3, 2, "same", 1, "zeros", 1))  # 'same' with a stride: refused
@example((2, (4, 4), 4, 1, "same", 1, "zeros", 1))  # even kernel: asymmetric 'same'
@example((1, (2,), 3, 1, 0, 1, "zeros", 1))  # kernel larger than input
@example((1, (3,), 3, 1, 0, 2, "zeros", 1))  # dilated kernel spans 5 > 3
def test_conv_output_size_matches_torch(cfg):
    nd, size, k, s, p, d, mode, groups = cfg
    c = 2 * groups
    expected = torch_outcome(
        lambda: CONV[nd](c, c, k, stride=s, padding=p, dilation=d, groups=groups), (1, c, *size)
    )
    if mode == "zeros":
        ours = ours_outcome(lambda: conv_output_size(size, k, s, p, d))
        assert ours == (expected if expected == ERROR else expected[2:])
    # padding_mode and groups through output_shape (only if the module can be built)
    try:
        module = CONV[nd](
            c, c, k, stride=s, padding=p, dilation=d, groups=groups, padding_mode=mode
        )
    except (ValueError, RuntimeError):
        return
    expected = torch_outcome(lambda: module, (1, c, *size))
    assert ours_outcome(lambda: output_shape(module, (1, c, *size))) == expected


@given(st.integers(1, 9), st.integers(1, 3))
def test_conv_output_size_form_follows_input(n, k):
    assert isinstance(conv_output_size(n + 2, k), int)
    assert conv_output_size((n + 2,), k) == (conv_output_size(n + 2, k),)
    assert conv_output_size((n + 2, n + 2), k) == (conv_output_size(n + 2, k),) * 2


@st.composite
def conv_t_configs(draw):
    nd = draw(st.integers(1, 3))
    size = draw(st.tuples(*([st.integers(1, 5)] * nd)))
    k = draw(per_dim(nd, st.integers(1, 4)))
    s = draw(per_dim(nd, st.integers(1, 3)))
    d = draw(per_dim(nd, st.integers(1, 3)))
    p = draw(per_dim(nd, st.integers(0, 4)))
    op = draw(per_dim(nd, st.integers(0, 3)))
    return nd, size, k, s, p, op, d


@given(conv_t_configs())
@example((1, (5,), 3, 1, 0, 1, 2))  # output_padding 1 >= stride 1 but < dilation 2: legal
@example((1, (5,), 3, 2, 0, 2, 1))  # output_padding 2 >= stride and dilation: refused
@example((1, (1,), 1, 1, 1, 0, 1))  # padding eats the whole output
@example((2, (1, 3), 4, 1, 2, 0, 1))  # output size 0: the reference kernel refuses it
def test_conv_transpose_output_size_matches_torch(cfg):
    """The formula alone is PyTorch's reference kernel (oneDNN off): an empty output is refused."""
    nd, size, k, s, p, op, d = cfg
    with torch.backends.mkldnn.flags(enabled=False):
        expected = torch_outcome(
            lambda: CONV_T[nd](1, 1, k, stride=s, padding=p, output_padding=op, dilation=d),
            (1, 1, *size),
        )
    ours = ours_outcome(lambda: conv_transpose_output_size(size, k, s, p, op, d))
    assert ours == (expected if expected == ERROR else expected[2:])


@given(conv_t_configs())
@example((2, (1, 3), 4, 1, 2, 0, 1))  # output size 0 along the first dimension: empty tensor
@example((1, (2,), 3, 1, 2, 0, 1))  # 1-D, output size 0
@example((1, (1,), 3, 1, 2, 0, 1))  # output size -1: refused by oneDNN too
def test_conv_transpose_empty_ok_matches_pytorch(cfg):
    """``empty_ok=True`` allows size 0 along a dimension, as PyTorch's oneDNN kernel does.

    Where PyTorch runs the configuration (batch 2), the sizes agree; where it
    refuses an output that the formula gives as empty, the refusal must come
    from the reference kernel (PyTorch chose it over oneDNN for this input:
    ``conv_transpose_accepts_empty`` says no, and that rule is checked against
    the real kernels in ``tests/capture/test_compat.py``), never from the size.
    """
    nd, size, k, s, p, op, d = cfg

    def build():
        return CONV_T[nd](1, 1, k, stride=s, padding=p, output_padding=op, dilation=d)

    shape = (2, 1, *size)
    expected = torch_outcome(build, shape)
    ours = ours_outcome(lambda: conv_transpose_output_size(size, k, s, p, op, d, empty_ok=True))
    if expected != ERROR:
        assert ours == expected[2:]
    elif ours != ERROR:
        assert 0 in ours and min(ours) == 0, (ours, expected)
        assert not conv_transpose_accepts_empty(build(), shape)


def _per_dim(value, nd):
    return value if isinstance(value, tuple) else (value,) * nd


@st.composite
def conv_t_modules(draw):
    """Transposed convolutions near the empty-output boundary, as users build them."""
    nd, size, k, s, p, op, d = draw(conv_t_configs())
    groups = draw(st.sampled_from([1, 1, 2]))
    c_in = groups * draw(st.integers(1, 2))
    batch = draw(st.sampled_from([None, 1, 2, 16]))  # None: an unbatched input
    threads = draw(st.sampled_from([1, 2]))
    return nd, size, k, s, p, op, d, groups, c_in, batch, threads


@given(conv_t_modules())
@example((2, (1, 3), 4, 1, 2, 0, 1, 1, 1, 1, 1))  # kernels > 3: oneDNN, empty output
@example((2, (2, 3), 3, 1, (2, 0), 0, 1, 1, 2, 1, 1))  # small kernel, batch 1: refused
@example((2, (2, 3), 3, 1, (2, 0), 0, 1, 1, 2, 2, 1))  # batch 2: empty output
@example((2, (2, 3), 3, 1, (2, 0), 0, 1, 2, 2, 1, 1))  # groups 2: empty output
@example((1, (2,), 3, 1, 2, 0, 1, 1, 1, None, 1))  # unbatched runs as batch 1: refused
@example((1, (2,), 1, 1, 0, 0, 1, 1, 1, 1, 2))  # 1x1 kernel, two threads
def test_output_shape_of_conv_transpose_matches_torch_at_the_empty_boundary(cfg):
    """output_shape accepts an output size of 0 exactly where the real module returns one."""
    nd, size, k, s, p, op, d, groups, c_in, batch, threads = cfg
    shape = (*(() if batch is None else (batch,)), c_in, *size)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        try:
            module = CONV_T[nd](
                c_in,
                2 * groups,
                k,
                stride=s,
                padding=p,
                output_padding=op,
                dilation=d,
                groups=groups,
            )
        except ValueError:
            return
        expected = torch_outcome(lambda: module, shape)
        ours = ours_outcome(lambda: output_shape(module, shape))
    finally:
        torch.set_num_threads(before)
    assert ours == expected


@st.composite
def pool_configs(draw):
    nd = draw(st.integers(1, 3))
    hi = 9 if nd < 3 else 6
    size = draw(st.tuples(*([st.integers(1, hi)] * nd)))
    k = draw(per_dim(nd, st.integers(1, 4)))
    s = draw(st.one_of(st.none(), per_dim(nd, st.integers(0, 4))))
    p = draw(per_dim(nd, st.integers(-1, 2)))
    d = draw(per_dim(nd, st.integers(1, 3)))
    ceil = draw(st.booleans())
    return nd, size, k, s, p, d, ceil


@given(pool_configs())
@example((1, (5,), 2, 2, 1, 1, True))  # naive ceil formula says 4; PyTorch drops the last: 3
@example((2, (8, 8), 3, 4, 0, 1, True))  # ceil mode with zero padding: 2
@example((1, (9,), 2, 1, 2, 3, False))  # padding 2 > kernel 2 // 2, although dilated kernel is 4
@example((1, (3,), 4, 1, 1, 2, False))  # dilated window larger than padded input
def test_max_pool_output_size_matches_torch(cfg):
    nd, size, k, s, p, d, ceil = cfg
    expected = torch_outcome(
        lambda: MAXPOOL[nd](k, stride=s, padding=p, dilation=d, ceil_mode=ceil), (1, 1, *size)
    )
    ours = ours_outcome(lambda: pool_output_size(size, k, s, p, d, ceil))
    assert ours == (expected if expected == ERROR else expected[2:])


@given(pool_configs())
@example((1, (7,), 2, None, 0, 1, True))
@example((1, (6,), 3, 2, 1, 1, True))
def test_avg_pool_output_size_matches_torch(cfg):
    nd, size, k, s, p, _, ceil = cfg
    expected = torch_outcome(
        lambda: AVGPOOL[nd](k, stride=s, padding=p, ceil_mode=ceil), (1, 1, *size)
    )
    ours = ours_outcome(lambda: avg_pool_output_size(size, k, s, p, ceil))
    assert ours == (expected if expected == ERROR else expected[2:])


def test_pinned_edge_cases_by_value():
    # values worked out by hand from PyTorch's Pool.h rule, see docs/layermath.md
    assert pool_output_size(5, 2, 2, 1, ceil_mode=True) == 3
    assert pool_output_size(8, 3, 4, 0, ceil_mode=True) == 2
    assert conv_transpose_output_size(5, 3, stride=1, dilation=2, output_padding=1) == 10
    assert conv_output_size(4, 4, padding="same") == 4


@st.composite
def adaptive_configs(draw):
    nd = draw(st.integers(1, 3))
    size = draw(st.tuples(*([st.integers(1, 7)] * nd)))
    # None (keep the input size) is accepted by the 2-D and 3-D modules only
    entry = st.integers(1, 8) if nd == 1 else st.one_of(st.none(), st.integers(1, 8))
    out = draw(st.tuples(*([entry] * nd)))
    return nd, size, out


@given(adaptive_configs())
def test_adaptive_windows_reproduce_adaptive_avg_pool(cfg):
    nd, size, out = cfg
    pool = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}[nd]
    x = torch.arange(math.prod(size), dtype=torch.float64).reshape(1, 1, *size)
    y = pool(out)(x)[0, 0]
    windows = adaptive_pool_windows(size, out)
    assert tuple(len(w) for w in windows) == tuple(y.shape)
    # the value of every output cell is the mean over our window
    expected = torch.empty_like(y)
    for idx in torch.cartesian_prod(*(torch.arange(n) for n in y.shape)).reshape(-1, nd).tolist():
        sl = tuple(slice(*windows[dim][i]) for dim, i in enumerate(idx))
        expected[tuple(idx)] = x[0, 0][sl].mean()
    torch.testing.assert_close(y, expected)


@st.composite
def unfold_configs(draw):
    size = draw(st.tuples(st.integers(1, 8), st.integers(1, 8)))
    k = draw(per_dim(2, st.integers(1, 4)))
    s = draw(per_dim(2, st.integers(1, 3)))
    p = draw(per_dim(2, st.integers(0, 2)))
    d = draw(per_dim(2, st.integers(1, 2)))
    return size, k, s, p, d


@given(unfold_configs())
def test_unfold_blocks_matches_torch(cfg):
    size, k, s, p, d = cfg
    expected = torch_outcome(lambda: nn.Unfold(k, dilation=d, padding=p, stride=s), (1, 2, *size))
    ours = ours_outcome(lambda: unfold_blocks(size, k, dilation=d, padding=p, stride=s))
    if expected == ERROR:
        assert ours == ERROR
    else:
        kk = k if isinstance(k, tuple) else (k, k)
        assert expected == (1, 2 * math.prod(kk), math.prod(ours))


def test_meta_device_gives_the_same_shapes_as_cpu():
    # the tests above use small CPU tensors; meta would do as well (checked here)
    for build, shape in [
        (lambda: nn.MaxPool1d(2, 2, 1, ceil_mode=True), (1, 1, 5)),
        (lambda: nn.Conv2d(1, 1, 3, stride=2, padding=1, dilation=2), (1, 1, 9, 7)),
        (lambda: nn.ConvTranspose3d(1, 1, 2, stride=2, output_padding=1), (1, 1, 2, 3, 2)),
        (lambda: nn.Conv1d(1, 1, 5), (1, 1, 3)),
    ]:
        assert torch_outcome(build, shape) == torch_outcome(build, shape, device="meta")


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: conv_output_size(5, 0), "kernel_size"),
        (lambda: conv_output_size(5, 3, stride=0), "stride"),
        (lambda: conv_output_size(5, 3, padding=-1), "padding"),
        (lambda: conv_output_size(5, 3, dilation=0), "dilation"),
        (lambda: conv_output_size(5, 3, stride=2, padding="same"), "padding"),
        (lambda: conv_output_size(5, 3, padding="full"), "padding"),
        (lambda: conv_output_size(2, 3), "kernel_size"),
        (lambda: conv_output_size((5, 5), (3, 3, 3)), "kernel_size"),
        (lambda: conv_transpose_output_size(5, 3, stride=2, output_padding=2), "output_padding"),
        (lambda: conv_transpose_output_size(5, 3, padding="same"), "padding"),
        (lambda: conv_transpose_output_size(1, 1, padding=1), "padding"),
        (lambda: pool_output_size(5, 2, padding=2), "padding"),
        (lambda: pool_output_size(0, 2), "size"),
        (lambda: adaptive_pool_windows((4, 4), (2, 2, 2)), "output_size"),
    ],
)
def test_refusals_name_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: conv_output_size(5.0, 3), "size"),
        (lambda: conv_output_size(5, "3"), "kernel_size"),
        (lambda: conv_output_size(5, 3, stride=True), "stride"),
        (lambda: pool_output_size(5, 2, ceil_mode=1), "ceil_mode"),
        (lambda: conv_transpose_output_size(5, 3, output_padding=0.5), "output_padding"),
    ],
)
def test_bad_types_raise_type_error_naming_the_parameter(call, name):
    with pytest.raises(TypeError, match=name):
        call()
