"""Image-level checks of a gallery figure through matplotlib's own artist extents.

:func:`layout_problems` lays a figure out (``draw_without_rendering``) and
reports, in words, text that sticks out of the figure, text boxes that
overlap one another, and axes whose tick labels have no axis label (colour
bars included). It inspects ``get_window_extent`` of the artists, so it sees
exactly what the saved image shows, without comparing pixels.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["layout_problems", "text_extents"]


def _subfigures(fig: Any) -> Iterator[Any]:
    yield fig
    for sub in getattr(fig, "subfigs", []):
        yield from _subfigures(sub)


def _visible(text: Any) -> bool:
    return bool(text.get_visible() and text.get_text().strip())


def _figure_texts(fig: Any) -> Iterator[tuple[str, Any]]:
    for f in _subfigures(fig):
        for attr in ("_suptitle", "_supxlabel", "_supylabel"):
            t = getattr(f, attr, None)
            if t is not None:
                yield f"figure {attr[1:]}", t
        for t in f.texts:
            yield "figure text", t
        for leg in f.legends:
            for t in leg.get_texts():
                yield "figure legend", t


def _axes_texts(ax: Any, k: int) -> Iterator[tuple[str, Any]]:
    name = f"axes {k}"
    for t in (ax.title, ax._left_title, ax._right_title):
        yield f"{name} title", t
    yield f"{name} xlabel", ax.xaxis.label
    yield f"{name} ylabel", ax.yaxis.label
    if hasattr(ax, "zaxis"):  # 3-D axes
        yield f"{name} zlabel", ax.zaxis.label
    for t in ax.texts:
        yield f"{name} text", t
    leg = ax.get_legend()
    if leg is not None and leg.get_visible():
        for t in leg.get_texts():
            yield f"{name} legend", t
        if leg.get_title() is not None:
            yield f"{name} legend title", leg.get_title()
    for axis, which in ((ax.xaxis, "x"), (ax.yaxis, "y")):
        for t in _tick_labels(axis):
            yield f"{name} {which}tick", t


def _tick_labels(axis: Any) -> list[Any]:
    """The tick labels matplotlib draws: ticks inside the view interval only."""
    lo, hi = sorted(axis.get_view_interval())
    span = (hi - lo) or 1.0
    out = []
    for tick in axis.get_major_ticks() + axis.get_minor_ticks():
        loc = tick.get_loc()
        if loc is None or not (lo - 1e-9 * span <= loc <= hi + 1e-9 * span):
            continue
        for t in (tick.label1, tick.label2):
            if _visible(t):
                out.append(t)
    return out


def _extent(text: Any, renderer: Any) -> Any:
    from matplotlib.transforms import Bbox

    box = text.get_window_extent(renderer)
    patch = text.get_bbox_patch()
    if patch is not None and patch.get_visible():
        box = Bbox.union([box, patch.get_window_extent(renderer)])
    return box


def text_extents(fig: Any) -> list[tuple[str, str, Any]]:
    """``(where, text, window extent)`` of every visible, non-empty text of ``fig``."""
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    items: list[tuple[str, Any]] = list(_figure_texts(fig))
    for k, ax in enumerate(fig.get_axes()):
        if ax.get_visible():
            items.extend(_axes_texts(ax, k))
    seen: set[int] = set()
    out = []
    for w, t in items:
        if _visible(t) and id(t) not in seen:  # a suptitle is also in fig.texts
            seen.add(id(t))
            out.append((w, t.get_text(), _extent(t, renderer)))
    return out


def _overlap(a: Any, b: Any, slack: float) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > slack and min(a.y1, b.y1) - max(a.y0, b.y0) > slack


def _unlabelled(fig: Any, skip: Iterable[int]) -> list[str]:
    skip = set(skip)
    problems = []
    for k, ax in enumerate(fig.get_axes()):
        if k in skip or not ax.get_visible() or not ax.axison:
            continue
        colorbar = getattr(ax, "_colorbar", None)
        for axis, which in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            if not _tick_labels(axis) or axis.label.get_text().strip():
                continue
            group = ax.get_shared_x_axes() if which == "x" else ax.get_shared_y_axes()
            siblings = [o for o in group.get_siblings(ax) if o is not ax]
            if any(getattr(o, f"{which}axis").label.get_text().strip() for o in siblings):
                continue  # a shared axis labelled once (on the outer panel)
            what = "colour bar" if colorbar is not None else f"{which} axis"
            problems.append(f"axes {k} ({ax.get_title() or 'untitled'!r}): {what} has no label")
    return problems


def layout_problems(
    fig: Any, *, slack: float = 1.0, unlabelled_ok: Iterable[int] = ()
) -> list[str]:
    """Text outside ``fig``, overlapping text boxes, axes without a label; ``[]`` if none.

    ``slack`` (pixels) tolerates touching extents. ``unlabelled_ok``: indices
    (in ``fig.get_axes()``) of axes whose tick labels speak for themselves
    (e.g. token names on an attention map).
    """
    items = text_extents(fig)
    problems = []
    box = fig.bbox
    for where, text, ext in items:
        if (
            ext.x0 < box.x0 - slack
            or ext.y0 < box.y0 - slack
            or ext.x1 > box.x1 + slack
            or ext.y1 > box.y1 + slack
        ):
            problems.append(f"{where} {text!r} sticks out of the figure")
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            (wi, ti, ei), (wj, tj, ej) = items[i], items[j]
            if _overlap(ei, ej, slack):
                problems.append(f"{wi} {ti!r} overlaps {wj} {tj!r}")
    return problems + _unlabelled(fig, unlabelled_ok)
