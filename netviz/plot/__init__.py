"""Plots: matplotlib/seaborn figures of records, captures and diagnoses.

Every plot function is ``f(data, ax=None, *, ...)``: the data first, where to
draw second (``None``: a new figure; an Axes; for grids also a Figure), every
option by keyword. It returns what seaborn returns: the
:class:`~matplotlib.axes.Axes` it drew on, or for multi-axes figures
(:func:`filters`, :func:`feature_maps`, :func:`attention`, the small multiples
of :func:`distributions_over_steps`) a :class:`PlotGrid` (``.figure``,
``.axes``). Layers are picked with ``modules=``: a glob or list of globs over
module names, the rules of :func:`netviz.watch`. None calls ``plt.show()`` or
saves on its own.

The look is public in :mod:`netviz.plot.theme` (:data:`PALETTE`,
:data:`CMAP_SEQUENTIAL`, :data:`CMAP_DIVERGING`, :func:`style`,
:func:`savefig`), also importable from here. matplotlib is imported lazily:
``import netviz`` never imports it, and neither does this package until a
plot function is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> submodule that defines it. Submodules import matplotlib on use.
# A submodule must not share a name with a function exported here: importing
# it would bind the module over the function in this package's namespace.
_LAZY = {
    "CMAP_DIVERGING": "theme",
    "CMAP_SEQUENTIAL": "theme",
    "PALETTE": "theme",
    "PlotGrid": "_axes",
    "style": "theme",
    "savefig": "theme",
    "filters": "images",
    "feature_maps": "images",
    "attention": "attention_maps",
    "attribution": "attribution_maps",
    "token_attribution": "attribution_maps",
    "positional_encoding": "attention_maps",
    "position_similarity": "attention_maps",
    "gradient_flow": "gradients",
    "activation_distributions": "gradients",
    "stat_over_steps": "gradients",
    "timestep_gradients": "gradients",
    "distributions_over_steps": "distributions",
    "histograms_over_steps": "distributions",
    "layer_histograms": "distributions",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    sub = _LAZY.get(name)
    if sub is None:
        raise AttributeError(f"module 'netviz.plot' has no attribute {name!r}")
    module = importlib.import_module(f"netviz.plot.{sub}")
    return getattr(module, name)


def __dir__() -> list[str]:
    return __all__
