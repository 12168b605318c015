"""The report's figures, as ``data:`` URIs (PNG, or SVG with ``fmt="svg"``).

Each function draws one matplotlib figure inside the netviz style, encodes
it without metadata and closes it. Attention heads and feature-map channels
are small arrays written straight to PNG (one pixel per value, enlarged by
the browser with ``image-rendering: pixelated``), which keeps a report of many
heads a few kilobytes.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from netviz.reporting.data import ACTIVATION_PANELS

__all__ = [
    "activation_figure",
    "activation_overview_figure",
    "array_png",
    "gradient_flow_figure",
    "histogram_figure",
    "update_ratio_figure",
]

#: Resolution of raster figures: readable on a laptop screen, small on disk.
DPI = 80
_MIME = {"png": "image/png", "svg": "image/svg+xml"}
_METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}
_TRAIN_EVAL = {"train": "#0173b2", "eval": "#de8f05"}


def _encode(fig: Any, fmt: str, tight: bool = True, colors: int = 256) -> str:
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    box = {"bbox_inches": "tight"} if tight else {}
    with mpl.rc_context({"svg.hashsalt": "netviz"}):
        fig.savefig(buf, format=fmt, dpi=DPI, metadata=_METADATA[fmt], **box)
    plt.close(fig)
    data = _quantize(buf.getvalue(), colors) if fmt == "png" else buf.getvalue()
    return f"data:{_MIME[fmt]};base64," + base64.b64encode(data).decode("ascii")


def _quantize(png: bytes, colors: int) -> bytes:
    """The PNG with a palette of ``colors`` (line plots need few; heat maps 256)."""
    from PIL import Image  # matplotlib depends on Pillow

    with Image.open(io.BytesIO(png)) as im:
        small = im.convert("RGB").quantize(
            colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
        out = io.BytesIO()
        small.save(out, format="png", optimize=True)
    return out.getvalue() if out.tell() < len(png) else png


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=(width, height), squeeze=False)


def _short(name: str, limit: int = 28) -> str:
    return name if len(name) <= limit else "…" + name[-(limit - 1) :]


def _layer_colours(n: int) -> list[Any]:
    import matplotlib as mpl

    cmap = mpl.colormaps["viridis"]
    return [cmap(0.9 * i / max(n - 1, 1)) for i in range(n)]


def gradient_flow_figure(rows: pd.DataFrame, order: Sequence[str], fmt: str = "png") -> str:
    """Left: each layer's gradient norm over the recorded steps (box, log scale) and at the
    last step (dot), input side left. Right: step x layer heat map of log10 of the norm."""
    from netviz.plot.theme import style

    order = [m for m in order if m in set(rows.module)]
    per = rows.groupby(["module", "step"]).value.mean().reset_index()
    steps = sorted(set(per.step))
    grid = per.pivot(index="module", columns="step", values="value").reindex(order)
    last = grid[steps[-1]].to_numpy(dtype=float)
    with style():
        fig, axes = _figure(max(8.0, 0.45 * len(order) + 6.0), 3.8, ncols=2)
        ax, hm = axes[0]
        data = []
        for m in order:
            v = grid.loc[m].to_numpy(dtype=float)
            data.append(v[np.isfinite(v) & (v > 0)])
        positions = np.arange(len(order))
        ax.boxplot(data, positions=positions, widths=0.6, showfliers=False)
        ok = np.isfinite(last) & (last > 0)
        ax.plot(positions[ok], last[ok], "o", color="#d55e00", label=f"step {steps[-1]}")
        ax.set_yscale("log")
        ax.set_xticks(positions, [_short(m, 16) for m in order], rotation=60, ha="right")
        ax.set_xlabel("layer (input → output)")
        ax.set_ylabel("gradient norm")
        ax.legend(loc="best", frameon=False)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.log10(
                np.where(grid.to_numpy(dtype=float) > 0, grid.to_numpy(dtype=float), np.nan)
            )
        im = hm.imshow(z, aspect="auto", interpolation="nearest", cmap="viridis")
        hm.set_yticks(positions, [_short(m, 16) for m in order])
        ticks = np.unique(np.linspace(0, len(steps) - 1, min(len(steps), 6)).round().astype(int))
        hm.set_xticks(ticks, [str(steps[i]) for i in ticks])
        hm.set_xlabel("step")
        hm.set_title("log10 gradient norm", fontsize=10)
        fig.colorbar(im, ax=hm, fraction=0.05)
    return _encode(fig, fmt)


def activation_figure(rows: pd.DataFrame, fmt: str = "png") -> str:
    """One layer's activation statistics against the step (:data:`ACTIVATION_PANELS`), one line
    per phase when the records have train and eval rows."""
    import matplotlib.ticker as mticker

    from netviz.plot.theme import style

    has_phase = "phase" in rows.columns
    with style():
        fig, axes = _figure(10.0, 2.3, ncols=len(ACTIVATION_PANELS))
        for ax, (stat, label) in zip(axes[0], ACTIVATION_PANELS):
            sub = rows[rows.stat == stat]
            groups = sub.groupby("phase") if has_phase else [("train", sub)]
            for phase, g in groups:
                s = g.groupby("step").value.mean().sort_index()
                colour = _TRAIN_EVAL.get(str(phase), "#029e73")
                marker = "o" if len(s) < 12 else None
                ax.plot(s.index, s.to_numpy(), color=colour, marker=marker, ms=3, label=str(phase))
            ax.set_title(label, fontsize=10)
            ax.set_xlabel("step")
            ax.yaxis.set_major_locator(mticker.MaxNLocator(4))
            ax.ticklabel_format(axis="y", useOffset=False, style="plain")
            if sub.empty:
                ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
        if has_phase and rows["phase"].nunique() > 1:
            axes[0][0].legend(frameon=False, fontsize=8)
        # Fixed margins: one figure per layer, and the tight layout would cost most of it.
        fig.subplots_adjust(left=0.08, right=0.99, bottom=0.2, top=0.87, wspace=0.55)
    return _encode(fig, fmt, tight=False, colors=48)


def activation_overview_figure(rows: pd.DataFrame, order: Sequence[str], fmt: str = "png") -> str:
    """Step x layer heat maps of the :data:`ACTIVATION_PANELS` statistics (train rows), layers
    in network order top to bottom: every layer at a glance, whatever their number."""
    from netviz.plot.theme import style

    order = [m for m in order if m in set(rows.module)]
    steps = sorted(set(rows.step))
    height = min(1.2 + 0.22 * len(order), 9.0)
    with style():
        fig, axes = _figure(12.0, height, ncols=len(ACTIVATION_PANELS))
        for i, (ax, (stat, label)) in enumerate(zip(axes[0], ACTIVATION_PANELS)):
            sub = rows[rows.stat == stat]
            grid = sub.groupby(["module", "step"]).value.mean().unstack("step")
            grid = grid.reindex(index=order, columns=steps)
            cmap = "RdBu_r" if stat == "mean" else "viridis"
            z = grid.to_numpy(dtype=float)
            kw: dict[str, Any] = {}
            if stat == "mean" and np.isfinite(z).any():
                lim = float(np.nanmax(np.abs(z))) or 1.0
                kw = {"vmin": -lim, "vmax": lim}
            elif stat.endswith("_frac"):
                kw = {"vmin": 0.0, "vmax": 1.0}
            im = ax.imshow(z, aspect="auto", interpolation="nearest", cmap=cmap, **kw)
            ax.set_title(label, fontsize=10)
            ax.set_xlabel("step")
            ticks = np.unique(
                np.linspace(0, len(steps) - 1, min(len(steps), 4)).round().astype(int)
            )
            ax.set_xticks(ticks, [str(steps[t]) for t in ticks])
            if i == 0 and len(order) <= 40:
                ax.set_yticks(range(len(order)), [_short(m, 22) for m in order], fontsize=7)
            else:
                ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.08, pad=0.03)
    return _encode(fig, fmt)


def update_ratio_figure(
    rows: pd.DataFrame, order: Sequence[str], band: tuple[float, float], fmt: str = "png"
) -> str:
    """``weight_stats.update_ratio`` against the step, one line per layer coloured by depth
    (dark: input side), with the diagnosis band and the usual 1e-3 marked."""
    from netviz.plot.theme import style

    order = [m for m in order if m in set(rows.module)]
    with style():
        fig, axes = _figure(8.0, 3.6)
        ax = axes[0][0]
        for m, colour in zip(order, _layer_colours(len(order))):
            s = rows[rows.module == m].groupby("step").value.mean().sort_index()
            s = s[np.isfinite(s) & (s > 0)]
            ax.plot(s.index, s.to_numpy(), color=colour, lw=1.4, label=_short(m, 20))
        ax.axhline(1e-3, color="#555", ls="--", lw=1)
        ax.axhspan(band[0], band[1], color="#029e73", alpha=0.06, lw=0)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("‖ΔW‖ / ‖W‖")
        if len(order) <= 12:
            ax.legend(frameon=False, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _encode(fig, fmt)


def histogram_figure(
    rows: pd.DataFrame, grid: Sequence[tuple[float, float]], title: str, fmt: str = "png"
) -> str:
    """Step x bin heat map of one module's histogram counts (log colour scale).

    ``rows`` are finite-value bins of the histogram table (``step``,
    ``bin_lo``, ``bin_hi``, ``count``); ``grid`` is the list of bins to draw
    (``(bin_lo, bin_hi)``, sorted), each at equal height and labelled by its
    lower edge, so a non-uniform (signed log) grid stays legible.
    """
    import matplotlib as mpl

    from netviz.plot.theme import style

    counts = rows.groupby(["bin_lo", "bin_hi", "step"])["count"].sum().unstack("step")
    index = pd.MultiIndex.from_tuples(list(grid), names=["bin_lo", "bin_hi"])
    counts = counts.reindex(index).fillna(0)
    steps = list(counts.columns)
    with style():
        fig, axes = _figure(8.0, 3.4)
        ax = axes[0][0]
        z = counts.to_numpy(dtype=float)
        top = max(float(z.max()) if z.size else 1.0, 1.0)
        im = ax.imshow(
            np.where(z > 0, z, np.nan),
            aspect="auto",
            origin="lower",
            interpolation="nearest",
            norm=mpl.colors.LogNorm(vmin=1, vmax=top),
            cmap="viridis",
        )
        n = len(counts)
        ticks = np.unique(np.linspace(0, n - 1, min(n, 7)).round().astype(int))
        ax.set_yticks(ticks, [f"{counts.index[i][0]:.3g}" for i in ticks])
        st = np.unique(np.linspace(0, len(steps) - 1, min(len(steps), 6)).round().astype(int))
        ax.set_xticks(st, [str(steps[i]) for i in st])
        ax.set_xlabel("step")
        ax.set_ylabel("bin (lower edge)")
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.05, label="count")
    return _encode(fig, fmt)


def array_png(values: Any, cmap: str = "viridis", vmin: float | None = None) -> str:
    """A 2-D array as a PNG ``data:`` URI, one pixel per value (scaled to its own range)."""
    import matplotlib.image as mpimg

    a = np.asarray(values, dtype=np.float64)
    finite = a[np.isfinite(a)]
    lo = float(finite.min()) if vmin is None and finite.size else (vmin or 0.0)
    hi = float(finite.max()) if finite.size else 1.0
    if hi <= lo:
        hi = lo + 1.0
    buf = io.BytesIO()
    mpimg.imsave(
        buf,
        np.nan_to_num(a, nan=lo),
        cmap=cmap,
        vmin=lo,
        vmax=hi,
        format="png",
        metadata={"Software": None},  # type: ignore[dict-item]  # None drops the key
    )
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
