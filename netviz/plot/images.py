"""Convolution filters and feature maps as image grids: :func:`filters`, :func:`feature_maps`.

Both accept what the capture functions return (a module, a tensor, a
``{name: tensor}`` dict) or a file written by
:func:`netviz.capture.tensorfile.save_tensors`, and return the grid of axes
they drew into as a :class:`~netviz.plot.PlotGrid` (``.figure``, ``.axes``: a
2-D object array, unused cells switched off). Every panel
holds exactly one image whose data is the plotted values.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from netviz.errors import NetvizValueError
from netviz.plot._axes import PlotGrid, bare, grid_axes
from netviz.plot.theme import CMAP_DIVERGING, CMAP_SEQUENTIAL, style
from netviz.records.selection import select_names

if TYPE_CHECKING:
    import torch
    from torch import nn

    from netviz.plot._axes import Target
    from netviz.plot._types import Tensors

__all__ = ["feature_maps", "filters"]


def to_numpy(value: Any) -> np.ndarray:
    """A tensor or array-like as a float numpy array (on the host)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if str(value.dtype) in ("torch.bfloat16", "torch.float16"):
            value = value.float()
        value = value.numpy()
    return np.asarray(value, dtype=np.float64)


def load_if_path(value: Any) -> Any:
    """A ``str`` / path-like is read with ``load_tensors``; anything else is returned."""
    if isinstance(value, (str, os.PathLike)):
        from netviz.capture.tensorfile import load_tensors

        return load_tensors(value)
    return value


def _grid_title(target: Target, grid: PlotGrid, text: str) -> None:
    """Title a grid: the figure's suptitle when the grid owns the figure,
    else a line of text above the grid's own area (a given Axes' region), so
    that the parent figure's title is never overwritten."""
    from matplotlib.axes import Axes

    if not isinstance(target, Axes):
        grid.figure.suptitle(text)
        return
    from matplotlib.transforms import Bbox

    cells = list(grid.axes.flat)

    def grid_box(renderer: Any) -> Bbox:  # evaluated at draw time: follows any layout
        return Bbox.union([a.get_window_extent(renderer) for a in cells])

    note = cells[0].annotate(
        text,
        xy=(0.5, 1.0),
        xycoords=grid_box,
        xytext=(0, 6),
        textcoords="offset points",
        ha="center",
        va="bottom",
        fontsize="large",
        annotation_clip=False,
    )
    note.set_in_layout(False)  # a layout engine must not shrink the first cell for it


def _raw_weight(module_or_tensor: nn.Module | torch.Tensor | np.ndarray) -> tuple[np.ndarray, str]:
    """``(C_out, C_in, *kernel)`` weights and a description of the layer."""
    from torch import nn

    from netviz.capture.filters import conv_weight

    if isinstance(module_or_tensor, nn.Module):
        weight = conv_weight(module_or_tensor)
        kernel = "x".join(str(k) for k in weight.shape[2:])
        label = (
            f"{type(module_or_tensor).__name__}: {weight.shape[0]} filters, "
            f"{weight.shape[1]} in, {kernel}"
        )
        return to_numpy(weight), label
    w = to_numpy(module_or_tensor)
    if w.ndim not in (3, 4, 5):
        raise NetvizValueError(
            "`data` must be a conv module or a raw conv weight (C_out, C_in, *kernel) "
            f"with 3 to 5 dims, got shape {w.shape}"
        )
    return w, f"{w.shape[0]} filters, {w.shape[1]} in"


def filters(
    data: nn.Module | torch.Tensor | np.ndarray,
    ax: Target = None,
    *,
    max_filters: int = 32,
    max_inputs: int = 8,
    ncols: int | None = None,
    cmap: str | None = None,
    colorbar: bool = True,
    title: str | None = None,
) -> PlotGrid:
    r"""Draw the filters of a convolution as a grid of small images.

    The colour scale is symmetric around 0 (diverging colour map,
    :math:`[-m, m]` with :math:`m = \max |w|` over the filters shown), so
    positive and negative weights look alike in strength.

    - ``in_channels == 3`` (2-D): one RGB panel per filter,
      :math:`\text{rgb} = \tfrac12 + \tfrac{w}{2m}` (grey is 0).
    - ``in_channels == 1`` (2-D): one panel per filter.
    - other ``in_channels`` (2-D): a row per filter, a column per input
      channel (up to ``max_inputs``).
    - 1-D convolutions: one ``C_in x K`` panel per filter; 3-D convolutions:
      their middle depth slice.

    Parameters
    ----------
    data
        A conv module, or a raw weight ``(C_out, C_in, *kernel)`` (tensor or
        array).
    ax
        ``None``, a ``Figure`` or an ``Axes`` whose area the grid fills.
    max_filters, max_inputs
        At most this many output (input) channels are drawn, the first ones.
    ncols
        Panels per row when one panel per filter (default about square).

    Returns
    -------
    PlotGrid
        ``.axes``: the 2-D array of axes.

    Examples
    --------
    >>> import torch
    >>> grid = filters(torch.nn.Conv2d(3, 6, 5))
    >>> grid.axes.shape, grid.axes[0, 0].images[0].get_array().shape
    ((2, 3), (5, 5, 3))
    """
    w, label = _raw_weight(data)
    if w.ndim == 5:
        w = w[:, :, w.shape[2] // 2]
        label += " (middle depth slice)"
    w = w[:max_filters]
    n_out, n_in = w.shape[0], w.shape[1]
    m = float(np.nanmax(np.abs(w))) if w.size else 1.0
    m = m if m > 0 else 1.0
    cmap = cmap or CMAP_DIVERGING
    with style():
        if w.ndim == 3 or n_in in (1, 3):
            cols = ncols or max(1, math.ceil(math.sqrt(n_out)))
            rows = math.ceil(n_out / cols)
            grid = grid_axes(ax, rows, cols)
            image = None
            for idx, a in enumerate(grid.axes.flat):
                bare(a)
                if idx >= n_out:
                    a.set_axis_off()
                    continue
                if w.ndim == 3:
                    image = a.imshow(w[idx], cmap=cmap, vmin=-m, vmax=m, aspect="auto")
                elif n_in == 3:
                    a.imshow(np.clip(0.5 + w[idx].transpose(1, 2, 0) / (2 * m), 0.0, 1.0))
                else:
                    image = a.imshow(w[idx, 0], cmap=cmap, vmin=-m, vmax=m)
        else:
            n_in = min(n_in, max_inputs)
            grid = grid_axes(ax, n_out, n_in, cell=(0.8, 0.8))
            image = None
            for i in range(n_out):
                for j in range(n_in):
                    a = grid.axes[i, j]
                    bare(a)
                    image = a.imshow(w[i, j], cmap=cmap, vmin=-m, vmax=m)
                    if j == 0:
                        a.set_ylabel(f"out {i}", fontsize=7)
                    if i == 0:
                        a.set_title(f"in {j}", fontsize=7)
        if colorbar and image is not None:
            grid.figure.colorbar(image, ax=list(grid.axes.flat), shrink=0.8, label="weight")
        _grid_title(ax, grid, title if title is not None else label)
    return grid


def _layer_items(activations: Any, modules: str | Sequence[str] | None) -> list[tuple[str, Any]]:
    activations = load_if_path(activations)
    if isinstance(activations, Mapping):
        if not activations:
            raise NetvizValueError("`data` is empty")
        names = select_names(activations, modules, what="the activations")
        return [(k, activations[k]) for k in names]
    return [("", activations)]


def feature_maps(
    data: Tensors,
    ax: Target = None,
    *,
    modules: str | Sequence[str] | None = None,
    item: int = 0,
    max_channels: int = 8,
    cmap: str | None = None,
    colorbar: bool = False,
) -> PlotGrid:
    """Draw the channels of one batch item, one row per layer.

    Each row is labelled with the layer name and the shape of the item's
    activation. A layer's channels share one colour scale: sequential from
    min to max when all values are >= 0 (after ReLU), otherwise diverging
    and symmetric around 0.

    Parameters
    ----------
    data
        ``{name: tensor}`` (as :func:`netviz.capture_activations` returns), a
        single tensor, or a file saved with ``save_tensors``. Tensors are
        ``(batch, C, H, W)`` (one panel per channel), ``(batch, C, L)`` (one
        ``C x L`` panel), ``(batch, F)`` (one ``1 x F`` panel) or
        ``(batch, C, D, H, W)`` (middle depth slice).
    modules
        Which entries of a dict to draw: a glob or list of globs over the
        keys, as for :func:`netviz.watch` (default: all); drawn in dict order.
    item
        Batch item to draw.
    max_channels
        Panels per row (the first channels).

    Returns
    -------
    PlotGrid
        ``.axes``: ``(n_layers, columns)``; unused cells are switched off.

    Examples
    --------
    >>> import torch
    >>> grid = feature_maps({"conv": torch.rand(2, 4, 6, 6), "fc": torch.rand(2, 10)})
    >>> grid.axes.shape, grid.axes[0, 0].get_ylabel()
    ((2, 4), 'conv\\n(4, 6, 6)')
    """
    items = _layer_items(data, modules)
    panels: list[tuple[str, list[np.ndarray]]] = []
    for name, value in items:
        x = to_numpy(value)
        if x.ndim < 2:
            raise NetvizValueError(
                f"activation {name!r} has shape {x.shape}; expected (batch, ...) with >= 2 dims"
            )
        if not -x.shape[0] <= item < x.shape[0]:
            raise NetvizValueError(
                f"`item` {item} out of range for {name!r} with batch {x.shape[0]}"
            )
        x = x[item]
        shape = x.shape
        if x.ndim == 4:
            x = x[:, x.shape[1] // 2]
        if x.ndim == 3:
            maps = [x[c] for c in range(min(x.shape[0], max_channels))]
        elif x.ndim == 2:
            maps = [x]
        elif x.ndim == 1:
            maps = [x[None, :]]
        else:
            raise NetvizValueError(f"activation {name!r} has an unsupported shape {value.shape}")
        panels.append((f"{name or 'output'}\n{tuple(shape)}", maps))
    cols = max(len(maps) for _, maps in panels)
    with style():
        grid = grid_axes(ax, len(panels), cols)
        axes = grid.axes
        for row, (label, maps) in enumerate(panels):
            stacked = np.concatenate([m.ravel() for m in maps])
            finite = stacked[np.isfinite(stacked)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            if lo >= 0:
                kw = {
                    "cmap": cmap or CMAP_SEQUENTIAL,
                    "vmin": lo,
                    "vmax": hi if hi > lo else lo + 1,
                }
            else:
                m = max(abs(lo), abs(hi))
                kw = {"cmap": cmap or CMAP_DIVERGING, "vmin": -m, "vmax": m}
            for col in range(cols):
                a = axes[row, col]
                bare(a)
                if col >= len(maps):
                    a.set_axis_off()
                    continue
                image = a.imshow(
                    maps[col], aspect="auto" if maps[col].shape[0] == 1 else None, **kw
                )
                if col == 0:
                    a.set_ylabel(label, fontsize=9)
            if colorbar:
                grid.figure.colorbar(image, ax=list(axes[row]), shrink=0.8)
    return grid
