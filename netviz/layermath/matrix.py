"""Convolution as a matrix product (the sparse Toeplitz / "doubly block circulant" matrix).

A convolution is linear in its input, so it is a matrix :math:`U` acting on
the flattened input. Its transpose :math:`U^\top` is exactly the transposed
convolution with the same weight: that is where the name comes from.
The matrices are built from index arithmetic alone (no call to a convolution),
so comparing them with ``F.conv2d`` / ``F.conv_transpose2d`` is a real test.
"""

from __future__ import annotations

import math

import torch

from netviz.errors import LayerConfigError, NetvizTypeError
from netviz.layermath._conv import conv_output_size, conv_padding, conv_transpose_output_size
from netviz.layermath._validate import as_int, broadcast

__all__ = ["conv_matrix", "conv_transpose_matrix"]


def _weight_and_shape(kernel, input_shape, groups):
    """Normalise to a ``(C_out, C_in/groups, *k)`` weight and a ``(C_in, *spatial)`` shape."""
    if not isinstance(kernel, torch.Tensor):
        kernel = torch.as_tensor(kernel)
    if not kernel.is_floating_point() and not kernel.is_complex():
        kernel = kernel.to(torch.get_default_dtype())
    if isinstance(input_shape, int) or not hasattr(input_shape, "__len__"):
        raise NetvizTypeError(f"`input_shape` must be a tuple of ints, got {input_shape!r}")
    shape = tuple(as_int(s, "input_shape") for s in input_shape)
    groups = as_int(groups, "groups")
    if groups < 1:
        raise LayerConfigError(f"`groups` must be positive, got {groups}")
    if len(shape) == kernel.dim():  # one channel in, one channel out
        if groups != 1:
            raise LayerConfigError("`groups` > 1 needs a (C_out, C_in/groups, *k) weight")
        return kernel[None, None], (1, *shape)
    if len(shape) == kernel.dim() - 1 and kernel.dim() >= 3:
        c_out, c_in_g = kernel.shape[0], kernel.shape[1]
        if shape[0] != c_in_g * groups:
            raise LayerConfigError(
                f"`input_shape` has {shape[0]} channels but the weight expects "
                f"{c_in_g} * groups={groups} = {c_in_g * groups}"
            )
        if c_out % groups:
            raise LayerConfigError(
                f"weight has {c_out} output channels, not divisible by `groups`={groups}"
            )
        return kernel, shape
    raise LayerConfigError(
        f"`kernel` of shape {tuple(kernel.shape)} does not fit `input_shape`={shape}: give either a "
        "kernel (*k) with an input shape (*spatial) of the same length, or a weight "
        "(C_out, C_in/groups, *k) with an input shape (C_in, *spatial)"
    )


def _build(weight, in_spatial, out_spatial, stride, pad_left, dilation, groups, transpose, sparse):
    """Rows: flattened ``(C_out, *out)``, columns: flattened ``(C_in, *in)`` (swapped if transpose)."""
    dev = weight.device
    c_out, c_in_g, *ks = weight.shape
    nd = len(ks)
    per_group_out = c_out // groups
    axes = [torch.arange(n, device=dev) for n in (c_out, *out_spatial, c_in_g, *ks)]
    grids = torch.meshgrid(*axes, indexing="ij")
    co, outs, ci, js = grids[0], grids[1 : 1 + nd], grids[1 + nd], grids[2 + nd :]
    coords = [o * s - p + j * d for o, s, p, j, d in zip(outs, stride, pad_left, js, dilation)]
    valid = torch.ones_like(co, dtype=torch.bool)
    for c, n in zip(coords, in_spatial):
        valid &= (c >= 0) & (c < n)
    row = co
    for o, n in zip(outs, out_spatial):
        row = row * n + o
    col = (co // per_group_out) * c_in_g + ci
    for c, n in zip(coords, in_spatial):
        col = col * n + c
    values = weight[(co, ci, *js)][valid]
    row, col = row[valid], col[valid]
    n_rows = c_out * math.prod(out_spatial)
    n_cols = c_in_g * groups * math.prod(in_spatial)
    if transpose:
        row, col, n_rows, n_cols = col, row, n_cols, n_rows
    if sparse:
        indices = torch.stack([row, col])
        shape = (n_rows, n_cols)
        return torch.sparse_coo_tensor(indices, values, shape, check_invariants=True).coalesce()
    dense = torch.zeros(n_rows, n_cols, dtype=weight.dtype, device=dev)
    dense[row, col] = values  # (row, col) pairs are unique: one kernel tap per cell pair
    return dense


def conv_matrix(kernel, input_shape, stride=1, padding=0, dilation=1, groups=1, *, sparse=False):
    r"""The matrix :math:`U` of a convolution: ``U @ x.flatten() == conv(x, kernel).flatten()``.

    PyTorch's "convolution" is a cross-correlation (no kernel flip):

    .. math::

        y[c_o, \mathbf{o}] = \sum_{c_i, \mathbf{j}} w[c_o, c_i, \mathbf{j}]\;
        x[c_i, \mathbf{o}\,s - p_l + \mathbf{j}\,d],

    so row :math:`(c_o, \mathbf{o})` of :math:`U` holds the kernel weights at
    the columns of the input cells under the window, and zeros elsewhere
    (a sparse, block-Toeplitz matrix). Out-of-range (padding) cells have no column.

    Parameters
    ----------
    kernel : Tensor or array-like
        Either a single kernel ``(*k)`` (one input and one output channel; then
        ``input_shape`` is ``(*spatial)``) or a weight ``(C_out, C_in/groups, *k)``
        as in ``nn.ConvNd.weight`` (then ``input_shape`` is ``(C_in, *spatial)``).
        1, 2 or 3 spatial dimensions. Integer kernels are cast to the default float dtype.
    input_shape : tuple of int
        Shape of one input sample (no batch dimension).
    stride, dilation : int or tuple of int
    padding : int, tuple of int, "same" or "valid"
        Zero padding, as in ``F.conv2d``.
    groups : int
    sparse : bool
        Return a coalesced sparse COO tensor instead of a dense one (default dense).

    Returns
    -------
    Tensor
        ``(C_out * prod(out), C_in * prod(spatial))`` on ``kernel``'s device and dtype.

    Examples
    --------
    The worked example: a 4x4 input cross-correlated with a 3x3 kernel.

    >>> x = torch.tensor([[4, 5, 8, 7], [1, 8, 8, 8], [3, 6, 6, 4], [6, 5, 7, 8]])
    >>> u = torch.tensor([[1, 4, 1], [1, 4, 3], [3, 3, 1]])
    >>> U = conv_matrix(u, (4, 4))
    >>> U.shape
    torch.Size([4, 16])
    >>> U[0].int().tolist()
    [1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1, 0, 0, 0, 0, 0]
    >>> (U @ x.flatten().float()).reshape(2, 2).int().tolist()
    [[122, 148], [126, 134]]
    """
    weight, shape = _weight_and_shape(kernel, input_shape, groups)
    spatial = shape[1:]
    _, _, v = broadcast(stride=stride, dilation=dilation, kernel=tuple(weight.shape[2:]))
    out = conv_output_size(
        tuple(spatial), tuple(weight.shape[2:]), v["stride"], padding, v["dilation"]
    )
    pads = conv_padding(tuple(weight.shape[2:]), padding, v["dilation"], v["stride"])
    pad_left = tuple(pl for pl, _ in pads)
    return _build(weight, spatial, out, v["stride"], pad_left, v["dilation"], groups, False, sparse)


def conv_transpose_matrix(
    kernel,
    input_shape,
    stride=1,
    padding=0,
    output_padding=0,
    dilation=1,
    groups=1,
    *,
    sparse=False,
):
    r"""The matrix of a transposed convolution: the transpose of :func:`conv_matrix`.

    ``conv_transpose_matrix(w, y_shape) @ y.flatten() ==
    F.conv_transposeNd(y, w).flatten()``, and the matrix equals
    ``conv_matrix(w, x_shape).T`` where ``x_shape`` is the transposed
    convolution's output shape: the transposed convolution is the adjoint of
    the convolution with the *same* weight,
    :math:`\langle U x, y\rangle = \langle x, U^\top y\rangle`.
    (When ``output_padding >= stride``, allowed if it is smaller than the
    dilation, the extra output cells receive nothing and the matching rows are
    zero.)

    Parameters
    ----------
    kernel : Tensor or array-like
        A single kernel ``(*k)`` with ``input_shape`` ``(*spatial)``, or a
        weight ``(C_in, C_out/groups, *k)`` as in ``nn.ConvTransposeNd.weight``
        with ``input_shape`` ``(C_in, *spatial)``.
    input_shape : tuple of int
        Shape of one input sample of the transposed convolution.
    stride, padding, output_padding, dilation : int or tuple of int
    groups : int
    sparse : bool

    Returns
    -------
    Tensor
        ``(C_out * prod(out), C_in * prod(spatial))``.

    Examples
    --------
    The worked example: a 2x2 input and a 2x2 kernel give a 3x3 output.

    >>> y = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    >>> w = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    >>> V = conv_transpose_matrix(w, (2, 2))
    >>> V.shape
    torch.Size([9, 4])
    >>> (V @ y.flatten()).reshape(3, 3).int().tolist()
    [[0, 0, 1], [0, 4, 6], [4, 12, 9]]
    >>> torch.equal(V, conv_matrix(w, (3, 3)).T)
    True
    """
    if not isinstance(kernel, torch.Tensor):
        kernel = torch.as_tensor(kernel)
    shape = tuple(input_shape) if hasattr(input_shape, "__len__") else input_shape
    if hasattr(shape, "__len__") and len(shape) == kernel.dim() - 1 and kernel.dim() >= 3:
        # ConvTranspose weight (C_in, C_out/g, *k) is the Conv weight (C_out', C_in'/g, *k)
        # of the adjoint convolution, which maps C_out/g*groups channels to C_in.
        c_in, c_out_g = kernel.shape[0], kernel.shape[1]
        if shape[0] != c_in:
            raise LayerConfigError(
                f"`input_shape` has {shape[0]} channels but the weight expects {c_in}"
            )
        conv_in_channels: tuple[int, ...] = (c_out_g * as_int(groups, "groups"),)
        spatial = shape[1:]
    else:
        conv_in_channels = ()
        spatial = shape
    weight, _ = _weight_and_shape(kernel, (*conv_in_channels, *spatial), groups)
    ks = tuple(weight.shape[2:])
    out = conv_transpose_output_size(tuple(spatial), ks, stride, padding, output_padding, dilation)
    out = out if isinstance(out, tuple) else (out,)
    _, _, v = broadcast(stride=stride, padding=padding, dilation=dilation, kernel=ks)
    return _build(
        weight, out, tuple(spatial), v["stride"], v["padding"], v["dilation"], groups, True, sparse
    )
