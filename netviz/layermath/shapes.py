"""Output shape of a module computed from its attributes, without running it.

Each supported type has a small rule below; :func:`output_shape` dispatches on
the type and raises ``NotImplementedError`` (naming the type and listing the
supported ones) for anything else. Input shapes include the batch dimension
where PyTorch needs one; unbatched inputs are accepted where PyTorch accepts them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import nn

from netviz._compat import conv_transpose_accepts_empty
from netviz.errors import LayerConfigError, NetvizTypeError
from netviz.layermath._conv import conv_output_size, conv_padding, conv_transpose_output_size
from netviz.layermath._pool import adaptive_pool_windows, avg_pool_output_size, pool_output_size
from netviz.layermath._validate import as_int
from netviz.layermath.receptive import POINTWISE_TYPES, spatial_ndim

__all__ = ["SHAPE_PRESERVING_TYPES", "output_shape", "supported_types"]

#: Modules whose output has the shape of their (first) input.
SHAPE_PRESERVING_TYPES: tuple[type[nn.Module], ...] = (
    *POINTWISE_TYPES,
    nn.Softmax,
    nn.LogSoftmax,
    nn.Softmin,
    nn.Softmax2d,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.RMSNorm,
    nn.FeatureAlphaDropout,
    nn.LogSigmoid,
    nn.Softshrink,
    nn.Hardshrink,
    nn.RReLU,
    nn.TransformerEncoderLayer,
    nn.TransformerDecoderLayer,
    nn.TransformerEncoder,
    nn.TransformerDecoder,
)


def _shape(input_shape, name="input_shape") -> tuple[int, ...]:
    if isinstance(input_shape, int) or not hasattr(input_shape, "__iter__"):
        raise NetvizTypeError(f"`{name}` must be a tuple of ints, got {input_shape!r}")
    shape = tuple(as_int(s, name) for s in input_shape)
    if any(s < 0 for s in shape):
        raise LayerConfigError(f"`{name}` has a negative size: {shape}")
    return shape


def _spatial_split(module, shape, nd, channels=None):
    """Split ``(N, C, *sp)`` or unbatched ``(C, *sp)`` into (lead, C, spatial)."""
    if len(shape) not in (nd + 1, nd + 2):
        raise LayerConfigError(
            f"{type(module).__name__} expects a {nd + 2}-D (batched) or {nd + 1}-D (unbatched) "
            f"input, got shape {shape}"
        )
    lead, c, sp = shape[: len(shape) - nd - 1], shape[-nd - 1], shape[-nd:]
    if channels is not None and c != channels:
        raise LayerConfigError(
            f"{type(module).__name__} expects {channels} input channels, got {c} (shape {shape})"
        )
    return lead, c, sp


def _ndim(module: nn.Module) -> int:
    nd = spatial_ndim(module)
    assert nd is not None, type(module)  # the rules table only dispatches spatial layers here
    return nd


def _conv(m, shape):
    lead, _, sp = _spatial_split(m, shape, _ndim(m), m.in_channels)
    if m.padding_mode == "zeros":
        out = conv_output_size(sp, m.kernel_size, m.stride, m.padding, m.dilation)
        return (*lead, m.out_channels, *out)
    # Other modes run F.pad(mode) and then an unpadded conv. F.pad allows negative
    # padding (it crops); reflect needs pad < size and circular pad <= size per side.
    if isinstance(m.padding, str):
        pads = conv_padding(m.kernel_size, m.padding, m.dilation, m.stride)
    else:
        pads = tuple((p, p) for p in m.padding)
    padded = []
    for n, (pl, pr) in zip(sp, pads):
        big = max(pl, pr)
        if (m.padding_mode == "reflect" and big >= n) or (m.padding_mode == "circular" and big > n):
            limit = "smaller than" if m.padding_mode == "reflect" else "at most"
            raise LayerConfigError(
                f"`padding` {big} with padding_mode={m.padding_mode!r} must be {limit} "
                f"the input size {n}"
            )
        if n + pl + pr < 1:
            raise LayerConfigError(
                f"negative `padding` {pl} crops the input of size {n} to nothing"
            )
        padded.append(n + pl + pr)
    out = conv_output_size(tuple(padded), m.kernel_size, m.stride, 0, m.dilation)
    return (*lead, m.out_channels, *out)


def _conv_t(m, shape):
    lead, _, sp = _spatial_split(m, shape, _ndim(m), m.in_channels)
    out = conv_transpose_output_size(
        sp,
        m.kernel_size,
        m.stride,
        m.padding,
        m.output_padding,
        m.dilation,
        empty_ok=conv_transpose_accepts_empty(m, shape),
    )
    return (*lead, m.out_channels, *out)


def _maxpool(m, shape):
    nd = _ndim(m)
    lead, c, sp = _spatial_split(m, shape, nd)
    out = pool_output_size(
        sp,
        _tup(m.kernel_size, nd),
        _tup(m.stride, nd),
        _tup(m.padding, nd),
        _tup(m.dilation, nd),
        m.ceil_mode,
    )
    return (*lead, c, *out)


def _avgpool(m, shape):
    nd = _ndim(m)
    lead, c, sp = _spatial_split(m, shape, nd)
    out = avg_pool_output_size(
        sp, _tup(m.kernel_size, nd), _tup(m.stride, nd), _tup(m.padding, nd), m.ceil_mode
    )
    return (*lead, c, *out)


def _tup(value, nd):
    if value is None or isinstance(value, (tuple, list)):
        return value
    return (value,) * nd


def _adaptive(m, shape):
    nd = _ndim(m)
    lead, c, sp = _spatial_split(m, shape, nd)
    target = _tup(m.output_size, nd)
    windows = adaptive_pool_windows(tuple(sp), tuple(target))
    return (*lead, c, *(len(w) for w in windows))


def _linear(m, shape):
    if not shape or shape[-1] != m.in_features:
        raise LayerConfigError(
            f"Linear expects a last dimension of {m.in_features}, got shape {shape}"
        )
    return (*shape[:-1], m.out_features)


def _bilinear(m, shape):
    if not shape or shape[-1] != m.in1_features:
        raise LayerConfigError(
            f"Bilinear expects a last dimension of {m.in1_features}, got {shape}"
        )
    return (*shape[:-1], m.out_features)


def _dim(d, n, module):
    if not -n <= d < max(n, 1):
        raise LayerConfigError(f"{type(module).__name__}: dim {d} out of range for a {n}-D input")
    return d % n if n else 0


def _flatten(m, shape):
    if not shape:
        return (1,)
    s, e = _dim(m.start_dim, len(shape), m), _dim(m.end_dim, len(shape), m)
    if s > e:
        raise LayerConfigError(f"Flatten: start_dim {m.start_dim} comes after end_dim {m.end_dim}")
    return (*shape[:s], math.prod(shape[s : e + 1]), *shape[e + 1 :])


def _unflatten(m, shape):
    d = _dim(m.dim, len(shape), m)
    sizes = list(m.unflattened_size)
    if sizes.count(-1) > 1:
        raise LayerConfigError("Unflatten: at most one size may be -1")
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if known == 0 or shape[d] % known:
            raise LayerConfigError(f"Unflatten: cannot split {shape[d]} into {tuple(sizes)}")
        sizes[sizes.index(-1)] = shape[d] // known
    elif known != shape[d]:
        raise LayerConfigError(f"Unflatten: sizes {tuple(sizes)} do not multiply to {shape[d]}")
    return (*shape[:d], *sizes, *shape[d + 1 :])


def _embedding(m, shape):
    return (*shape, m.embedding_dim)


def _batchnorm(m, shape):
    allowed = {1: (2, 3), 2: (4,), 3: (5,)}[_ndim(m)]
    if len(shape) not in allowed:
        raise LayerConfigError(
            f"{type(m).__name__} expects a {' or '.join(map(str, allowed))}-D input, got {shape}"
        )
    if shape[1] != m.num_features:
        raise LayerConfigError(
            f"{type(m).__name__} expects {m.num_features} channels, got {shape[1]}"
        )
    return shape


def _layernorm(m, shape):
    ns = tuple(m.normalized_shape)
    if shape[len(shape) - len(ns) :] != ns:
        raise LayerConfigError(f"LayerNorm over {ns} needs an input ending in {ns}, got {shape}")
    return shape


def _same(m, shape):
    return shape


def _upsample(m, shape):
    nd = len(shape) - 2
    if nd < 1:
        raise LayerConfigError(
            f"Upsample expects (N, C, *spatial) with 1-3 spatial dims, got {shape}"
        )
    if m.size is not None:
        size = _tup(m.size, nd)
        if len(size) != nd:
            raise LayerConfigError(f"Upsample: size {m.size} does not match {nd} spatial dims")
        return (*shape[:2], *size)
    scale = _tup(m.scale_factor, nd)
    return (*shape[:2], *(math.floor(s * float(f)) for s, f in zip(shape[2:], scale)))


def _rnn(m, shape):
    if len(shape) not in (2, 3):
        raise LayerConfigError(
            f"{type(m).__name__} expects a 2-D (unbatched) or 3-D input, got {shape}"
        )
    if shape[-1] != m.input_size:
        raise LayerConfigError(
            f"{type(m).__name__} expects input_size {m.input_size}, got {shape[-1]}"
        )
    hidden = getattr(m, "proj_size", 0) or m.hidden_size
    return (*shape[:-1], (2 if m.bidirectional else 1) * hidden)


def _mha(m, shape):
    if len(shape) not in (2, 3) or shape[-1] != m.embed_dim:
        raise LayerConfigError(
            f"MultiheadAttention expects a query of shape (L, E), (L, N, E) or (N, L, E) with "
            f"E = {m.embed_dim}, got {shape}"
        )
    return shape


def _sequential(m, shape):
    for child in m:
        shape = output_shape(child, shape)
    return shape


_RULES: dict[type, Callable] = {}
_RULE_TABLE: tuple[tuple[tuple[type[nn.Module], ...], Callable], ...] = (
    ((nn.Conv1d, nn.Conv2d, nn.Conv3d), _conv),
    ((nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d), _conv_t),
    ((nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d), _maxpool),
    ((nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d), _avgpool),
    (
        (
            nn.AdaptiveAvgPool1d,
            nn.AdaptiveAvgPool2d,
            nn.AdaptiveAvgPool3d,
            nn.AdaptiveMaxPool1d,
            nn.AdaptiveMaxPool2d,
            nn.AdaptiveMaxPool3d,
        ),
        _adaptive,
    ),
    ((nn.Linear,), _linear),
    ((nn.Bilinear,), _bilinear),
    ((nn.Flatten,), _flatten),
    ((nn.Unflatten,), _unflatten),
    ((nn.Embedding,), _embedding),
    ((nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d), _batchnorm),
    ((nn.LayerNorm,), _layernorm),
    ((nn.Upsample,), _upsample),
    ((nn.RNN, nn.LSTM, nn.GRU), _rnn),
    ((nn.MultiheadAttention,), _mha),
    ((nn.Sequential,), _sequential),
)
for _types, _rule in _RULE_TABLE:
    for _t in _types:
        _RULES[_t] = _rule
for _t in SHAPE_PRESERVING_TYPES:
    _RULES.setdefault(_t, _same)


def supported_types() -> list[str]:
    """Names of the module types :func:`output_shape` knows, sorted."""
    return sorted(t.__name__ for t in _RULES)


def output_shape(module: nn.Module, input_shape) -> tuple[int, ...]:
    """Output shape of ``module`` for an input of ``input_shape``, from its attributes only.

    Parameters
    ----------
    module : nn.Module
        An instance of a supported type (exact type or a subclass); see
        :func:`supported_types`. ``nn.Sequential`` chains its children.
    input_shape : tuple of int
        Shape of the (first) input, batch dimension included where the module
        has one: ``(N, C, *spatial)`` or ``(C, *spatial)`` for conv/pool,
        ``(*, in_features)`` for ``Linear``, ``(L, N, H_in)`` / batch-first /
        ``(L, H_in)`` for RNNs, the query's shape for ``MultiheadAttention``.

    Returns
    -------
    tuple of int
        For modules that return several tensors, the shape of the **first**:
        RNN/LSTM/GRU give the output sequence ``(L, N, D * H_out)`` (not the
        final hidden/cell states); ``MultiheadAttention`` gives the attention
        output (not the weights); adaptive max pooling with
        ``return_indices=True`` gives the values' shape.

    Raises
    ------
    NotImplementedError
        Unsupported module type (the message lists the supported ones).
    ValueError
        The input shape does not fit the module (channels, ranks, features),
        or the geometry is one PyTorch refuses (output size < 1, ...).

    Examples
    --------
    >>> import torch.nn as nn
    >>> output_shape(nn.Conv2d(3, 8, 3, stride=2, padding=1), (16, 3, 32, 32))
    (16, 8, 16, 16)
    >>> output_shape(nn.LSTM(10, 20, bidirectional=True, batch_first=True), (4, 7, 10))
    (4, 7, 40)
    >>> net = nn.Sequential(nn.Conv1d(1, 4, 5), nn.MaxPool1d(2, ceil_mode=True), nn.Flatten())
    >>> output_shape(net, (2, 1, 20))
    (2, 32)
    """
    if not isinstance(module, nn.Module):
        raise NetvizTypeError(f"`module` must be an nn.Module, got {type(module).__name__}")
    shape = _shape(input_shape)
    for cls in type(module).__mro__:
        rule = _RULES.get(cls)
        # a subclass that overrides forward may compute anything: not ours to predict
        if rule is not None and type(module).forward is getattr(cls, "forward", None):
            return tuple(int(s) for s in rule(module, shape))
    raise NotImplementedError(
        f"output_shape does not support {type(module).__name__}; supported types: "
        + ", ".join(supported_types())
    )
