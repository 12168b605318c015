r"""Parameter counts and multiply-accumulate counts (MACs) from formulas.

Convention for :func:`macs`: one multiply-accumulate of a weight product (a
convolution tap, a matrix-multiply term, an attention score term) counts 1.
Bias additions, normalisation, activations and pooling count 0. This is the
convention of fvcore and thop for convolutions and linear layers;
``torch.utils.flop_counter.FlopCounterMode`` reports FLOPs = 2 x MACs.
"""

from __future__ import annotations

import math

from torch import nn

from netviz.errors import NetvizTypeError
from netviz.layermath.shapes import SHAPE_PRESERVING_TYPES, output_shape

__all__ = ["macs", "param_count"]

_GATES = {nn.RNN: 1, nn.GRU: 3, nn.LSTM: 4, nn.RNNCell: 1, nn.GRUCell: 3, nn.LSTMCell: 4}
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_NORM = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
)


def _gates(module) -> int:
    for cls, g in _GATES.items():
        if isinstance(module, cls):
            return g
    raise AssertionError(type(module))  # pragma: no cover - callers check the type


def _rnn_params(m) -> int:
    g, h = _gates(m), m.hidden_size
    p = getattr(m, "proj_size", 0)
    out = p or h  # size of the recurrent state fed back (and passed up)
    dirs = 2 if m.bidirectional else 1
    total = 0
    for layer in range(m.num_layers):
        in_l = m.input_size if layer == 0 else dirs * out
        per_dir = g * h * in_l + g * h * out + (2 * g * h if m.bias else 0) + (p * h if p else 0)
        total += dirs * per_dir
    return total


def _mha_params(m) -> int:
    e = m.embed_dim
    total = e * e + e * m.kdim + e * m.vdim  # q, k, v projections (packed when kdim == vdim == E)
    total += 3 * e if m.in_proj_bias is not None else 0
    total += e * e + (e if m.out_proj.bias is not None else 0)
    total += 2 * e if m.bias_k is not None else 0
    return total


def _own_params(m) -> int | None:
    """Formula for a leaf type, or None if the type is not a known leaf."""
    if isinstance(m, _CONV):
        bias = m.out_channels if m.bias is not None else 0
        return m.out_channels * (m.in_channels // m.groups) * math.prod(m.kernel_size) + bias
    if isinstance(m, _CONV_T):
        bias = m.out_channels if m.bias is not None else 0
        return m.in_channels * (m.out_channels // m.groups) * math.prod(m.kernel_size) + bias
    if isinstance(m, nn.Linear):
        return m.in_features * m.out_features + (m.out_features if m.bias is not None else 0)
    if isinstance(m, nn.Bilinear):
        o = m.out_features
        return m.in1_features * m.in2_features * o + (o if m.bias is not None else 0)
    if isinstance(m, (nn.Embedding, nn.EmbeddingBag)):
        return m.num_embeddings * m.embedding_dim
    if isinstance(m, _NORM):
        return 2 * m.num_features if m.affine else 0
    if isinstance(m, nn.GroupNorm):
        return 2 * m.num_channels if m.affine else 0
    if isinstance(m, nn.LayerNorm):
        n = math.prod(m.normalized_shape)
        if not m.elementwise_affine:
            return 0
        return 2 * n if m.bias is not None else n
    if isinstance(m, nn.RMSNorm):
        return math.prod(m.normalized_shape) if m.elementwise_affine else 0
    if isinstance(m, nn.PReLU):
        return m.num_parameters
    if isinstance(m, (nn.RNN, nn.LSTM, nn.GRU)):
        return _rnn_params(m)
    if isinstance(m, (nn.RNNCell, nn.LSTMCell, nn.GRUCell)):
        g, h = _gates(m), m.hidden_size
        return g * h * (m.input_size + h) + (2 * g * h if m.bias else 0)
    if isinstance(m, nn.MultiheadAttention):
        return _mha_params(m)
    return None


def param_count(module: nn.Module) -> int:
    r"""Number of parameters of ``module``, from its hyper-parameters.

    Formulas (``[bias]`` is 1 with a bias, else 0; :math:`g` groups):

    .. math::

        \text{Conv} &= C_\text{out}\,\tfrac{C_\text{in}}{g}\prod k + C_\text{out}[\text{bias}],
        \qquad
        \text{ConvTranspose} = C_\text{in}\,\tfrac{C_\text{out}}{g}\prod k + C_\text{out}[\text{bias}] \\
        \text{Linear} &= n_\text{in} n_\text{out} + n_\text{out}[\text{bias}], \qquad
        \text{BatchNorm}(C) = 2C \ \text{(affine; running stats are buffers)} \\
        \text{RNN layer, direction} &= G h\,n_{\text{in},l} + G h\,h' + 2Gh[\text{bias}] + P h \\
        \text{MultiheadAttention} &= E^2 + E\,k_\text{dim} + E\,v_\text{dim} + 3E + E^2 + E
        + 2E[\text{add\_bias\_kv}]

    with :math:`G = 1, 3, 4` for RNN, GRU, LSTM (two bias vectors, ``bias_ih``
    and ``bias_hh``), :math:`h' = P` (``proj_size``) if set else :math:`h`,
    :math:`n_{\text{in},0}` = ``input_size`` and :math:`n_{\text{in},l} = D h'`
    above, times :math:`D = 2` if bidirectional. ``MultiheadAttention`` with
    ``kdim = vdim = E`` is :math:`4E^2 + 4E`; ``num_heads`` does not matter.

    Modules of other types with no parameters of their own are containers:
    their count is the sum over their children (each child module counted once).
    Parameters tied between *different* modules are counted once per module.

    Raises
    ------
    NotImplementedError
        A module type with parameters of its own and no formula here.

    Examples
    --------
    >>> import torch.nn as nn
    >>> param_count(nn.LSTM(10, 20))  # 4*20*10 + 4*20*20 + 2*4*20
    2560
    >>> param_count(nn.MultiheadAttention(64, 8))  # 4*64**2 + 4*64
    16640
    >>> param_count(nn.Sequential(nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.ReLU()))
    480
    """
    if not isinstance(module, nn.Module):
        raise NetvizTypeError(f"`module` must be an nn.Module, got {type(module).__name__}")
    own = _own_params(module)
    if own is not None:
        return own
    if any(True for _ in module.parameters(recurse=False)):
        raise NotImplementedError(
            f"param_count has no formula for {type(module).__name__}, which holds parameters "
            "of its own; sum(p.numel() for p in module.parameters()) counts them directly"
        )
    return sum(param_count(child) for child in module.children())


def _mha_macs(m, input_shape) -> int:
    if input_shape and isinstance(input_shape[0], (tuple, list)):
        q, k = (
            tuple(input_shape[0]),
            tuple(input_shape[1] if len(input_shape) > 1 else input_shape[0]),
        )
    else:
        q = k = tuple(input_shape)
    output_shape(m, q)
    e = m.embed_dim
    if len(q) == 2:
        n, lq, lk = 1, q[0], k[0]
    elif m.batch_first:
        n, lq, lk = q[0], q[1], k[1]
    else:
        n, lq, lk = q[1], q[0], k[0]
    proj = lq * e * e + lk * e * m.kdim + lk * e * m.vdim + lq * e * e
    attn = 2 * lq * lk * e  # scores Q K^T and the weighted sum of values, over all heads
    return n * (proj + attn)


def _rnn_macs(m, shape) -> int:
    output_shape(m, shape)
    g, h = _gates(m), m.hidden_size
    p = getattr(m, "proj_size", 0)
    out = p or h
    dirs = 2 if m.bidirectional else 1
    if len(shape) == 2:
        steps_times_batch = shape[0]
    else:
        steps_times_batch = shape[0] * shape[1]
    per_step = 0
    for layer in range(m.num_layers):
        in_l = m.input_size if layer == 0 else dirs * out
        per_step += dirs * (g * h * (in_l + out) + p * h)
    return steps_times_batch * per_step


def macs(module: nn.Module, input_shape) -> int:
    r"""Multiply-accumulate operations of one forward pass, from formulas.

    .. math::

        \text{Conv} &= N\,C_\text{out}\,\tfrac{C_\text{in}}{g}\prod k \prod \text{out}, \qquad
        \text{ConvTranspose} = N\,C_\text{in}\,\tfrac{C_\text{out}}{g}\prod k \prod \text{in} \\
        \text{Linear} &= (\textstyle\prod \text{leading dims})\, n_\text{in} n_\text{out}, \qquad
        \text{RNN} = L N \sum_{l,\text{dir}} \big(G h (n_{\text{in},l} + h') + P h\big) \\
        \text{MultiheadAttention} &= N\big(L E^2 + S E k_\text{dim} + S E v_\text{dim} + L E^2 + 2 L S E\big)

    (:math:`N` = 1 for unbatched inputs). Biases, normalisation, activations,
    pooling, dropout and reshapes count 0, as in ``FlopCounterMode`` (whose
    FLOP count is ``2 * macs`` for convolutions and linear layers).
    ``nn.Sequential`` sums its children, feeding each the previous output shape.

    Parameters
    ----------
    module : nn.Module
    input_shape : tuple of int
        Shape of the input (see :func:`output_shape`). For
        ``MultiheadAttention`` either the query's shape (self-attention:
        keys and values as long as the query) or ``(query_shape, key_shape)``.

    Raises
    ------
    NotImplementedError
        Module types without a formula (other containers: use :func:`netviz.summary`).

    Examples
    --------
    >>> import torch.nn as nn
    >>> macs(nn.Conv2d(3, 8, 3, padding=1), (1, 3, 32, 32))  # 8*3*9 per output cell
    221184
    >>> macs(nn.Linear(100, 10), (32, 100))
    32000
    """
    if not isinstance(module, nn.Module):
        raise NetvizTypeError(f"`module` must be an nn.Module, got {type(module).__name__}")
    if isinstance(module, nn.MultiheadAttention):
        return _mha_macs(module, input_shape)
    shape = tuple(input_shape)
    if isinstance(module, _CONV):
        out = output_shape(module, shape)
        nd = len(module.kernel_size)
        n = shape[0] if len(shape) == nd + 2 else 1
        per_cell = module.out_channels * (module.in_channels // module.groups)
        return n * per_cell * math.prod(module.kernel_size) * math.prod(out[-nd:])
    if isinstance(module, _CONV_T):
        output_shape(module, shape)
        nd = len(module.kernel_size)
        n = shape[0] if len(shape) == nd + 2 else 1
        per_cell = module.in_channels * (module.out_channels // module.groups)
        return n * per_cell * math.prod(module.kernel_size) * math.prod(shape[-nd:])
    if isinstance(module, nn.Linear):
        output_shape(module, shape)
        return math.prod(shape[:-1]) * module.in_features * module.out_features
    if isinstance(module, nn.Bilinear):
        output_shape(module, shape)
        return (
            math.prod(shape[:-1]) * module.in1_features * module.in2_features * module.out_features
        )
    if isinstance(module, (nn.RNN, nn.LSTM, nn.GRU)):
        return _rnn_macs(module, shape)
    if isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward:
        total = 0
        for child in module:
            total += macs(child, shape)
            shape = output_shape(child, shape)
        return total
    transformer = (
        nn.TransformerEncoderLayer,
        nn.TransformerDecoderLayer,
        nn.TransformerEncoder,
        nn.TransformerDecoder,
    )
    if isinstance(module, SHAPE_PRESERVING_TYPES) and not isinstance(module, transformer):
        return 0
    zero = (
        nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
        nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
        nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
        nn.Flatten, nn.Unflatten, nn.Embedding, nn.Upsample,
    )  # fmt: skip
    if isinstance(module, zero):
        output_shape(module, shape)
        return 0
    raise NotImplementedError(
        f"macs has no formula for {type(module).__name__}; netviz.summary(model, input_size) "
        "adds up the MACs of the supported layers a forward pass calls"
    )
