"""Output sizes and windows of max, average and adaptive pooling.

Follows ``aten/src/ATen/native/Pool.h::pooling_output_shape_pad_lr`` and
``AdaptivePooling.h``, including PyTorch's ceil-mode rule that a window which
would *start* in the right padding is dropped.
"""

from __future__ import annotations

from netviz.errors import LayerConfigError, NetvizTypeError
from netviz.layermath._validate import broadcast, check_min, check_window, unbroadcast

__all__ = ["adaptive_pool_windows", "avg_pool_output_size", "pool_output_size"]


def pool_output_size(size, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    r"""Spatial output size of ``nn.MaxPool1d/2d/3d``.

    .. math::

        \mathrm{out} = \left\lfloor \frac{\mathrm{in} + 2p - d(k-1) - 1 + c\,(s-1)}{s}
        \right\rfloor + 1, \qquad c = [\mathrm{ceil\_mode}]

    and then, in ceil mode only, ``out -= 1`` if :math:`(\mathrm{out}-1)\,s \ge
    \mathrm{in} + p`: the last window would start in the right padding, and
    PyTorch drops it. So ``MaxPool1d(2, 2, padding=1, ceil_mode=True)`` on a
    length-5 input gives 3 windows, not the naive
    :math:`\lceil 5/2 \rceil + 1 = 4`.

    Parameters
    ----------
    size : int or tuple of int
        Input size per spatial dimension (at least 1).
    kernel_size : int or tuple of int
        Positive.
    stride : int, tuple of int or None
        Positive; ``None`` (the default) means ``kernel_size``, as in PyTorch.
    padding : int or tuple of int
        At least 0 and at most ``kernel_size // 2`` (PyTorch: "pad should be at
        most half of kernel size"; the kernel size, not the dilated one).
    dilation : int or tuple of int
        Positive.
    ceil_mode : bool

    Returns
    -------
    int or tuple of int

    Raises
    ------
    ValueError
        Output size < 1, padding larger than half the kernel, non-positive
        kernel, stride or dilation, negative padding.

    Examples
    --------
    >>> pool_output_size(5, 2, stride=2, padding=1, ceil_mode=True)
    3
    >>> pool_output_size((8, 8), 3, stride=4, ceil_mode=True)
    (2, 2)
    >>> pool_output_size(32, 2)
    16
    """
    if not isinstance(ceil_mode, bool):
        raise NetvizTypeError(f"`ceil_mode` must be a bool, got {ceil_mode!r}")
    _, was_tuple, v = broadcast(
        size=size,
        kernel_size=kernel_size,
        stride=kernel_size if stride is None else stride,
        padding=padding,
        dilation=dilation,
    )
    check_window(v)
    out = []
    for i, k, s, p, d in zip(
        *(v[n] for n in ("size", "kernel_size", "stride", "padding", "dilation"))
    ):
        if p > k // 2:
            raise LayerConfigError(
                f"`padding`={p} must be at most half of `kernel_size`={k} (at most {k // 2})"
            )
        o = (i + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (o - 1) * s >= i + p:
            o -= 1  # the last window would start in the right padding
        if o < 1:
            raise LayerConfigError(
                f"`kernel_size`={k} with `dilation`={d} spans {d * (k - 1) + 1} cells, more than "
                f"the padded input ({i} + 2*{p}); the output would be empty"
            )
        out.append(o)
    return unbroadcast(tuple(out), was_tuple)


def avg_pool_output_size(size, kernel_size, stride=None, padding=0, ceil_mode=False):
    r"""Spatial output size of ``nn.AvgPool1d/2d/3d`` (no dilation).

    .. math::

        \mathrm{out} = \left\lfloor \frac{\mathrm{in} + 2p - k + c\,(s-1)}{s}
        \right\rfloor + 1, \qquad c = [\mathrm{ceil\_mode}]

    with the same ceil-mode correction and padding limit (``padding <=
    kernel_size // 2``) as :func:`pool_output_size`. ``count_include_pad`` and
    ``divisor_override`` change values, not sizes.

    With three spatial dimensions (``AvgPool3d``) PyTorch also requires the
    *unpadded* input to be at least as large as the kernel in every dimension
    ("input image smaller than kernel size"); this function applies that rule
    when given 3-tuples.

    Examples
    --------
    >>> avg_pool_output_size(7, 2, ceil_mode=True)
    4
    >>> avg_pool_output_size((6, 5), (3, 2), stride=(3, 2))
    (2, 2)
    """
    out = pool_output_size(size, kernel_size, stride, padding, 1, ceil_mode)
    ndim, _, v = broadcast(size=size, kernel_size=kernel_size)
    if ndim == 3:
        for i, k in zip(v["size"], v["kernel_size"]):
            if i < k:
                raise LayerConfigError(
                    f"`kernel_size`={k} is larger than the input size {i}: AvgPool3d refuses "
                    "inputs smaller than the kernel, whatever the padding"
                )
    return out


def adaptive_pool_windows(size, output_size):
    r"""Index windows of ``nn.AdaptiveAvgPool*`` / ``nn.AdaptiveMaxPool*``.

    Output cell :math:`i` of a dimension pools the input cells
    :math:`[\lfloor i\,n/m \rfloor, \lceil (i+1)\,n/m \rceil)` for input size
    :math:`n` and output size :math:`m`. The windows vary in length and
    overlap unless :math:`m` divides :math:`n`; only then does adaptive pooling
    equal ``AvgPool`` with ``kernel_size = stride = n / m``.

    Parameters
    ----------
    size : int or tuple of int
        Input size per spatial dimension (at least 1).
    output_size : int, None or tuple of (int or None)
        Requested output size; ``None`` keeps that dimension's input size.

    Returns
    -------
    list of (int, int) or tuple of lists
        Half-open ``(start, end)`` windows; a tuple of such lists, one per
        dimension, when any argument was a tuple. The output size is the
        length of each list.

    Examples
    --------
    >>> adaptive_pool_windows(5, 3)
    [(0, 2), (1, 4), (3, 5)]
    >>> adaptive_pool_windows((4, 3), (2, None))
    ([(0, 2), (2, 4)], [(0, 1), (1, 2), (2, 3)])
    """
    if isinstance(output_size, (tuple, list)):
        if not isinstance(size, (tuple, list)):
            size = (size,) * len(output_size)
        if len(size) != len(output_size):
            raise LayerConfigError(
                f"`output_size` has {len(output_size)} entries but `size` has {len(size)}"
            )
        output_size = tuple(s if o is None else o for s, o in zip(size, output_size))
    elif output_size is None:
        output_size = size
    _, was_tuple, v = broadcast(size=size, output_size=output_size)
    check_min(v["size"], "size", 1, "at least 1")
    check_min(v["output_size"], "output_size", 0, "non-negative")
    windows = []
    for n, m in zip(v["size"], v["output_size"]):
        # integer forms of floor(i*n/m) and ceil((i+1)*n/m), as in AdaptivePooling.h
        windows.append([((i * n) // m, -((-(i + 1) * n) // m)) for i in range(m)])
    return unbroadcast(tuple(windows), was_tuple)
