r"""Receptive fields of a chain of convolution and pooling layers.

Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural
Networks", Distill 2019. Going from the input towards the output, with
:math:`k^\ast = d(k-1)+1` the dilated kernel and :math:`p_l` the left padding,

.. math::

    r_l = r_{l-1} + (k^\ast_l - 1)\, j_{l-1}, \qquad
    j_l = j_{l-1}\, s_l, \qquad
    u_l = u_{l-1} - p_l\, j_{l-1},

starting from :math:`r_0 = j_0 = 1,\ u_0 = 0`. Output unit :math:`t` of layer
:math:`l` sees the input cells :math:`[u_l + t\,j_l,\ u_l + t\,j_l + r_l - 1]`
(negative indices are padding). Padding moves the field but never changes its
size. Pooling counts as a convolution with the same kernel and stride;
element-wise layers (activations, batch norm, dropout) leave it unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from netviz.errors import LayerConfigError, NetvizTypeError, NetvizValueError
from netviz.layermath._conv import conv_output_size, conv_padding
from netviz.layermath._pool import avg_pool_output_size, pool_output_size
from netviz.layermath._validate import broadcast, check_min

__all__ = ["POINTWISE_TYPES", "ReceptiveField", "ReceptiveFields", "receptive_field"]

#: Modules that act cell by cell (in eval mode) and so leave the receptive field unchanged.
POINTWISE_TYPES: tuple[type[nn.Module], ...] = (
    nn.Identity,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softplus,
    nn.Softsign,
    nn.Tanhshrink,
    nn.Threshold,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
)

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_MAXPOOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
_AVGPOOL = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one layer's output units, in input cells.

    For a 1-D chain every geometric field is an int (a float for ``center``);
    for 2-D and 3-D chains they are tuples with one entry per spatial dimension.

    Attributes
    ----------
    name, type : str
        Position/name in the chain and the layer type (``"Conv2d"``, ``"spec"``...).
    kernel_size, stride, padding, dilation
        The layer's own geometry (``padding`` is the left padding).
    size
        :math:`r`: how many input cells one output unit of this layer sees.
    jump
        :math:`j`: effective stride, the input distance between adjacent output units.
    start
        :math:`u`: input index of the first cell seen by output unit 0 (negative = padding).
    center
        Centre of the field of output unit 0, ``start + (size - 1) / 2``.
    output_size
        The layer's output size when ``input_size`` was given, else ``None``.
    """

    name: str
    type: str
    kernel_size: Any
    stride: Any
    padding: Any
    dilation: Any
    size: Any
    jump: Any
    start: Any
    center: Any
    output_size: Any = None


class ReceptiveFields(list):
    """A list of :class:`ReceptiveField`, one per layer, with :meth:`to_pandas`."""

    def to_pandas(self):
        """One row per layer, the dataclass fields as columns."""
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self])


#: Layers whose geometry is defined over 1, 2 or 3 spatial dimensions (subclasses included).
_SPATIAL_TYPES: dict[int, tuple[type[nn.Module], ...]] = {
    1: (
        nn.Conv1d,
        nn.ConvTranspose1d,
        nn.MaxPool1d,
        nn.AvgPool1d,
        nn.AdaptiveAvgPool1d,
        nn.AdaptiveMaxPool1d,
        nn.BatchNorm1d,
        nn.InstanceNorm1d,
        nn.Dropout1d,
    ),
    2: (
        nn.Conv2d,
        nn.ConvTranspose2d,
        nn.MaxPool2d,
        nn.AvgPool2d,
        nn.AdaptiveAvgPool2d,
        nn.AdaptiveMaxPool2d,
        nn.BatchNorm2d,
        nn.InstanceNorm2d,
        nn.Dropout2d,
    ),
    3: (
        nn.Conv3d,
        nn.ConvTranspose3d,
        nn.MaxPool3d,
        nn.AvgPool3d,
        nn.AdaptiveAvgPool3d,
        nn.AdaptiveMaxPool3d,
        nn.BatchNorm3d,
        nn.InstanceNorm3d,
        nn.Dropout3d,
    ),
}


def spatial_ndim(module: object) -> int | None:
    """Spatial dimensions of a conv, pool, norm or dropout layer by its type (1, 2, 3), else None.

    Found with :func:`isinstance`, so subclasses (``class MyConv(nn.Conv2d)``) count as
    their base, whatever their name.
    """
    for nd, types in _SPATIAL_TYPES.items():
        if isinstance(module, types):
            return nd
    return None


def _flatten(layers) -> list[tuple[str, Any]]:
    if isinstance(layers, nn.Sequential):
        out = []
        for name, child in layers.named_children():
            if isinstance(child, nn.Sequential):
                out += [(f"{name}.{n}", m) for n, m in _flatten(child)]
            else:
                out.append((name, child))
        return out
    if isinstance(layers, nn.Module):
        return [("0", layers)]
    if isinstance(layers, (list, tuple)):
        out = []
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.Sequential):
                out += [(f"{i}.{n}", m) for n, m in _flatten(layer)]
            else:
                out.append((str(i), layer))
        return out
    raise NetvizTypeError(
        "`layers` must be an nn.Sequential, an nn.Module or a list of modules / specs, "
        f"got {type(layers).__name__}"
    )


def _geometry(layer, name):
    """(type, kernel, stride, padding, dilation, kind, module) of one layer."""
    if isinstance(layer, _CONV):
        # padding_mode (reflect, circular...) changes values, not geometry
        return (
            type(layer).__name__,
            layer.kernel_size,
            layer.stride,
            layer.padding,
            layer.dilation,
            "conv",
        )
    if isinstance(layer, _MAXPOOL):
        return (
            type(layer).__name__,
            layer.kernel_size,
            layer.stride if layer.stride is not None else layer.kernel_size,
            layer.padding,
            layer.dilation,
            "pool" + ("-ceil" if layer.ceil_mode else ""),
        )
    if isinstance(layer, _AVGPOOL):
        return (
            type(layer).__name__,
            layer.kernel_size,
            layer.stride if layer.stride is not None else layer.kernel_size,
            layer.padding,
            1,
            "avgpool" + ("-ceil" if layer.ceil_mode else ""),
        )
    if isinstance(layer, POINTWISE_TYPES):
        return type(layer).__name__, 1, 1, 0, 1, "pointwise"
    if isinstance(layer, dict):
        unknown = set(layer) - {"kernel_size", "stride", "padding", "dilation", "name"}
        if "kernel_size" not in layer or unknown:
            raise LayerConfigError(
                f"layer {name}: a spec dict needs 'kernel_size' and may have 'stride', 'padding', "
                f"'dilation', 'name'; got keys {sorted(layer)}"
            )
        return (
            "spec",
            layer["kernel_size"],
            layer.get("stride", 1),
            layer.get("padding", 0),
            layer.get("dilation", 1),
            "conv",
        )
    if isinstance(layer, tuple) and 1 <= len(layer) <= 4 and not isinstance(layer[0], nn.Module):
        k, s, p, d = (*layer, *(None, 1, 0, 1)[len(layer) :])  # type: ignore[misc]  # 1-4 entries
        return "spec", k, s, p, d, "conv"
    if isinstance(layer, nn.Module):
        raise NotImplementedError(
            f"layer {name}: receptive fields are defined here for Conv1/2/3d, MaxPool1/2/3d, "
            f"AvgPool1/2/3d and element-wise layers, not {type(layer).__name__} (transposed "
            "convolutions, adaptive pooling and layers that mix all positions have no fixed field)"
        )
    raise NetvizTypeError(
        f"layer {name}: expected an nn.Module, a dict spec or a (kernel, stride, padding, "
        f"dilation) tuple, got {layer!r}"
    )


def receptive_field(layers, input_size=None) -> ReceptiveFields:
    r"""Receptive field size, jump and offset after every layer of a conv/pool chain.

    Parameters
    ----------
    layers : nn.Sequential, nn.Module or list
        The chain, from input to output. Items may be ``nn.Conv1/2/3d`` (any
        padding, including ``"same"``), ``nn.MaxPool1/2/3d``, ``nn.AvgPool1/2/3d``,
        element-wise modules (see :data:`POINTWISE_TYPES`), dicts
        ``{"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 1}`` or
        tuples ``(kernel_size, stride=1, padding=0, dilation=1)``. Nested
        ``nn.Sequential`` are flattened (names joined with ``.``).
    input_size : int or tuple of int, optional
        If given, each layer's output size is computed too (and invalid
        geometry raises ``ValueError`` as PyTorch would).

    Returns
    -------
    ReceptiveFields
        A list of :class:`ReceptiveField`, one per layer (``.to_pandas()``
        gives a DataFrame). Values are ints for 1-D chains, tuples otherwise.

    Examples
    --------
    Three 3x3 convolutions see 7x7 input cells; with a stride-2 first layer, 11:

    >>> [r.size for r in receptive_field([(3,), (3,), (3,)])]
    [3, 5, 7]
    >>> rf = receptive_field([(3, 2, 1), (3,), (3,)])
    >>> [(r.size, r.jump, r.start) for r in rf]
    [(3, 2, -1), (7, 2, -1), (11, 2, -1)]

    Dilation: kernel 3 with dilations 1, 2, 4 gives fields 3, 7, 15.

    >>> import torch.nn as nn
    >>> net = nn.Sequential(*(nn.Conv1d(1, 1, 3, dilation=d) for d in (1, 2, 4)))
    >>> [r.size for r in receptive_field(net, input_size=32)]
    [3, 7, 15]
    >>> receptive_field(net, input_size=32)[-1].output_size
    18
    """
    items = _flatten(layers)
    if not items:
        raise NetvizValueError("`layers` is empty")
    geoms = []
    dims = set()
    for name, layer in items:
        typ, k, s, p, d, kind = _geometry(layer, name)
        disp = layer.get("name", name) if isinstance(layer, dict) else name
        geoms.append((disp, typ, k, s, p, d, kind))
        nd = spatial_ndim(layer)
        if nd:
            dims.add(nd)
        for value in (k, s, p, d):
            if isinstance(value, (tuple, list)):
                dims.add(len(value))
    if input_size is not None and isinstance(input_size, (tuple, list)):
        dims.add(len(input_size))
    if len(dims) > 1:
        raise LayerConfigError(f"layers mix spatial dimensionalities {sorted(dims)}")
    nd = dims.pop() if dims else 1

    def form(values):
        return values[0] if nd == 1 else tuple(values)

    size, jump, start = [1] * nd, [1] * nd, [0] * nd
    cur = None
    if input_size is not None:
        sizes = input_size if isinstance(input_size, (tuple, list)) else (input_size,) * nd
        cur = broadcast(input_size=sizes)[2]["input_size"]
    out = ReceptiveFields()
    for disp, typ, k, s, p, d, kind in geoms:
        _, _, v = broadcast(
            kernel_size=k if isinstance(k, (tuple, list)) else (k,) * nd,
            stride=s,
            dilation=d,
            padding=0 if isinstance(p, str) else p,
        )
        if isinstance(p, str):
            pads = conv_padding(v["kernel_size"], p, v["dilation"], v["stride"])
            left = tuple(pl for pl, _ in pads)
        else:
            left = v["padding"]
        check_min(v["kernel_size"], "kernel_size", 1, f"positive (layer {disp})")
        check_min(v["stride"], "stride", 1, f"positive (layer {disp})")
        check_min(v["dilation"], "dilation", 1, f"positive (layer {disp})")
        check_min(left, "padding", 0, f"non-negative (layer {disp})")
        if cur is not None:
            if kind.startswith("avgpool"):
                cur = avg_pool_output_size(
                    cur, v["kernel_size"], v["stride"], v["padding"], kind == "avgpool-ceil"
                )
            elif kind.startswith("pool"):
                cur = pool_output_size(
                    cur,
                    v["kernel_size"],
                    v["stride"],
                    v["padding"],
                    v["dilation"],
                    kind == "pool-ceil",
                )
            elif kind == "conv":
                pad = p if isinstance(p, str) else left
                cur = conv_output_size(cur, v["kernel_size"], v["stride"], pad, v["dilation"])
        for i in range(nd):
            keff = v["dilation"][i] * (v["kernel_size"][i] - 1) + 1
            size[i] += (keff - 1) * jump[i]
            start[i] -= left[i] * jump[i]
            jump[i] *= v["stride"][i]
        out.append(
            ReceptiveField(
                name=disp,
                type=typ,
                kernel_size=form(v["kernel_size"]),
                stride=form(v["stride"]),
                padding=form(left),
                dilation=form(v["dilation"]),
                size=form(size),
                jump=form(jump),
                start=form(start),
                center=form([u + (r - 1) / 2 for u, r in zip(start, size)]),
                output_size=None if cur is None else form(cur),
            )
        )
    return out
