"""Attention probabilities of ``scaled_dot_product_attention``, recomputed in plain PyTorch.

The fused kernels behind :func:`torch.nn.functional.scaled_dot_product_attention`
never materialise the attention matrix, so the capture recomputes it from the
same ``query``, ``key``, ``attn_mask``, ``is_causal``, ``scale`` and
``enable_gqa`` arguments (``value`` and dropout do not enter the
probabilities). The patch that sees those calls, :class:`SdpaPatch`, lives
in :mod:`netviz._compat` with the other torch internals.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from netviz._compat import SdpaPatch
from netviz.errors import NetvizValueError

__all__ = ["SDPA_PARAMS", "SdpaPatch", "bind_sdpa", "sdpa_weights"]

#: Positional parameter names of ``scaled_dot_product_attention``.
SDPA_PARAMS = (
    "query",
    "key",
    "value",
    "attn_mask",
    "dropout_p",
    "is_causal",
    "scale",
    "enable_gqa",
)


def sdpa_weights(
    query: torch.Tensor,
    key: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor:
    r"""Attention probabilities that ``scaled_dot_product_attention`` applies to ``value``.

    .. math::

        P = \operatorname{softmax}\!\left(\frac{Q K^\top}{\sqrt{E}} + M\right)

    with ``scale`` replacing :math:`1/\sqrt{E}` when given, :math:`M` the
    additive form of ``attn_mask`` (a boolean mask marks the positions that
    *take part* with ``True``, as in SDPA) and of the causal mask (lower-left
    triangle, aligned top-left as in SDPA, also when the key is longer than
    the query). With ``enable_gqa`` the key heads are repeated to match the
    query heads. Computed in at least float32; rows whose every key is masked
    are NaN. Dropout is not applied (these are the probabilities before it).

    Parameters
    ----------
    query
        ``(..., L, E)``.
    key
        ``(..., S, E)``.

    Returns
    -------
    torch.Tensor
        ``(..., L, S)`` on the device of ``query``.

    Examples
    --------
    >>> q = torch.tensor([[[1.0, 0.0]]])
    >>> k = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    >>> sdpa_weights(q, k, scale=math.log(3.0))
    tensor([[[0.7500, 0.2500]]])
    """
    dtype = torch.promote_types(query.dtype, torch.float32)
    q = query.to(dtype)
    k = key.to(dtype)
    if enable_gqa and q.dim() >= 3 and k.dim() >= 3 and q.shape[-3] != k.shape[-3]:
        if q.shape[-3] % k.shape[-3]:
            raise NetvizValueError(
                f"enable_gqa: query heads ({q.shape[-3]}) must be a multiple of key heads "
                f"({k.shape[-3]})"
            )
        k = k.repeat_interleave(q.shape[-3] // k.shape[-3], dim=-3)
    length, source = q.shape[-2], k.shape[-2]
    factor = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    scores = torch.matmul(q, k.transpose(-2, -1)) * factor
    if is_causal:
        keep = torch.ones(length, source, dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~keep, float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask.to(q.device), float("-inf"))
        else:
            scores = scores + attn_mask.to(device=q.device, dtype=dtype)
    return torch.softmax(scores, dim=-1)


def bind_sdpa(args: tuple, kwargs: dict) -> dict[str, Any]:
    """Arguments of an SDPA call by name, with SDPA's defaults filled in."""
    bound = dict(zip(SDPA_PARAMS, args))
    bound.update(kwargs)
    bound.setdefault("attn_mask", None)
    bound.setdefault("is_causal", False)
    bound.setdefault("scale", None)
    bound.setdefault("enable_gqa", False)
    return bound
