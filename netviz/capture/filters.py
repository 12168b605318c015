"""Convolution weights read from a module and arranged for display: :func:`conv_filter_weights`.

They read the module's ``weight``; nothing is captured or run.
"""

from __future__ import annotations

import torch
from torch import nn

from netviz.errors import NetvizTypeError, NetvizValueError

__all__ = ["conv_filter_weights", "conv_weight"]


def conv_filter_weights(module: nn.Module | torch.Tensor) -> torch.Tensor:
    """The filters of a convolution read from its weight, one entry per output channel, ready to draw.

    Layouts (``C_in`` is the number of input channels each filter sees,
    ``in_channels / groups``):

    ============  ====================  ======================================
    layer         ``C_in``              result
    ============  ====================  ======================================
    ``Conv2d``    3                     ``(C_out, H, W, 3)``: RGB, channel last
    ``Conv2d``    other                 ``(C_out, C_in, H, W)``
    ``Conv1d``    any                   ``(C_out, C_in, K)``: one ``C_in x K``
                                        image per filter
    ``Conv3d``    any                   ``(C_out, C_in, D, H, W)``, unchanged
    ============  ====================  ======================================

    Transposed convolutions store ``(C_in, C_out / groups, ...)``; they are
    swapped to the same per-output-channel layout (``groups == 1`` only).
    Values are the raw weights (not rescaled), detached and copied.

    Parameters
    ----------
    module
        A ``Conv1d/2d/3d`` or ``ConvTranspose1d/2d/3d`` (anything with a 3-D
        to 5-D ``weight``), or such a weight tensor (read as ``Conv*``).

    Raises
    ------
    NetvizTypeError
        Not a module or tensor.
    NetvizValueError
        No 3-D to 5-D weight, or a grouped transposed convolution.

    Examples
    --------
    >>> conv_filter_weights(nn.Conv2d(3, 8, 5)).shape
    torch.Size([8, 5, 5, 3])
    >>> conv_filter_weights(nn.Conv2d(1, 6, 3)).shape
    torch.Size([6, 1, 3, 3])
    >>> conv_filter_weights(nn.Conv1d(2, 4, 7)).shape
    torch.Size([4, 2, 7])
    """
    w = conv_weight(module)
    if w.dim() == 4 and w.shape[1] == 3:
        w = w.permute(0, 2, 3, 1)
    return w.clone()


def conv_weight(module: nn.Module | torch.Tensor) -> torch.Tensor:
    """The raw weights ``(C_out, C_in / groups, *kernel)`` of a convolution, detached.

    Like :func:`conv_filter_weights` without the RGB rearrangement (a view, not a copy).
    """
    if isinstance(module, torch.Tensor):
        weight, transposed, groups = module, False, 1
        where = "the tensor"
    elif isinstance(module, nn.Module):
        found = getattr(module, "weight", None)
        if not isinstance(found, torch.Tensor):
            raise NetvizValueError(
                f"`module` {type(module).__name__} has no weight tensor; pass a Conv1d/2d/3d "
                "(or its weight)"
            )
        weight = found
        transposed = bool(getattr(module, "transposed", False))
        groups = int(getattr(module, "groups", 1))
        where = type(module).__name__
    else:
        raise NetvizTypeError(
            f"`module` must be a convolution module or a weight tensor, got {type(module).__name__}"
        )
    if weight.dim() not in (3, 4, 5):
        raise NetvizValueError(
            f"{where} weight has shape {tuple(weight.shape)}; conv filters are 3-D (Conv1d), "
            "4-D (Conv2d) or 5-D (Conv3d): (C_out, C_in, *kernel)"
        )
    w = weight.detach()
    if transposed:
        if groups != 1:
            raise NetvizValueError(f"{where} with groups={groups}: only groups=1 is supported")
        w = w.transpose(0, 1)
    return w
