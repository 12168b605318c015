"""Output sizes of convolutions, transposed convolutions and unfold (im2col).

Pure integer arithmetic, following PyTorch's rules exactly
(``torch/nn/modules/conv.py``, ``aten/src/ATen/native/ConvUtils.h``).
"""

from __future__ import annotations

from netviz.errors import LayerConfigError
from netviz.layermath._validate import broadcast, check_min, check_window, unbroadcast

__all__ = [
    "conv_output_size",
    "conv_padding",
    "conv_transpose_output_size",
    "unfold_blocks",
]


def conv_padding(kernel_size, padding=0, dilation=1, stride=1):
    """Left and right zero padding that a convolution applies, per dimension.

    Resolves PyTorch's string paddings: ``"valid"`` is no padding;
    ``"same"`` pads :math:`d(k-1)` in total, ``total // 2`` on the left and
    the rest on the right (so an even effective kernel pads more on the right),
    and is refused for strided convolutions, as in ``nn.Conv2d``.

    Parameters
    ----------
    kernel_size, dilation, stride : int or tuple of int
    padding : int, tuple of int, "same" or "valid"

    Returns
    -------
    tuple of (int, int)
        One ``(left, right)`` pair per spatial dimension (always a tuple).

    Examples
    --------
    >>> conv_padding(4, "same")
    ((1, 2),)
    >>> conv_padding((3, 3), "same", dilation=(1, 2))
    ((1, 1), (2, 2))
    >>> conv_padding(3, (2,))
    ((2, 2),)
    """
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise LayerConfigError(
                f"`padding` must be an int, a tuple of ints, 'same' or 'valid', got {padding!r}"
            )
        ndim, _, v = broadcast(kernel_size=kernel_size, dilation=dilation, stride=stride)
        check_min(v["kernel_size"], "kernel_size", 1, "positive")
        check_min(v["dilation"], "dilation", 1, "positive")
        check_min(v["stride"], "stride", 1, "positive")
        if padding == "valid":
            return ((0, 0),) * ndim
        if any(s != 1 for s in v["stride"]):
            raise LayerConfigError(
                "`padding`='same' is not supported for strided convolutions "
                f"(got stride={stride!r}); use stride=1 or an explicit padding"
            )
        pairs = []
        for k, d in zip(v["kernel_size"], v["dilation"]):
            total = d * (k - 1)
            pairs.append((total // 2, total - total // 2))
        return tuple(pairs)
    _, _, v = broadcast(kernel_size=kernel_size, padding=padding, dilation=dilation, stride=stride)
    check_min(v["padding"], "padding", 0, "non-negative")
    return tuple((p, p) for p in v["padding"])


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    r"""Spatial output size of ``nn.Conv1d/2d/3d`` (and of ``F.conv*``).

    .. math::

        \mathrm{out} = \left\lfloor \frac{\mathrm{in} + p_l + p_r - d\,(k - 1) - 1}{s}
        \right\rfloor + 1

    with :math:`p_l = p_r = p` for an int padding, :math:`p_l + p_r = d(k-1)`
    for ``"same"`` and 0 for ``"valid"``. The channel count and ``groups`` do
    not enter; ``padding_mode`` (zeros, reflect, replicate, circular) does not
    change the size either.

    Parameters
    ----------
    size : int or tuple of int
        Input size per spatial dimension (at least 1).
    kernel_size, stride, dilation : int or tuple of int
        Positive.
    padding : int, tuple of int, "same" or "valid"
        Non-negative; ``"same"`` requires ``stride == 1``.

    Returns
    -------
    int or tuple of int
        An int if every argument was an int, else a tuple.

    Raises
    ------
    ValueError
        Where PyTorch refuses the configuration: an effective kernel larger than
        the padded input (output size < 1), non-positive kernel, stride or
        dilation, negative padding, ``"same"`` with a stride > 1.
    TypeError
        A parameter that is not an int / tuple of ints.

    Examples
    --------
    >>> conv_output_size(32, kernel_size=3, stride=2, padding=1)
    16
    >>> conv_output_size((28, 28), 5, padding="same")
    (28, 28)
    >>> conv_output_size((7, 9), (3, 3), stride=(2, 1), dilation=(1, 2))
    (3, 5)
    """
    _, was_tuple, v = broadcast(
        size=size,
        kernel_size=kernel_size,
        stride=stride,
        dilation=dilation,
        padding=0 if isinstance(padding, str) else padding,
    )
    check_window(v, padding=False)
    pad_arg = padding if isinstance(padding, str) else v["padding"]
    pads = conv_padding(v["kernel_size"], pad_arg, v["dilation"], v["stride"])
    out = []
    for i, k, s, d, (pl, pr) in zip(v["size"], v["kernel_size"], v["stride"], v["dilation"], pads):
        eff = d * (k - 1) + 1
        if i + pl + pr < eff:
            raise LayerConfigError(
                f"`kernel_size`={k} with `dilation`={d} spans {eff} cells, more than the padded "
                f"input ({i} + {pl + pr} padding = {i + pl + pr}); the output would be empty"
            )
        out.append((i + pl + pr - eff) // s + 1)
    return unbroadcast(tuple(out), was_tuple)


def conv_transpose_output_size(
    size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1, *, empty_ok=False
):
    r"""Spatial output size of ``nn.ConvTranspose1d/2d/3d``.

    .. math::

        \mathrm{out} = (\mathrm{in} - 1)\,s - 2p + d\,(k - 1) + \mathrm{output\_padding} + 1

    ``output_padding`` must be smaller than the stride **or** smaller than the
    dilation (PyTorch: "output padding must be smaller than either stride or
    dilation"), so ``s=1, d=2, output_padding=1`` is legal. Choosing
    ``output_padding = (in + 2p - d(k-1) - 1) mod s`` makes the transposed
    convolution restore the input size of the matching convolution.

    Parameters
    ----------
    size : int or tuple of int
        Input size per spatial dimension (at least 1).
    kernel_size, stride, dilation : int or tuple of int
        Positive.
    padding, output_padding : int or tuple of int
        Non-negative. String paddings are not supported by ``ConvTranspose``.
    empty_ok : bool
        Accept an output size of 0 (an empty tensor). Which PyTorch does depends
        on the kernel it picks at run time: its reference kernel refuses
        ("Output size is too small"), its oneDNN kernel (CPU, float32, batch > 1,
        groups > 1 or kernels larger than 3) returns an empty tensor.
        :func:`output_shape` decides from the module and the input shape; the
        formula alone refuses by default.

    Returns
    -------
    int or tuple of int

    Raises
    ------
    LayerConfigError
        Output size < 1 (< 0 with ``empty_ok``), ``output_padding`` too large,
        non-positive kernel, stride or dilation, negative (or string) padding.

    Examples
    --------
    >>> conv_transpose_output_size(16, kernel_size=3, stride=2, padding=1, output_padding=1)
    32
    >>> conv_transpose_output_size((2, 2), 2)
    (3, 3)
    >>> conv_transpose_output_size(5, 3, stride=1, dilation=2, output_padding=1)
    10
    >>> conv_transpose_output_size(2, 3, padding=2, empty_ok=True)
    0
    """
    if isinstance(padding, str):
        raise LayerConfigError(
            f"`padding`={padding!r}: ConvTranspose accepts only an int or a tuple of ints"
        )
    _, was_tuple, v = broadcast(
        size=size,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
    )
    check_window(v)
    check_min(v["output_padding"], "output_padding", 0, "non-negative")
    out = []
    names = ("size", "kernel_size", "stride", "padding", "output_padding", "dilation")
    for i, k, s, p, op, d in zip(*(v[n] for n in names)):
        if not (op < s or op < d):
            raise LayerConfigError(
                f"`output_padding`={op} must be smaller than either `stride`={s} or `dilation`={d}"
            )
        o = (i - 1) * s - 2 * p + d * (k - 1) + op + 1
        if o < (0 if empty_ok else 1):
            raise LayerConfigError(
                f"`padding`={p} is too large: the output size would be {o} "
                f"(input {i}, kernel_size {k}, stride {s}, dilation {d}, output_padding {op})"
                + (
                    "; PyTorch's reference kernel refuses an empty output (its oneDNN kernel, "
                    "not used for this configuration, returns an empty tensor)"
                    if o == 0
                    else ""
                )
            )
        out.append(o)
    return unbroadcast(tuple(out), was_tuple)


def unfold_blocks(size, kernel_size, dilation=1, padding=0, stride=1):
    r"""Number of sliding blocks per dimension of ``nn.Unfold`` / ``F.unfold`` (im2col).

    .. math::

        L_d = \left\lfloor \frac{\mathrm{size}_d + 2p_d - d_d(k_d - 1) - 1}{s_d} \right\rfloor + 1,
        \qquad L = \prod_d L_d

    ``F.unfold`` turns ``(N, C, *size)`` into ``(N, C * prod(kernel_size), L)``.
    The argument order follows ``nn.Unfold(kernel_size, dilation, padding, stride)``.

    Returns
    -------
    int or tuple of int
        :math:`L_d` in the form of the input; the total is ``math.prod`` of it.

    Examples
    --------
    >>> unfold_blocks((4, 5), kernel_size=(2, 3))
    (3, 3)
    >>> unfold_blocks(10, 3, stride=2, padding=1)
    5
    """
    if isinstance(padding, str):
        raise LayerConfigError(
            f"`padding`={padding!r}: Unfold accepts only an int or a tuple of ints"
        )
    return conv_output_size(size, kernel_size, stride=stride, padding=padding, dilation=dilation)
