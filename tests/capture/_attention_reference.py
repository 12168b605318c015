"""Independent attention references, written from the formulas (no netviz code)."""

from __future__ import annotations

import math

import torch
from torch import nn


def mha_reference(
    mha: nn.MultiheadAttention,
    query: torch.Tensor,
    key: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    key_padding_mask: torch.Tensor | None = None,
    batch_first: bool | None = None,
) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d) + masks), per head, ``(N, H, L, S)``.

    ``query``/``key`` in the module's layout (batch first or not); masks in
    MultiheadAttention's convention (bool: True = excluded; float: added).
    """
    batch_first = mha.batch_first if batch_first is None else batch_first
    if query.dim() == 2:  # unbatched
        query, key = query[None], key[None]
        key_padding_mask = None if key_padding_mask is None else key_padding_mask[None]
    elif not batch_first:
        query, key = query.transpose(0, 1), key.transpose(0, 1)
    e, h = mha.embed_dim, mha.num_heads
    d = e // h
    if mha._qkv_same_embed_dim:
        wq, wk = mha.in_proj_weight[:e], mha.in_proj_weight[e : 2 * e]
    else:
        wq, wk = mha.q_proj_weight, mha.k_proj_weight
    bq, bk = mha.in_proj_bias[:e], mha.in_proj_bias[e : 2 * e]
    n, length, _ = query.shape
    source = key.shape[1]
    q = (query @ wq.T + bq).reshape(n, length, h, d).transpose(1, 2)
    k = (key @ wk.T + bk).reshape(n, source, h, d).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)
    if attn_mask is not None:
        m = attn_mask if attn_mask.dim() == 2 else attn_mask.reshape(n, h, length, source)
        if m.dtype == torch.bool:
            scores = scores.masked_fill(m, float("-inf"))
        else:
            scores = scores + m
    if key_padding_mask is not None:
        kpm = key_padding_mask[:, None, None, :]
        if kpm.dtype == torch.bool:
            scores = scores.masked_fill(kpm, float("-inf"))
        else:  # nn.TransformerEncoder hands its layers an additive float mask
            scores = scores + kpm
    return torch.softmax(scores, dim=-1).detach()


def sdpa_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    """Loop-free reference with SDPA's conventions (bool mask: True = attend)."""
    length, source = q.shape[-2], k.shape[-2]
    s = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = torch.einsum("...ld,...sd->...ls", q, k) * s
    if is_causal:
        allowed = torch.zeros(length, source, dtype=torch.bool)
        for i in range(length):
            allowed[i, : i + 1] = True
        scores = scores.masked_fill(~allowed, float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    return torch.softmax(scores, dim=-1).detach()


def hook_counts(model: nn.Module) -> int:
    """Total number of forward (pre-)hooks on all modules of ``model``."""
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._forward_hooks_with_kwargs)
        for m in model.modules()
    )
