"""Convolution as a matrix: worked examples, agreement with F.conv*, adjointness."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _layermath_oracle import one_thread  # noqa: F401  (autouse fixture)
from hypothesis import given
from hypothesis import strategies as st

from netviz.layermath import (
    conv_matrix,
    conv_output_size,
    conv_transpose_matrix,
    conv_transpose_output_size,
)

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}

X = [[4, 5, 8, 7], [1, 8, 8, 8], [3, 6, 6, 4], [6, 5, 7, 8]]
U = [[1, 4, 1], [1, 4, 3], [3, 3, 1]]


def test_worked_example_cross_correlation():
    x = torch.tensor(X, dtype=torch.float64)
    u = torch.tensor(U, dtype=torch.float64)
    M = conv_matrix(u, (4, 4))
    y = (M @ x.flatten()).reshape(2, 2)
    # by hand: top-left window 4+20+8 + 1+32+24 + 9+18+6 = 122
    assert y.tolist() == [[122, 148], [126, 134]]
    assert F.conv2d(x[None, None], u[None, None])[0, 0].tolist() == [[122, 148], [126, 134]]
    # the matrix itself: row 0 is the kernel laid out on the 4x4 grid
    assert M[0].tolist() == [1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1, 0, 0, 0, 0, 0]
    # row 3 (bottom-right output) is the same kernel shifted by one row and one column
    assert M[3].tolist() == [0, 0, 0, 0, 0, 1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1]
    assert int((M != 0).sum()) == 4 * 9


def test_worked_example_transposed_convolution():
    y = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    w = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    expected = [[0, 0, 1], [0, 4, 6], [4, 12, 9]]  # sum of y[i,j] * w placed at (i, j)
    V = conv_transpose_matrix(w, (2, 2))
    assert (V @ y.flatten()).reshape(3, 3).tolist() == expected
    assert F.conv_transpose2d(y[None, None], w[None, None])[0, 0].tolist() == expected
    assert torch.equal(V, conv_matrix(w, (3, 3)).T)


@st.composite
def conv_cases(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 2]))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    d = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    p = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    size = tuple(draw(st.integers(dd * (kk - 1) + 1, 6)) for kk, dd in zip(k, d))
    seed = draw(st.integers(0, 2**16))
    return nd, groups, c_in, c_out, k, s, d, p, size, seed


@given(conv_cases())
def test_conv_matrix_equals_conv(case):
    nd, groups, c_in, c_out, k, s, d, p, size, seed = case
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(c_out, c_in // groups, *k, generator=g, dtype=torch.float64)
    x = torch.randn(c_in, *size, generator=g, dtype=torch.float64)
    M = conv_matrix(w, (c_in, *size), stride=s, padding=p, dilation=d, groups=groups)
    y = CONV[nd](x[None], w, stride=s, padding=p, dilation=d, groups=groups)[0]
    torch.testing.assert_close(M @ x.flatten(), y.flatten())
    sparse = conv_matrix(
        w, (c_in, *size), stride=s, padding=p, dilation=d, groups=groups, sparse=True
    )
    assert sparse.is_sparse
    torch.testing.assert_close(sparse.to_dense(), M)


@given(conv_cases())
def test_conv_transpose_is_the_adjoint(case):
    """<conv(x), y> == <x, conv_transpose(y)> with the same weight, and V == U.T."""
    nd, groups, c_in, c_out, k, s, d, p, size, seed = case
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(c_out, c_in // groups, *k, generator=g, dtype=torch.float64)
    x = torch.randn(1, c_in, *size, generator=g, dtype=torch.float64)
    out = conv_output_size(size, k, s, p, d)
    y = torch.randn(1, c_out, *out, generator=g, dtype=torch.float64)
    # output_padding so that the transposed conv restores the input size exactly
    op = tuple((n + 2 * pp - dd * (kk - 1) - 1) % ss for n, pp, dd, kk, ss in zip(size, p, d, k, s))
    assert conv_transpose_output_size(out, k, s, p, op, d) == size
    conv = CONV[nd](x, w, stride=s, padding=p, dilation=d, groups=groups)
    conv_t = CONV_T[nd](y, w, stride=s, padding=p, output_padding=op, dilation=d, groups=groups)
    assert conv_t.shape == x.shape
    torch.testing.assert_close((conv * y).sum(), (x * conv_t).sum())
    V = conv_transpose_matrix(w, (c_out, *out), s, p, op, d, groups)
    torch.testing.assert_close(V @ y.flatten(), conv_t.flatten())
    U = conv_matrix(w, (c_in, *size), s, p, d, groups)
    torch.testing.assert_close(V, U.T)


def test_output_padding_beyond_stride_gives_zero_rows():
    # s=1, d=2, output_padding=1 is legal; the extra output cell receives nothing
    w = torch.tensor([1.0, 2.0, 3.0])
    y = torch.tensor([1.0, -1.0, 2.0])
    V = conv_transpose_matrix(w, (3,), stride=1, output_padding=1, dilation=2)
    expected = F.conv_transpose1d(y[None, None], w[None, None], output_padding=1, dilation=2)
    assert V.shape == (8, 3)
    torch.testing.assert_close(V @ y, expected.flatten())
    assert V[-1].abs().sum() == 0


def test_same_padding_and_integer_input():
    u = torch.tensor([[1, 2], [3, 4]])  # even kernel: 'same' pads 0 left, 1 right
    M = conv_matrix(u, (3, 3), padding="same")
    x = torch.arange(9.0).reshape(3, 3)
    expected = F.conv2d(x[None, None], u.float()[None, None], padding="same")
    torch.testing.assert_close(M @ x.flatten(), expected.flatten())
    assert M.dtype == torch.get_default_dtype()


@pytest.mark.parametrize(
    ("kernel", "shape", "kwargs", "match"),
    [
        (torch.ones(3, 3), (4,), {}, "does not fit"),
        (torch.ones(2, 1, 3, 3), (3, 4, 4), {}, "channels"),
        (torch.ones(3, 3), (2, 2), {}, "kernel_size"),
        (torch.ones(3, 3), (4, 4), {"groups": 2}, "groups"),
        (torch.ones(3, 3), (4, 4), {"stride": 2, "padding": "same"}, "padding"),
    ],
)
def test_conv_matrix_refusals(kernel, shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        conv_matrix(kernel, shape, **kwargs)


def test_conv_matrix_input_shape_type():
    with pytest.raises(TypeError, match="input_shape"):
        conv_matrix(torch.ones(3), 5)
