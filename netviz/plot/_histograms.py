"""Shared parts of the histogram plots: inputs, percentiles from bins, ridges, marks.

Used by :mod:`netviz.plot.distributions` and
:func:`netviz.plot.gradients.activation_distributions`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from netviz.errors import NetvizTypeError, NetvizValueError
from netviz.plot.theme import PALETTE
from netviz.records.histograms import dense_counts, load_histograms, validate_histograms

__all__ = ["TB_PERCENTILES", "draw_ridge", "histogram_percentiles"]

#: TensorBoard's percentiles: min, +-1.5, +-1, +-0.5 sigma of a normal, median, max.
TB_PERCENTILES: tuple[float, ...] = (0.0, 6.68, 15.87, 30.85, 50.0, 69.15, 84.13, 93.32, 100.0)
_PROBES = ("activation_hist", "grad_hist", "weight_hist")


# ------------------------------------------------------------------ inputs
def hist_table(data: Any, probe: str | None, phase: str | None) -> tuple[pd.DataFrame, str]:
    if isinstance(data, (str, os.PathLike)):
        df = load_histograms(data)
    elif isinstance(data, pd.DataFrame):
        df = validate_histograms(data, source="`data`")
    elif callable(getattr(data, "histograms", None)):
        df = data.histograms()
    else:
        raise NetvizTypeError(
            "`data` must be a histogram table (Monitor.histograms()), a Monitor or the path "
            f"of a saved run, got {type(data).__name__}"
        )
    if df.empty:
        raise NetvizValueError(
            "no histograms to draw: record them with "
            "netviz.watch(model, probes=['activation_hist', 'grad_hist'])"
        )
    have = list(pd.unique(df.probe))
    if probe is None:
        probe = next((p for p in _PROBES if p in have), have[0])
    elif probe not in have:
        raise NetvizValueError(f"no histograms of probe {probe!r}; recorded: {have}")
    df = df[df.probe == probe]
    if phase is None and "train" in set(df.phase):
        phase = "train"
    if phase is not None:
        if phase not in set(df.phase):
            raise NetvizValueError(
                f"no {probe} histograms in phase {phase!r}; have {sorted(set(df.phase))}"
            )
        df = df[df.phase == phase]
    return df, probe


def per_step(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Histograms summed over calls and forward passes: ``(keys[step, module, order], edges, counts)``."""
    keys, edges, counts = dense_counts(df)
    keys = keys.assign(_row=np.arange(len(keys)))
    groups = keys.groupby(["step", "module"], sort=True)
    rows = [g._row.to_numpy() for _, g in groups]
    summed = np.stack([counts[r].sum(0) for r in rows]) if rows else counts[:0]
    out = groups.agg(order=("order", "min")).reset_index()
    return out, edges, summed


def network_order(keys: pd.DataFrame) -> list[str]:
    first = keys.groupby("module").order.min()
    return list(first.sort_values(kind="stable").index)


def select_module(keys: pd.DataFrame, module: str) -> np.ndarray:
    if module not in set(keys.module):
        raise NetvizValueError(
            f"no histograms of module {module!r}; modules: {network_order(keys)}"
        )
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


def beyond_counts(edges: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts in the bins reaching to -inf and to +inf (beyond the grid)."""
    nb = len(edges) - 1
    below = counts[:, 0] if np.isinf(edges[0]) and nb else np.zeros(len(counts))
    above = counts[:, nb - 1] if np.isinf(edges[-1]) and nb else np.zeros(len(counts))
    return below, above


def auto_scale(vals: np.ndarray) -> tuple[str, float | None]:
    """symlog when the spread of the values (6.68..93.32 percentiles) changes over
    the steps by more than a factor 100 (a layer collapsing or blowing up), else linear."""
    k = vals.shape[1]
    spread = np.nanmax(np.abs(vals[:, [1, k - 2]]), axis=1) if k > 2 else np.abs(vals[:, 0])
    spread = spread[np.isfinite(spread) & (spread > 0)]
    if spread.size and spread.max() / spread.min() > 100:
        return "symlog", float(spread.min() / 10)
    return "linear", None


def mark(ax: Any, text: str, xy: tuple[float, float], gid: str, **kw: Any) -> None:
    t = ax.annotate(text, xy, fontsize=8, color=PALETTE[3], annotation_clip=False, **kw)
    t.set_gid(gid)


# ------------------------------------------------------------------ ridges
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
        mark(
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
        mark(
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
        mark(
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


def rebin(
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
