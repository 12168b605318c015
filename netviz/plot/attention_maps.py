"""Attention heatmaps and positional encodings.

:func:`attention` draws the heads of one or several layers; :func:`positional_encoding`
and :func:`position_similarity` draw a ``(positions, dim)`` table and its
position-by-position dot products. All accept tensors, arrays, the dicts the
capture functions return, or a file saved with ``save_tensors``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from netviz.errors import NetvizValueError
from netviz.plot._axes import PlotGrid, get_ax, grid_axes
from netviz.plot.images import load_if_path, to_numpy
from netviz.plot.theme import CMAP_DIVERGING, CMAP_SEQUENTIAL, style
from netviz.records.selection import select_names

if TYPE_CHECKING:
    import torch
    from matplotlib.axes import Axes

    from netviz.plot._axes import Target
    from netviz.plot._types import Tensors

__all__ = ["attention", "position_similarity", "positional_encoding"]


def _as_4d(name: str, value: Any) -> np.ndarray:
    x = to_numpy(value)
    if x.ndim == 2:
        return x[None, None]
    if x.ndim == 3:
        return x[None]
    if x.ndim == 4:
        return x
    raise NetvizValueError(
        f"attention {name!r} has shape {x.shape}; expected (L, S), (heads, L, S) or "
        "(batch, heads, L, S)"
    )


def _token_pair(tokens: Any, length: int, source: int) -> tuple[list[str] | None, list[str] | None]:
    if tokens is None:
        return None, None
    if isinstance(tokens, tuple) and len(tokens) == 2 and not isinstance(tokens[0], str):
        query, key = tokens
    else:
        query = key = tokens
    query = None if query is None else [str(t) for t in query]
    key = None if key is None else [str(t) for t in key]
    if query is not None and len(query) != length:
        raise NetvizValueError(
            f"`tokens` has {len(query)} query tokens but the attention has {length} rows"
        )
    if key is not None and len(key) != source:
        raise NetvizValueError(
            f"`tokens` has {len(key)} key tokens but the attention has {source} columns"
        )
    return query, key


def attention(
    data: Tensors,
    ax: Target = None,
    *,
    tokens: Sequence[str] | tuple[Sequence[str] | None, Sequence[str] | None] | None = None,
    heads: Sequence[int] | None = None,
    modules: str | Sequence[str] | None = None,
    item: int = 0,
    ncols: int = 4,
    hide_zeros: bool = True,
    mask: np.ndarray | torch.Tensor | None = None,
    cmap: str | None = None,
    colorbar: bool = True,
) -> PlotGrid:
    """Heatmaps of attention probabilities: one panel per head.

    Several layers: one row per layer, one column per head. One layer: its
    heads wrapped into rows of ``ncols``. Rows of a panel are queries,
    columns keys; the colour scale is fixed to 0..1. Masked positions are
    blank: NaN entries (fully masked rows), exact zeros (positions a mask
    excluded, where ``softmax`` gives exactly 0) when ``hide_zeros``, and
    entries where ``mask`` is true.

    Parameters
    ----------
    data
        ``{name: (batch, heads, L, S)}`` as :func:`netviz.capture_attention`
        returns, a single tensor/array ``(L, S)``, ``(heads, L, S)`` or
        ``(batch, heads, L, S)``, or a file saved with ``save_tensors``.
    tokens
        Tick labels: one sequence for self-attention (queries and keys), or
        ``(query_tokens, key_tokens)`` for cross-attention (either may be
        ``None``). Query labels go on the first column, key labels on the
        bottom row.
    heads
        Head indices to draw (default: all).
    modules
        Which entries of a dict to draw: a glob or list of globs over the
        keys, as for :func:`netviz.watch` (default: all); drawn in dict order.
    item
        Batch item.
    mask
        Boolean array broadcastable to ``(L, S)``; true entries are blank.

    Returns
    -------
    PlotGrid
        ``.axes``: the 2-D array of axes (unused cells switched off).

    Examples
    --------
    >>> import torch
    >>> w = torch.softmax(torch.randn(1, 2, 3, 3), dim=-1)
    >>> grid = attention({"layer": w}, tokens=["a", "b", "c"])
    >>> grid.axes.shape, [t.get_text() for t in grid.axes[0, 0].get_yticklabels()]
    ((1, 2), ['a', 'b', 'c'])
    """
    weights = load_if_path(data)
    if isinstance(weights, Mapping):
        if not weights:
            raise NetvizValueError("`data` is empty")
        names = select_names(weights, modules, what="the attention weights")
        items = [(n, _as_4d(n, weights[n])) for n in names]
    else:
        items = [("", _as_4d("data", weights))]
    panels: list[tuple[str, int, np.ndarray]] = []
    for name, x in items:
        if not -x.shape[0] <= item < x.shape[0]:
            raise NetvizValueError(
                f"`item` {item} out of range for {name!r} with batch {x.shape[0]}"
            )
        chosen = range(x.shape[1]) if heads is None else list(heads)
        for h in chosen:
            if not -x.shape[1] <= h < x.shape[1]:
                raise NetvizValueError(
                    f"head {h} out of range for {name!r} with {x.shape[1]} heads"
                )
            panels.append((name, h, x[item, h]))
    if len(items) == 1:
        cols = max(1, min(ncols, len(panels)))
        rows = math.ceil(len(panels) / cols)
        where = [divmod(i, cols) for i in range(len(panels))]
    else:
        rows = len(items)
        row_of = {name: r for r, (name, _) in enumerate(items)}
        count: dict[str, int] = {}
        where = []
        for name, _, _ in panels:
            where.append((row_of[name], count.get(name, 0)))
            count[name] = count.get(name, 0) + 1
        cols = max(count.values())
    with style():
        import matplotlib as mpl

        cm = mpl.colormaps[cmap or CMAP_SEQUENTIAL]
        grid = grid_axes(ax, rows, cols, cell=(1.9, 1.9))
        axes = grid.axes
        used = set(where)
        image = None
        for (name, h, data), (r, c) in zip(panels, where):
            a = axes[r, c]
            blank = ~np.isfinite(data)
            if hide_zeros:
                blank |= data == 0
            if mask is not None:
                blank |= np.broadcast_to(np.asarray(mask, dtype=bool), data.shape)
            image = a.imshow(
                np.ma.masked_array(data, mask=blank),
                cmap=cm,
                vmin=0.0,
                vmax=1.0,
                interpolation="nearest",
            )
            query, key = _token_pair(tokens, data.shape[0], data.shape[1])
            a.set_title(f"{name} head {h}" if name and len(items) == 1 else f"head {h}", fontsize=9)
            if c == 0 and query is not None:
                a.set_yticks(range(len(query)), query, fontsize=9)
            elif query is not None:
                a.set_yticks([])
            if c == 0 and len(items) > 1:
                a.set_ylabel(name or "attention", fontsize=9)
            bottom = (r + 1, c) not in used
            if bottom and key is not None:
                a.set_xticks(range(len(key)), key, rotation=90, fontsize=9)
            elif key is not None:
                a.set_xticks([])
        for r in range(rows):
            for c in range(cols):
                if (r, c) not in used:
                    axes[r, c].set_axis_off()
        if colorbar and image is not None:
            grid.figure.colorbar(
                image,
                ax=[a for a in axes.flat if a.images],
                shrink=0.8,
                label="attention probability",
            )
    return grid


def _table(pe: Tensors) -> np.ndarray:
    pe = load_if_path(pe)
    if isinstance(pe, Mapping):
        if len(pe) != 1:
            raise NetvizValueError(
                f"`data` is a dict with {len(pe)} entries {list(pe)[:6]}; pass one table"
            )
        pe = next(iter(pe.values()))
    x = to_numpy(pe)
    if x.ndim != 2:
        raise NetvizValueError(f"`data` must be a (positions, dim) table, got shape {x.shape}")
    return x


def positional_encoding(
    data: Tensors,
    ax: Target = None,
    *,
    cmap: str | None = None,
    colorbar: bool = True,
    title: str | None = "positional encoding",
) -> Axes:
    """Heatmap of a positional encoding: positions down, dimensions across.

    The colour scale is symmetric around 0 (diverging).

    Parameters
    ----------
    data
        ``(positions, dim)`` tensor or array (e.g. from
        :func:`netviz.sinusoidal_encoding` or
        :func:`netviz.positional_encoding_weights`), a one-entry dict, or a
        file saved with ``save_tensors``.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from netviz.layermath import sinusoidal_encoding
    >>> ax = positional_encoding(sinusoidal_encoding(50, 128, kind="sin"))
    >>> ax.images[0].get_array().shape
    (50, 128)
    """
    x = _table(data)
    m = float(np.nanmax(np.abs(x))) if x.size else 1.0
    m = m if m > 0 else 1.0
    with style():
        ax = get_ax(ax)
        image = ax.imshow(
            x, aspect="auto", cmap=cmap or CMAP_DIVERGING, vmin=-m, vmax=m, interpolation="nearest"
        )
        ax.set_xlabel("dimension")
        ax.set_ylabel("position")
        if title:
            ax.set_title(title)
        if colorbar:
            ax.figure.colorbar(image, ax=ax)
    return ax


def position_similarity(
    data: Tensors,
    ax: Target = None,
    *,
    normalize: bool = False,
    cmap: str | None = None,
    colorbar: bool = True,
    title: str | None = None,
) -> Axes:
    r"""The matrix of dot products between positions, :math:`S = PE\,PE^\top`.

    For sinusoidal encodings the similarity depends (mostly) on the distance
    :math:`|t - t'|` only, so the matrix is banded along the diagonal.

    Parameters
    ----------
    data
        ``(positions, dim)`` table, as for :func:`positional_encoding`.
    normalize
        Cosine similarity (rows scaled to unit norm) instead of dot products.

    Returns
    -------
    matplotlib.axes.Axes
        The image data is :math:`S` (``positions x positions``).

    Examples
    --------
    >>> from netviz.layermath import sinusoidal_encoding
    >>> ax = position_similarity(sinusoidal_encoding(20, 16))
    >>> round(float(ax.images[0].get_array()[3, 3]), 6)  # |PE[t]|^2 = d/2
    8.0
    """
    x = _table(data)
    if normalize:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms > 0, norms, 1.0)
    sim = x @ x.T
    with style():
        ax = get_ax(ax)
        image = ax.imshow(sim, cmap=cmap or CMAP_SEQUENTIAL, interpolation="nearest")
        ax.set_xlabel("position")
        ax.set_ylabel("position")
        ax.set_title(
            title or ("cosine similarity" if normalize else "dot product") + " of positions"
        )
        if colorbar:
            ax.figure.colorbar(image, ax=ax)
    return ax
