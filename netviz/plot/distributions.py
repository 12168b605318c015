"""Distributions over training, from the histogram table (``Monitor.histograms()``).

- :func:`distributions_over_steps`: percentile bands of one layer's values
  against the step (TensorBoard's "Distributions"), or small multiples of
  every layer;
- :func:`histograms_over_steps`: a step x bin heatmap of one layer, log
  colour scale (TensorBoard's "Histograms", without the overlap);
- :func:`layer_histograms`: every layer's histogram at one step, one ridge per
  layer in network order (by the ``order`` column), input at the top.

Input: a histogram table, a :class:`netviz.Monitor`, or the path of a saved
run (its histogram file is found next to it). Several calls (and forward
passes) of a module in one step are added into one histogram. Values beyond
the grid (the overflow bins, |x| >= 2**27 on the default grid, or outside a
linear grid's range) and NaN/Inf counts are never folded into the edge bins:
they are drawn as explicit marks with their counts (text artists with gid
``"out_of_range"`` / ``"nonfinite"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from netviz.errors import NetvizValueError
from netviz.plot._axes import PlotGrid, get_ax
from netviz.plot._histograms import (
    TB_PERCENTILES,
    auto_scale,
    beyond_counts,
    draw_ridge,
    hist_table,
    histogram_percentiles,
    mark,
    network_order,
    per_step,
    rebin,
    select_module,
)
from netviz.plot.theme import PALETTE, style
from netviz.records.selection import select_names

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

    from netviz.plot._types import HistogramData

__all__ = [
    "TB_PERCENTILES",
    "distributions_over_steps",
    "histogram_percentiles",
    "histograms_over_steps",
    "layer_histograms",
]


# ---------------------------------------------------- distributions over steps
def _bands(
    ax: Axes, steps: np.ndarray, edges: np.ndarray, counts: np.ndarray, color: str, yscale: str
) -> None:
    nb = len(edges) - 1
    vals, _ = histogram_percentiles(edges, counts[:, :nb])
    k = len(TB_PERCENTILES)
    for j in range(k // 2):
        alpha = 0.15 + 0.2 * j
        ax.fill_between(steps, vals[:, j], vals[:, k - 1 - j], color=color, alpha=alpha, lw=0)
    ax.plot(steps, vals[:, k // 2], color=color, lw=1.2)
    if yscale == "auto":
        scale, thresh = auto_scale(vals)
    else:
        scale, thresh = yscale, None
    if scale == "symlog":
        ax.set_yscale("symlog", linthresh=thresh or 1e-6)
    elif scale != "linear":
        ax.set_yscale(scale)
    below, above = beyond_counts(edges, counts[:, :nb])
    special = counts[:, nb:]
    # explicit marks: values beyond the grid and non-finite values, with counts
    for label, n_by_step, y, gid in (
        (f"≥ {edges[-2]:.3g}", above, 1.0, "out_of_range"),
        (f"< {edges[1]:.3g}", below, 0.0, "out_of_range"),
        ("NaN/Inf", special.sum(1), 1.0, "nonfinite"),
    ):
        hit = np.flatnonzero(n_by_step > 0)
        if hit.size:
            s = hit[0]
            ax.plot(
                steps[hit],
                np.full(hit.size, y),
                "v" if y else "^",
                color=PALETTE[3],
                ms=5,
                transform=ax.get_xaxis_transform(),
                clip_on=False,
            )
            mark(
                ax,
                f"{label}: {int(n_by_step[hit].max())} max/step",
                (steps[s], y),
                gid,
                xycoords=ax.get_xaxis_transform(),
                xytext=(3, -10 if y else 3),
                textcoords="offset points",
            )


def distributions_over_steps(
    data: HistogramData,
    ax: Axes | Figure | SubFigure | Sequence[Axes] | np.ndarray | None = None,
    *,
    modules: str | Sequence[str] | None = None,
    probe: str | None = None,
    phase: str | None = None,
    yscale: str = "auto",
    ncols: int = 4,
) -> Axes | PlotGrid:
    """Percentile bands of a layer's values against the step (TensorBoard's Distributions).

    Bands join the percentiles :data:`TB_PERCENTILES` (min..max, +-1.5, +-1
    and +-0.5 sigma of a normal), darker towards the median (line), computed
    from the histograms (values spread evenly within a bin). Values beyond
    the grid and NaN/Inf are marked at the top/bottom edge of the axes with
    their largest count per step.

    Parameters
    ----------
    data
        Histogram table, Monitor, or path of a saved run.
    ax
        One Axes: draw the one selected layer on it (``modules`` must select
        exactly one). ``None`` (a new figure), a Figure, or a sequence / array
        of at least as many Axes as layers: small multiples.
    modules
        Layers to draw: a glob or list of globs over the module names, as for
        :func:`netviz.watch` (default: all); in network order.
    probe
        ``activation_hist`` (default when recorded), ``grad_hist`` or ``weight_hist``.
    phase
        ``"train"`` (default when recorded) or ``"eval"``.
    yscale
        ``"auto"`` (symlog when the values span more than three decades),
        ``"linear"``, ``"symlog"`` or ``"log"``.
    ncols
        Columns of the small multiples.

    Returns
    -------
    matplotlib.axes.Axes
        When ``ax`` is one Axes.
    PlotGrid
        Otherwise: ``.axes`` holds one Axes per layer (a new figure: a
        ``(rows, ncols)`` grid, unused cells hidden; given Axes: their shape).
    """
    from matplotlib.axes import Axes
    from matplotlib.figure import FigureBase

    df, probe = hist_table(data, probe, phase)
    keys, edges, counts = per_step(df)
    names = select_names(network_order(keys), modules, what=f"the {probe} histograms")
    single = isinstance(ax, Axes)
    axes: list[Axes]
    if single and len(names) != 1:
        raise NetvizValueError(
            f"`ax` is one Axes but `modules` selects {len(names)} layers {names[:6]}; "
            "select one layer, or pass ax=None (a grid of small multiples)"
        )
    masks = [select_module(keys, m) for m in names]
    with style():
        if isinstance(ax, Axes):
            axes = [ax]
            shape: tuple[int, ...] = (1, 1)
        elif ax is not None and not isinstance(ax, FigureBase):
            given = np.asarray(ax, dtype=object)
            axes = list(given.ravel())
            shape = given.shape if given.ndim == 2 else (1, len(axes))
            if len(axes) < len(names):
                raise NetvizValueError(f"`ax` holds {len(axes)} Axes for {len(names)} layers")
        else:
            import matplotlib.pyplot as plt

            nc = max(1, min(ncols, len(names)))
            nr = -(-len(names) // nc)
            fig, grid = plt.subplots(
                nr,
                nc,
                figsize=(3.2 * nc, 2.4 * nr + 0.6),
                squeeze=False,
                sharex=True,
                layout="constrained",
            )
            axes = list(grid.ravel())
            shape = grid.shape
            for extra in axes[len(names) :]:
                extra.set_visible(False)
            fig.supxlabel("step")
            fig.supylabel(probe.replace("_hist", " value"))
        for i, (name, mask) in enumerate(zip(names, masks)):
            a = axes[i]
            steps = keys.step.to_numpy()[mask]
            _bands(
                a,
                steps,
                edges,
                counts[mask],
                PALETTE[0] if single else PALETTE[i % len(PALETTE)],
                yscale,
            )
            a.set_title(name, fontsize=10)
            if single:
                a.set_xlabel("step")
                a.set_ylabel(f"{probe} · percentiles")
    if single:
        return axes[0]
    cells = np.empty(len(axes), dtype=object)
    cells[:] = axes
    return PlotGrid(axes[0].figure, cells.reshape(shape))


# ----------------------------------------------------- histograms over steps
def _bin_labels(edges: np.ndarray, rows: np.ndarray) -> list[str]:
    out = []
    for i in rows:
        a, b = edges[i], edges[i + 1]
        if np.isinf(a):
            out.append(f"< {b:.3g}")
        elif np.isinf(b):
            out.append(f"≥ {a:.3g}")
        elif a == 0 and b < 1e-300:
            out.append("0")
        else:
            out.append(f"{a:.3g}")
    return out


def histograms_over_steps(
    data: HistogramData,
    ax: Axes | Figure | SubFigure | None = None,
    *,
    modules: str | Sequence[str] | None = None,
    probe: str | None = None,
    phase: str | None = None,
    colorbar: bool = True,
) -> Axes:
    """Step x bin heatmap of one layer's histograms, log colour scale.

    One column per recorded step, one row per bin (the range of bins that
    ever hold a value, bins equally tall: on the default grid the y axis is
    signed log-magnitude), empty cells blank. Bins beyond the grid get their
    own labelled rows (``< -1.34e+08``, ``≥ 1.34e+08``); NaN, +Inf and -Inf get
    rows above a separating line, only when they occur.

    Parameters
    ----------
    data
        Histogram table, Monitor, or path of a saved run.
    ax
        Axes to draw on; a new figure if ``None``.
    modules
        The layer: a name or glob as for :func:`netviz.watch`; one layer is
        drawn, the first selected in network order (default: the first layer).
    probe, phase
        As in :func:`distributions_over_steps`.
    colorbar
        Draw a colour bar of the counts.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    df, probe = hist_table(data, probe, phase)
    keys, edges, counts = per_step(df)
    module = select_names(network_order(keys), modules, what=f"the {probe} histograms")[0]
    mask = select_module(keys, module)
    steps = keys.step.to_numpy()[mask]
    c = counts[mask]
    nb = len(edges) - 1
    used = np.flatnonzero(c[:, :nb].sum(0) > 0)
    rows = np.arange(used[0], used[-1] + 1) if used.size else np.arange(0)
    special = [j for j in range(3) if c[:, nb + j].sum() > 0]
    grid = np.concatenate([c[:, rows], c[:, [nb + j for j in special]]], axis=1).T.astype(float)
    grid[grid == 0] = np.nan
    labels = _bin_labels(edges, rows) + [("NaN", "+Inf", "-Inf")[j] for j in special]
    if len(steps) > 1:
        mid = (steps[1:] + steps[:-1]) / 2
        xe = np.concatenate([[2 * steps[0] - mid[0]], mid, [2 * steps[-1] - mid[-1]]])
    else:
        xe = np.array([steps[0] - 0.5, steps[0] + 0.5])
    with style():
        new = ax is None
        ax = get_ax(ax, figsize=(7.0, 4.5))
        if new and isinstance(ax.figure, Figure):
            ax.figure.set_layout_engine("constrained")  # room for the long bin labels
        finite = grid[np.isfinite(grid)]
        norm = (
            LogNorm(vmin=max(finite.min(), 1), vmax=max(finite.max(), 1)) if finite.size else None
        )
        mesh = ax.pcolormesh(xe, np.arange(len(labels) + 1), grid, norm=norm, cmap="viridis")
        if special:
            ax.axhline(len(rows), color="black", lw=0.8)
        step_ticks = max(1, len(labels) // 12)
        ticks = list(range(0, len(rows), step_ticks)) + list(range(len(rows), len(labels)))
        ax.set_yticks(np.asarray(ticks) + 0.5, [labels[t] for t in ticks])
        ax.set_xlabel("step")
        ax.set_ylabel(f"{probe} bin (lower edge)")
        ax.set_title(module, fontsize=10)
        if colorbar and norm is not None:
            ax.figure.colorbar(mesh, ax=ax, label="count")
    return ax


# ------------------------------------------------------ per layer, one step
def layer_histograms(
    data: HistogramData,
    ax: Axes | Figure | SubFigure | None = None,
    *,
    step: int | None = None,
    probe: str | None = None,
    phase: str | None = None,
    modules: str | Sequence[str] | None = None,
    bins: int = 80,
    range: tuple[float, float] | None = None,
) -> Axes:
    """Every layer's histogram at one step, one ridge per layer, input side at the top.

    The cs231n initialisation figure from recorded histograms: layers in
    network order (the ``order`` column), each ridge scaled to its own
    largest bin. The recorded bins are re-binned onto ``bins`` equal bins of
    ``range`` (a recorded bin's count is spread evenly over it). Values left
    or right of the range, beyond the grid, and NaN/Inf are written at the
    ends of their ridge as counts (``◀ 3``, ``12 ▶``, ``NaN/Inf 5``), never
    added to the edge bins.

    Parameters
    ----------
    data
        Histogram table, Monitor, or path of a saved run.
    ax
        Axes to draw on; a new figure if ``None``.
    step
        The recorded step (default: the last).
    probe, phase
        As in :func:`distributions_over_steps`.
    modules
        Layers to draw: a glob or list of globs, as for :func:`netviz.watch`
        (default: all); in network order.
    bins, range
        Drawn bins and their range (default: the 0.5 to 99.5 percentiles of
        all drawn layers together).

    Returns
    -------
    matplotlib.axes.Axes
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise NetvizValueError(f"`bins` must be a positive int, got {bins!r}")
    df, probe = hist_table(data, probe, phase)
    keys, edges, counts = per_step(df)
    have = sorted(set(keys.step))
    step = have[-1] if step is None else step
    if step not in have:
        raise NetvizValueError(f"no {probe} histograms at step {step}; recorded steps: {have}")
    at = (keys.step == step).to_numpy()
    keys, counts = keys[at].reset_index(drop=True), counts[at]
    names = select_names(network_order(keys), modules, what=f"the {probe} histograms")
    per_layer = np.stack([counts[select_module(keys, m)].sum(0) for m in names])
    nb = len(edges) - 1
    if range is None:
        pooled = per_layer[:, :nb].sum(0)
        (lo_hi,), _ = histogram_percentiles(edges, pooled, (0.5, 99.5))
        # snapped outwards to recorded edges: what lies outside is whole bins
        fin = edges[np.isfinite(edges)]
        lo = fin[max(np.searchsorted(fin, lo_hi[0], side="right") - 1, 0)] if fin.size else 0.0
        hi = (
            fin[min(np.searchsorted(fin, lo_hi[1], side="left"), fin.size - 1)] if fin.size else 1.0
        )
        range = (float(lo), float(hi) if hi > lo else float(lo) + 1.0)
    display = np.linspace(range[0], range[1], bins + 1)
    below_grid, above_grid = beyond_counts(edges, per_layer[:, :nb])
    from matplotlib.figure import Figure

    with style():
        new = ax is None
        ax = get_ax(ax, figsize=(7.0, 0.55 * len(names) + 1.5))
        if new and isinstance(ax.figure, Figure):
            ax.figure.set_layout_engine("constrained")
        for i, c in enumerate(per_layer):
            shown, left, right = rebin(edges, c[:nb], display)
            draw_ridge(
                ax,
                len(names) - 1 - i,
                display,
                shown,
                PALETTE[i % len(PALETTE)],
                below=left + below_grid[i],
                above=right + above_grid[i],
                nonfinite=c[nb:].sum(),
            )
        ax.set_yticks(np.arange(len(names))[::-1], names)
        ax.set_xlim(display[0], display[-1])
        ax.set_xlabel(f"{probe.replace('_hist', '')} value (step {step})")
    return ax
