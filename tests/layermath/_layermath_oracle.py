"""Helpers shared by the layermath tests: run PyTorch as the oracle, compare outcomes."""

from __future__ import annotations

import torch

ERROR = "error"


def torch_outcome(build, input_shape, *, device="cpu"):
    """Output shape of ``build()(zeros(input_shape))``, or ERROR if PyTorch refuses.

    Construction is part of the call: PyTorch refuses some configurations in
    ``__init__`` (ValueError) and others in ``forward`` (RuntimeError).
    """
    try:
        module = build()
        with torch.no_grad():
            out = module(torch.zeros(input_shape, device=device))
    except (RuntimeError, ValueError):
        return ERROR
    if isinstance(out, tuple):
        out = out[0]
    return tuple(out.shape)


def ours_outcome(fn):
    """``fn()`` as a tuple, or ERROR if it raised ValueError (other exceptions propagate)."""
    try:
        out = fn()
    except ValueError:
        return ERROR
    return out if isinstance(out, tuple) else (out,)
