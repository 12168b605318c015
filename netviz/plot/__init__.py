"""Plots: matplotlib/seaborn figures of records, captures and diagnoses.

Every function takes ``ax=None`` (or a figure), draws, and returns what it
drew; none calls ``plt.show()`` or saves on its own. matplotlib is imported
lazily: ``import netviz`` never imports it, and neither does this package
until a plot function is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> submodule that defines it. Submodules import matplotlib on use.
# A submodule must not share a name with a function exported here: importing
# it would bind the module over the function in this package's namespace.
_LAZY = {
    "style": "_style",
    "savefig": "_style",
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
