"""The shared netviz look (palette, colour maps, rcParams), and deterministic saving.

Public: ``from netviz.plot.theme import PALETTE`` (also ``netviz.plot.PALETTE``).
Every plot function draws inside :func:`style` so that figures look alike
across the library and the gallery: DejaVu Sans (bundled with matplotlib, so
the same glyphs everywhere), sizes readable on a 1280x720 slide, and
colour-blind-safe palettes (seaborn's ``colorblind`` for lines, ``viridis``
for sequential and ``RdBu_r`` for diverging data).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netviz.errors import NetvizValueError

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

__all__ = [
    "CMAP_DIVERGING",
    "CMAP_SEQUENTIAL",
    "PALETTE",
    "RC",
    "savefig",
    "style",
]

#: seaborn's "colorblind" palette (Okabe-Ito based), as hex codes.
PALETTE: tuple[str, ...] = (
    "#0173b2",
    "#de8f05",
    "#029e73",
    "#d55e00",
    "#cc78bc",
    "#ca9161",
    "#fbafe4",
    "#949494",
    "#ece133",
    "#56b4e9",
)
CMAP_SEQUENTIAL = "viridis"
CMAP_DIVERGING = "RdBu_r"

#: rcParams applied by :func:`style`.
RC: dict[RcKeyType, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "figure.titlesize": 14,
    "figure.figsize": (8.0, 4.5),
    "figure.dpi": 100,
    "savefig.dpi": 160,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "image.cmap": CMAP_SEQUENTIAL,
    "svg.hashsalt": "netviz",
    "svg.fonttype": "path",
    "pdf.compression": 6,
    "path.simplify": True,
}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Context manager applying the netviz rcParams and colour cycle."""
    import matplotlib as mpl
    from cycler import cycler

    rc = dict(RC)
    rc["axes.prop_cycle"] = cycler(color=list(PALETTE))
    with mpl.rc_context(rc):
        yield


_METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None},
}


def savefig(fig: Figure, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Save ``fig`` byte-reproducibly (no timestamps, no version strings, fixed SVG ids).

    The format comes from the suffix: ``.png``, ``.svg`` or ``.pdf``.
    """
    import matplotlib as mpl

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in _METADATA:
        raise NetvizValueError(f"unsupported figure format {fmt!r}; use one of png, svg, pdf")
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs.setdefault("metadata", _METADATA[fmt])
    kwargs.setdefault("dpi", RC["savefig.dpi"])
    with mpl.rc_context({"svg.hashsalt": "netviz"}):
        fig.savefig(path, format=fmt, **kwargs)
    return path
