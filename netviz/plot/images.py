"""Convolution filters and feature maps as image grids: :func:`filters`, :func:`feature_maps`.

Both accept what the capture functions return (a module, a tensor, a
``{name: tensor}`` dict) or a file written by
:func:`netviz.capture.tensorfile.save_tensors`, and return the grid of axes
they drew into (a 2-D object array, unused cells switched off). Every panel
holds exactly one image whose data is the plotted values.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from netviz.plot._style import CMAP_DIVERGING, CMAP_SEQUENTIAL, style

__all__ = ["feature_maps", "filters", "grid_axes"]


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


def grid_axes(ax: Any, rows: int, cols: int, cell: tuple[float, float] = (1.1, 1.1)) -> Any:
    """A ``(rows, cols)`` object array of new axes.

    ``ax=None``: a new figure sized to the grid; a ``Figure``: axes over the
    whole figure; an ``Axes``: its area is split into the grid (the axes
    itself is removed).
    """
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    if ax is None:
        size = (min(cell[0] * cols + 1.4, 14.0), min(cell[1] * rows + 1.0, 14.0))
        fig = plt.figure(figsize=size)
        spec = fig.add_gridspec(rows, cols)
    elif isinstance(ax, Figure):
        fig = ax
        spec = fig.add_gridspec(rows, cols)
    elif isinstance(ax, Axes):
        fig = ax.figure
        spec = ax.get_subplotspec().subgridspec(rows, cols)
        ax.remove()
    else:
        raise TypeError(f"`ax` must be None, a matplotlib Axes or Figure, got {type(ax).__name__}")
    axes = np.empty((rows, cols), dtype=object)
    for i in range(rows):
        for j in range(cols):
            axes[i, j] = fig.add_subplot(spec[i, j])
    return axes


def _grid_title(target: Any, axes: Any, text: str) -> None:
    """Title a grid: the figure's suptitle when the grid owns the figure,
    else a line of text above the grid's own area (a given Axes' region), so
    that the parent figure's title is never overwritten."""
    from matplotlib.axes import Axes

    fig = axes[0, 0].figure
    if not isinstance(target, Axes):
        fig.suptitle(text)
        return
    from matplotlib.transforms import Bbox

    cells = list(axes.flat)

    def grid_box(renderer: Any) -> Any:  # evaluated at draw time: follows any layout
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


def _bare(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _raw_weight(module_or_tensor: Any) -> tuple[np.ndarray, str]:
    """``(C_out, C_in, *kernel)`` weights and a description of the layer."""
    from torch import nn

    from netviz.capture.filters import conv_weight

    if isinstance(module_or_tensor, nn.Module):
        w = conv_weight(module_or_tensor)
        kernel = "x".join(str(k) for k in w.shape[2:])
        label = (
            f"{type(module_or_tensor).__name__}: {w.shape[0]} filters, {w.shape[1]} in, {kernel}"
        )
        return to_numpy(w), label
    w = to_numpy(module_or_tensor)
    if w.ndim not in (3, 4, 5):
        raise ValueError(
            "`module_or_tensor` must be a conv module or a raw conv weight (C_out, C_in, *kernel) "
            f"with 3 to 5 dims, got shape {w.shape}"
        )
    return w, f"{w.shape[0]} filters, {w.shape[1]} in"


def filters(
    module_or_tensor: Any,
    ax: Any = None,
    *,
    max_filters: int = 32,
    max_inputs: int = 8,
    ncols: int | None = None,
    cmap: str | None = None,
    colorbar: bool = True,
    title: str | None = None,
) -> np.ndarray:
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
    module_or_tensor
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
    numpy.ndarray
        The 2-D array of axes.

    Examples
    --------
    >>> import torch
    >>> axes = filters(torch.nn.Conv2d(3, 6, 5))
    >>> axes.shape, axes[0, 0].images[0].get_array().shape
    ((2, 3), (5, 5, 3))
    """
    w, label = _raw_weight(module_or_tensor)
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
            axes = grid_axes(ax, rows, cols)
            image = None
            for idx, a in enumerate(axes.flat):
                _bare(a)
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
            axes = grid_axes(ax, n_out, n_in, cell=(0.8, 0.8))
            image = None
            for i in range(n_out):
                for j in range(n_in):
                    a = axes[i, j]
                    _bare(a)
                    image = a.imshow(w[i, j], cmap=cmap, vmin=-m, vmax=m)
                    if j == 0:
                        a.set_ylabel(f"out {i}", fontsize=7)
                    if i == 0:
                        a.set_title(f"in {j}", fontsize=7)
        fig = axes[0, 0].figure
        if colorbar and image is not None:
            fig.colorbar(image, ax=list(axes.flat), shrink=0.8, label="weight")
        _grid_title(ax, axes, title if title is not None else label)
    return axes


def _layer_items(activations: Any, layers: Sequence[str] | None) -> list[tuple[str, Any]]:
    activations = load_if_path(activations)
    if isinstance(activations, Mapping):
        items = list(activations.items())
        if layers is not None:
            missing = [k for k in layers if k not in activations]
            if missing:
                raise ValueError(
                    f"`layers` {missing} not in the activations; keys: {list(activations)}"
                )
            items = [(k, activations[k]) for k in layers]
    else:
        items = [("", activations)]
    if not items:
        raise ValueError("`activations` is empty")
    return items


def feature_maps(
    activations: Any,
    ax: Any = None,
    *,
    layers: Sequence[str] | None = None,
    item: int = 0,
    max_channels: int = 8,
    cmap: str | None = None,
    colorbar: bool = False,
) -> np.ndarray:
    """Draw the channels of one batch item, one row per layer.

    Each row is labelled with the layer name and the shape of the item's
    activation. A layer's channels share one colour scale: sequential from
    min to max when all values are >= 0 (after ReLU), otherwise diverging
    and symmetric around 0.

    Parameters
    ----------
    activations
        ``{name: tensor}`` (as :func:`netviz.capture_activations` returns), a
        single tensor, or a file saved with ``save_tensors``. Tensors are
        ``(batch, C, H, W)`` (one panel per channel), ``(batch, C, L)`` (one
        ``C x L`` panel), ``(batch, F)`` (one ``1 x F`` panel) or
        ``(batch, C, D, H, W)`` (middle depth slice).
    layers
        Names to draw, in this order (default: all, in dict order).
    item
        Batch item to draw.
    max_channels
        Panels per row (the first channels).

    Returns
    -------
    numpy.ndarray
        ``(n_layers, columns)`` axes; unused cells are switched off.

    Examples
    --------
    >>> import torch
    >>> axes = feature_maps({"conv": torch.rand(2, 4, 6, 6), "fc": torch.rand(2, 10)})
    >>> axes.shape, axes[0, 0].get_ylabel()
    ((2, 4), 'conv\\n(4, 6, 6)')
    """
    items = _layer_items(activations, layers)
    panels: list[tuple[str, list[np.ndarray]]] = []
    for name, value in items:
        x = to_numpy(value)
        if x.ndim < 2:
            raise ValueError(
                f"activation {name!r} has shape {x.shape}; expected (batch, ...) with >= 2 dims"
            )
        if not -x.shape[0] <= item < x.shape[0]:
            raise ValueError(f"`item` {item} out of range for {name!r} with batch {x.shape[0]}")
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
            raise ValueError(f"activation {name!r} has an unsupported shape {value.shape}")
        panels.append((f"{name or 'output'}\n{tuple(shape)}", maps))
    cols = max(len(maps) for _, maps in panels)
    with style():
        axes = grid_axes(ax, len(panels), cols)
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
                _bare(a)
                if col >= len(maps):
                    a.set_axis_off()
                    continue
                image = a.imshow(
                    maps[col], aspect="auto" if maps[col].shape[0] == 1 else None, **kw
                )
                if col == 0:
                    a.set_ylabel(label, fontsize=9)
            if colorbar:
                axes[row, 0].figure.colorbar(image, ax=list(axes[row]), shrink=0.8)
    return axes
