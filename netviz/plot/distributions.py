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

import os
from typing import Any

import numpy as np
import pandas as pd

from netviz.plot._style import PALETTE, get_ax, style
from netviz.records.histograms import dense_counts, load_histograms, validate_histograms

__all__ = [
    "TB_PERCENTILES",
    "distributions_over_steps",
    "histogram_percentiles",
    "histograms_over_steps",
    "layer_histograms",
]

#: TensorBoard's percentiles: min, +-1.5, +-1, +-0.5 sigma of a normal, median, max.
TB_PERCENTILES: tuple[float, ...] = (0.0, 6.68, 15.87, 30.85, 50.0, 69.15, 84.13, 93.32, 100.0)
_PROBES = ("activation_hist", "grad_hist", "weight_hist")


# ------------------------------------------------------------------ inputs
def _table(data: Any, probe: str | None, phase: str | None) -> tuple[pd.DataFrame, str]:
    if isinstance(data, (str, os.PathLike)):
        df = load_histograms(data)
    elif isinstance(data, pd.DataFrame):
        df = validate_histograms(data, source="`data`")
    elif callable(getattr(data, "histograms", None)):
        df = data.histograms()
    else:
        raise TypeError(
            "`data` must be a histogram table (Monitor.histograms()), a Monitor or the path "
            f"of a saved run, got {type(data).__name__}"
        )
    if df.empty:
        raise ValueError(
            "no histograms to draw: record them with "
            "netviz.watch(model, probes=['activation_hist', 'grad_hist'])"
        )
    have = list(pd.unique(df.probe))
    if probe is None:
        probe = next((p for p in _PROBES if p in have), have[0])
    elif probe not in have:
        raise ValueError(f"no histograms of probe {probe!r}; recorded: {have}")
    df = df[df.probe == probe]
    if phase is None and "train" in set(df.phase):
        phase = "train"
    if phase is not None:
        if phase not in set(df.phase):
            raise ValueError(
                f"no {probe} histograms in phase {phase!r}; have {sorted(set(df.phase))}"
            )
        df = df[df.phase == phase]
    return df, probe


def _per_step(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Histograms summed over calls and forward passes: ``(keys[step, module, order], edges, counts)``."""
    keys, edges, counts = dense_counts(df)
    keys = keys.assign(_row=np.arange(len(keys)))
    groups = keys.groupby(["step", "module"], sort=True)
    rows = [g._row.to_numpy() for _, g in groups]
    summed = np.stack([counts[r].sum(0) for r in rows]) if rows else counts[:0]
    out = groups.agg(order=("order", "min")).reset_index()
    return out, edges, summed


def _network_order(keys: pd.DataFrame) -> list[str]:
    first = keys.groupby("module").order.min()
    return list(first.sort_values(kind="stable").index)


def _select(keys: pd.DataFrame, module: str) -> np.ndarray:
    if module not in set(keys.module):
        raise ValueError(f"no histograms of module {module!r}; modules: {_network_order(keys)}")
    return (keys.module == module).to_numpy()


# ------------------------------------------------------------- percentiles
def histogram_percentiles(
    edges: np.ndarray, counts: np.ndarray, q: Any = TB_PERCENTILES
) -> tuple[np.ndarray, np.ndarray]:
    """Percentiles of the finite values from binned counts; ``(values, beyond)``.

    ``counts`` ``(n, len(edges) - 1)`` are bin counts on ``edges``; within a
    bin values are taken as spread evenly. A percentile that falls in a bin
    with an infinite edge (beyond the grid) is reported at the bin's finite
    edge and flagged in ``beyond`` (bool, same shape as ``values``). Rows
    without finite values give NaN.
    """
    counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    q = np.asarray(q, dtype=np.float64)
    lo, hi = edges[:-1], edges[1:]
    values = np.full((counts.shape[0], len(q)), np.nan)
    beyond = np.zeros(values.shape, dtype=bool)
    for r, c in enumerate(counts):
        total = c.sum()
        if total <= 0:
            continue
        cum = np.cumsum(c)
        first = int(np.flatnonzero(c)[0])
        for j, p in enumerate(q / 100.0 * total):
            i = first if p <= 0 else min(int(np.searchsorted(cum, p, side="left")), len(c) - 1)
            frac = 0.0 if p <= 0 else (p - (cum[i] - c[i])) / c[i]
            a, b = lo[i], hi[i]
            if np.isinf(a) or np.isinf(b):
                values[r, j] = b if np.isinf(a) else a
                beyond[r, j] = True
            else:
                values[r, j] = a + frac * (b - a)
    return values, beyond


def _beyond_counts(edges: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts in the bins reaching to -inf and to +inf (beyond the grid)."""
    nb = len(edges) - 1
    below = counts[:, 0] if np.isinf(edges[0]) and nb else np.zeros(len(counts))
    above = counts[:, nb - 1] if np.isinf(edges[-1]) and nb else np.zeros(len(counts))
    return below, above


def _auto_scale(vals: np.ndarray) -> tuple[str, float | None]:
    """symlog when the spread of the values (6.68..93.32 percentiles) changes over
    the steps by more than a factor 100 (a layer collapsing or blowing up), else linear."""
    k = vals.shape[1]
    spread = np.nanmax(np.abs(vals[:, [1, k - 2]]), axis=1) if k > 2 else np.abs(vals[:, 0])
    spread = spread[np.isfinite(spread) & (spread > 0)]
    if spread.size and spread.max() / spread.min() > 100:
        return "symlog", float(spread.min() / 10)
    return "linear", None


def _mark(ax: Any, text: str, xy: tuple[float, float], gid: str, **kw: Any) -> None:
    t = ax.annotate(text, xy, fontsize=8, color=PALETTE[3], annotation_clip=False, **kw)
    t.set_gid(gid)


# ---------------------------------------------------- distributions over steps
def _bands(
    ax: Any, steps: np.ndarray, edges: np.ndarray, counts: np.ndarray, color: str, yscale: str
) -> None:
    nb = len(edges) - 1
    vals, _ = histogram_percentiles(edges, counts[:, :nb])
    k = len(TB_PERCENTILES)
    for j in range(k // 2):
        alpha = 0.15 + 0.2 * j
        ax.fill_between(steps, vals[:, j], vals[:, k - 1 - j], color=color, alpha=alpha, lw=0)
    ax.plot(steps, vals[:, k // 2], color=color, lw=1.2)
    if yscale == "auto":
        scale, thresh = _auto_scale(vals)
    else:
        scale, thresh = yscale, None
    if scale == "symlog":
        ax.set_yscale("symlog", linthresh=thresh or 1e-6)
    elif scale != "linear":
        ax.set_yscale(scale)
    below, above = _beyond_counts(edges, counts[:, :nb])
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
            _mark(
                ax,
                f"{label}: {int(n_by_step[hit].max())} max/step",
                (steps[s], y),
                gid,
                xycoords=ax.get_xaxis_transform(),
                xytext=(3, -10 if y else 3),
                textcoords="offset points",
            )


def distributions_over_steps(
    data: Any,
    ax: Any = None,
    *,
    module: str | None = None,
    modules: list[str] | None = None,
    probe: str | None = None,
    phase: str | None = None,
    yscale: str = "auto",
    ncols: int = 4,
) -> Any:
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
        With ``module``: the Axes to draw on. Without: ``None`` (a new figure)
        or a sequence of at least as many Axes as layers.
    module
        Draw this layer only; else every layer (or ``modules``) as small
        multiples in network order.
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
    matplotlib.axes.Axes, or a numpy array of Axes (small multiples).
    """
    df, probe = _table(data, probe, phase)
    keys, edges, counts = _per_step(df)
    names = [module] if module is not None else (modules or _network_order(keys))
    masks = [_select(keys, m) for m in names]
    with style():
        if module is not None:
            axes = [get_ax(ax, figsize=(6.0, 3.5))]
        elif ax is not None:
            axes = list(np.ravel(ax))
            if len(axes) < len(names):
                raise ValueError(f"`ax` holds {len(axes)} Axes for {len(names)} layers")
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
                PALETTE[i % len(PALETTE)] if module is None else PALETTE[0],
                yscale,
            )
            a.set_title(name, fontsize=10)
            if module is not None:
                a.set_xlabel("step")
                a.set_ylabel(f"{probe} · percentiles")
    return axes[0] if module is not None else np.asarray(axes[: len(names)], dtype=object)


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
    data: Any,
    ax: Any = None,
    *,
    module: str | None = None,
    probe: str | None = None,
    phase: str | None = None,
    colorbar: bool = True,
) -> Any:
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
    module
        The layer (default: the first in network order).
    probe, phase
        As in :func:`distributions_over_steps`.
    colorbar
        Draw a colour bar of the counts.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from matplotlib.colors import LogNorm

    df, probe = _table(data, probe, phase)
    keys, edges, counts = _per_step(df)
    module = module if module is not None else _network_order(keys)[0]
    mask = _select(keys, module)
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
        ax = get_ax(ax, figsize=(7.0, 4.5))
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
def draw_ridge(
    ax: Any,
    base: float,
    edges: np.ndarray,
    counts: np.ndarray,
    color: str,
    below: float = 0,
    above: float = 0,
    nonfinite: float = 0,
) -> None:
    """One ridge: step-filled ``counts`` on ``edges`` (scaled to 0.9 of a row) at height ``base``.

    ``below``/``above``: values left and right of the drawn range, written at
    the ends (``◀ n``, ``n ▶``; gid ``"out_of_range"``); ``nonfinite``: NaN/Inf
    count (gid ``"nonfinite"``). None of them is drawn in a bin.
    """
    h = counts / counts.max() * 0.9 if counts.max() > 0 else counts.astype(float)
    ys = base + np.append(h, h[-1])
    ax.fill_between(edges, base, ys, step="post", alpha=0.6, color=color, lw=0)
    ax.step(edges, ys, where="post", color=color, lw=1)
    tr = ax.get_yaxis_transform()
    below, above, nonfinite = round(below), round(above), round(nonfinite)
    box = {"fc": "white", "ec": "none", "alpha": 0.75, "pad": 0.5}
    if below > 0:
        _mark(
            ax,
            f"◀ {int(below)}",
            (0.0, base + 0.55),
            "out_of_range",
            xycoords=tr,
            ha="left",
            xytext=(2, 0),
            textcoords="offset points",
            bbox=box,
        )
    if above > 0:
        _mark(
            ax,
            f"{int(above)} ▶",
            (1.0, base + 0.55),
            "out_of_range",
            xycoords=tr,
            ha="right",
            xytext=(-2, 0),
            textcoords="offset points",
            bbox=box,
        )
    if nonfinite > 0:
        _mark(
            ax,
            f"NaN/Inf {int(nonfinite)}",
            (1.0, base + 0.2),
            "nonfinite",
            xycoords=tr,
            ha="right",
            xytext=(-2, 0),
            textcoords="offset points",
            bbox=box,
        )


def _rebin(
    edges: np.ndarray, counts: np.ndarray, display: np.ndarray
) -> tuple[np.ndarray, float, float]:
    """Counts of the finite-edged bins spread evenly over their bins, re-binned onto ``display``.

    Returns ``(counts per display bin, count left of display[0], right of display[-1])``.
    """
    fin = np.isfinite(edges[:-1]) & np.isfinite(edges[1:])
    lo, hi, c = edges[:-1][fin], edges[1:][fin], counts[fin].astype(float)
    xp = np.concatenate([lo[:1], hi])
    cdf = np.concatenate([[0.0], np.cumsum(c)])
    at = np.interp(display, xp, cdf)
    return np.diff(at), float(at[0]), float(cdf[-1] - at[-1])


def layer_histograms(
    data: Any,
    ax: Any = None,
    *,
    step: int | None = None,
    probe: str | None = None,
    phase: str | None = None,
    modules: list[str] | None = None,
    bins: int = 80,
    range: tuple[float, float] | None = None,
) -> Any:
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
        Layers to draw (default: all, in network order).
    bins, range
        Drawn bins and their range (default: the 0.5 to 99.5 percentiles of
        all drawn layers together).

    Returns
    -------
    matplotlib.axes.Axes
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"`bins` must be a positive int, got {bins!r}")
    df, probe = _table(data, probe, phase)
    keys, edges, counts = _per_step(df)
    have = sorted(set(keys.step))
    step = have[-1] if step is None else step
    if step not in have:
        raise ValueError(f"no {probe} histograms at step {step}; recorded steps: {have}")
    at = (keys.step == step).to_numpy()
    keys, counts = keys[at].reset_index(drop=True), counts[at]
    names = modules or _network_order(keys)
    per_layer = np.stack([counts[_select(keys, m)].sum(0) for m in names])
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
    below_grid, above_grid = _beyond_counts(edges, per_layer[:, :nb])
    with style():
        ax = get_ax(ax, figsize=(7.0, 0.55 * len(names) + 1.5))
        for i, c in enumerate(per_layer):
            shown, left, right = _rebin(edges, c[:nb], display)
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
