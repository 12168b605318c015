"""Attribution maps: :func:`attribution` for images, :func:`token_attribution` for sequences.

Both take what :func:`netviz.attribution` returns (its ``.attr``, or the
:class:`~netviz.capture.attribution.Attribution` itself), a tensor or an
array, draw on ``ax`` (a new figure if ``None``) and return the axes. The
colour scale is symmetric around 0 for signed maps (red: towards the target
class, blue: away from it), so that white always means "no effect".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from netviz.errors import NetvizValueError
from netviz.plot._axes import bare, get_ax
from netviz.plot.images import to_numpy
from netviz.plot.theme import CMAP_DIVERGING, style

if TYPE_CHECKING:
    from typing import TypeAlias

    import torch
    from matplotlib.axes import Axes

    from netviz.capture.attribution import Attribution
    from netviz.plot._axes import Target

    #: An attribution map: a tensor, an array, or what :func:`netviz.attribution` returns.
    AttrLike: TypeAlias = "torch.Tensor | np.ndarray | Attribution"

__all__ = ["attribution", "token_attribution"]

KINDS = ("signed", "abs", "blend")


def _values(attr: AttrLike) -> np.ndarray:
    if hasattr(attr, "attr") and hasattr(attr, "method"):  # an Attribution result
        attr = attr.attr
    return to_numpy(attr)


def _image_2d(name: str, x: np.ndarray, channels_ok: bool) -> np.ndarray:
    """``(H, W)``, ``(C, H, W)`` or ``(1, C, H, W)`` -> ``(H, W)`` or ``(H, W, 3)``."""
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim == 3:
        if x.shape[0] == 1:
            return x[0]
        if channels_ok and x.shape[0] == 3:
            return np.moveaxis(x, 0, -1)
        if not channels_ok:
            return x.sum(axis=0)  # attribution summed over channels
    if x.ndim == 2:
        return x
    raise NetvizValueError(
        f"`{name}` has shape {x.shape}; expected one image (H, W), (C, H, W) or (1, C, H, W)"
        + (" with C = 1 or 3" if channels_ok else "")
    )


def _scale(values: np.ndarray, vmax: float | None, percentile: float) -> float:
    if vmax is not None:
        if not vmax > 0:
            raise NetvizValueError(f"`vmax` must be positive, got {vmax}")
        return float(vmax)
    if not 0 < percentile <= 100:
        raise NetvizValueError(f"`percentile` must be in (0, 100], got {percentile}")
    finite = np.abs(values[np.isfinite(values)])
    top = float(np.percentile(finite, percentile)) if finite.size else 0.0
    return top if top > 0 else 1.0


def attribution(
    data: AttrLike,
    ax: Target = None,
    *,
    image: torch.Tensor | np.ndarray | None = None,
    kind: str | None = None,
    alpha: float = 0.65,
    vmax: float | None = None,
    percentile: float = 100.0,
    cmap: str | None = None,
    colorbar: bool = True,
    title: str | None = None,
) -> Axes:
    """An attribution map, over its image.

    Parameters
    ----------
    data
        The attribution of one example: ``(H, W)``, ``(C, H, W)`` (channels
        are summed) or a batch of one, or an
        :class:`~netviz.capture.attribution.Attribution` of one example.
    ax
        Axes to draw on; a new figure if ``None``.
    image
        The input image, the same spatial size: ``(H, W)``, ``(1, H, W)``,
        ``(3, H, W)`` (RGB) or a batch of one. Drawn in grey (``"blend"``).
    kind
        ``"signed"``: the attribution on a diverging scale (red positive,
        blue negative); ``"abs"``: ``|attr|`` as a heat map; ``"blend"``: the
        signed map with transparency ``alpha`` over the grey image. Default:
        ``"blend"`` with an ``image``, else ``"signed"``.
    vmax, percentile
        The colour scale's end: ``vmax``, else the ``percentile`` of
        ``|attr|`` (100: the largest; lower values keep one hot pixel from
        washing out the rest).
    cmap
        Colour map (default: diverging ``RdBu_r``; ``"abs"``: ``inferno``;
        non-negative ``"blend"``: ``Reds``).
    colorbar
        Add a labelled colour bar.
    title
        Axes title.

    Returns
    -------
    matplotlib.axes.Axes
        With the attribution image last in ``ax.images``.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    if kind is None:
        kind = "signed" if image is None else "blend"
    if kind not in KINDS:
        raise NetvizValueError(f"`kind` must be one of {', '.join(KINDS)}, got {kind!r}")
    if not 0 <= alpha <= 1:
        raise NetvizValueError(f"`alpha` must be in [0, 1], got {alpha}")
    a = _image_2d("data", _values(data), channels_ok=False)
    img = None if image is None else _image_2d("image", to_numpy(image), channels_ok=True)
    if img is not None and img.shape[:2] != a.shape:
        raise NetvizValueError(
            f"`image` is {img.shape[0]}x{img.shape[1]} but `data` is {a.shape[0]}x{a.shape[1]}; "
            "upsample layer attributions to the input first (grad_cam's .attr is)"
        )
    if kind == "blend" and img is None:
        raise NetvizValueError("kind='blend' draws the attribution over `image`; pass the image")
    top = _scale(a, vmax, percentile)
    signed = kind == "signed" or (kind == "blend" and bool((a < 0).any()))
    cmap = cmap or (CMAP_DIVERGING if signed else "inferno" if kind == "abs" else "Reds")
    norm = Normalize(-top, top) if signed else Normalize(0, top)
    with style():
        ax = get_ax(ax, figsize=(3.2, 3.0))
        if kind == "blend" and img is not None:
            lo, hi = float(np.nanmin(img)), float(np.nanmax(img))
            grey: np.ndarray = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
            if grey.ndim == 3:
                grey = grey.mean(axis=-1)
            ax.imshow(grey, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
            # opacity grows with |attr|: where the map is 0 the image shows unchanged
            weight = alpha * np.clip(np.abs(np.nan_to_num(a)) / top, 0, 1)
            ax.imshow(a, cmap=cmap, norm=norm, alpha=weight, interpolation="nearest")
        else:
            ax.imshow(
                np.abs(a) if kind == "abs" else a, cmap=cmap, norm=norm, interpolation="nearest"
            )
        bare(ax)
        if title is not None:
            ax.set_title(title)
        if colorbar:
            label = "attribution (+ towards target)" if signed else "|attribution|"
            if kind == "blend" and not signed:
                label = "attribution"
            # a plain mappable: the colour bar shows full colours, not the blend's opacity
            ax.figure.colorbar(ScalarMappable(norm, cmap), ax=ax, shrink=0.85, label=label)
    return ax


def token_attribution(
    data: AttrLike,
    ax: Target = None,
    *,
    tokens: Sequence[object],
    ncols: int | None = None,
    vmax: float | None = None,
    cmap: str | None = None,
    colorbar: bool = True,
    fontsize: float = 12,
    title: str | None = None,
) -> Axes:
    """Tokens as coloured cells: red pushes towards the target, blue away.

    Parameters
    ----------
    data
        One score per token ``(L,)``, or a layer attribution ``(L, E)`` /
        ``(1, L, E)`` summed over the last dimension (e.g. the result of
        ``method="layer_integrated_gradients"`` on an embedding).
    ax
        Axes to draw on; a new figure if ``None``.
    tokens
        One label per position (strings, or anything ``str()`` names); required.
    ncols
        Tokens per row (default: all in one row up to 16, else 16).
    vmax
        Colour scale end (default: the largest ``|score|``).
    cmap, colorbar, fontsize, title
        As usual.

    Returns
    -------
    matplotlib.axes.Axes
        Token texts are ``ax.texts`` in order; the cell colours are ``ax.images[0]``.
    """
    a = _values(data)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 2:
        a = a.sum(axis=-1)
    if a.ndim != 1:
        raise NetvizValueError(
            f"`data` has shape {a.shape}; expected one score per token (L,), or (L, E) / (1, L, E)"
        )
    labels = [str(t) for t in tokens]
    if len(labels) != len(a):
        raise NetvizValueError(f"{len(labels)} tokens but {len(a)} attribution scores")
    if not labels:
        raise NetvizValueError("`tokens` is empty")
    n = len(labels)
    ncols = ncols or min(n, 16)
    if ncols < 1:
        raise NetvizValueError(f"`ncols` must be >= 1, got {ncols}")
    rows = math.ceil(n / ncols)
    grid = np.full((rows, ncols), np.nan)
    grid.flat[:n] = a
    top = _scale(a, vmax, 100.0)
    with style():
        ax = get_ax(ax, figsize=(max(3.0, 0.6 * ncols), 0.6 * rows + 0.9))
        shown = ax.imshow(grid, cmap=cmap or CMAP_DIVERGING, vmin=-top, vmax=top, aspect="auto")
        for i, (label, score) in enumerate(zip(labels, a)):
            r, c = divmod(i, ncols)
            strong = abs(score) / top > 0.6
            ax.text(
                c,
                r,
                label,
                ha="center",
                va="center",
                fontsize=fontsize,
                color="white" if strong else "black",
            )
        bare(ax)
        if title is not None:
            ax.set_title(title)
        if colorbar:
            ax.figure.colorbar(
                shown, ax=ax, shrink=0.9, label="attribution", orientation="vertical"
            )
    return ax
