"""``grad_norm`` and ``grad_stats``: gradients of each module's own parameters.

Both read ``param.grad`` when the step closes (after ``backward`` and any
gradient synchronisation or clipping), so they need no backward hook and are
unaffected by in-place operations. Norms of all parameters are computed by one
fused ``torch._foreach_norm`` call per step.
"""

from __future__ import annotations

import numpy as np
import torch

from netviz.capture._compat import own_parameters
from netviz.capture.probe import Probe, ProbeContext
from netviz.capture.stats import MOMENT_FIELDS, Scratch, buffer_dtype, merge_moments, tensor_moments

__all__ = ["GradNorm", "GradStats", "local_tensor", "module_grads", "stacked_norms"]


def local_tensor(t: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """The locally stored part of ``t`` and whether it is a shard of a larger tensor.

    DTensors (FSDP2) are reduced to their local shard; sparse gradients to
    their stored values.
    """
    to_local = getattr(t, "to_local", None)
    if to_local is not None and callable(to_local):
        placements = getattr(t, "placements", ())
        sharded = any(type(p).__name__ in ("Shard", "_StridedShard") for p in placements)
        return to_local(), sharded
    if t.is_sparse:
        return t.coalesce().values(), False
    return t, False


def module_grads(ctx: ProbeContext) -> list[tuple[str, list[torch.Tensor], bool]]:
    """``(module_name, grads, sharded)`` for selected modules with at least one gradient.

    Frozen parameters and parameters without ``.grad`` are skipped. Where a
    ``GradScaler`` skipped a fused optimizer's step (``ctx.grad_unscale``), the
    gradients are unscaled copies.
    """
    out = []
    unscale = ctx.grad_unscale  # a skipped fused-optimizer step leaves .grad scaled
    for name, module in ctx.modules:
        grads, sharded = [], False
        for p in own_parameters(module):
            if p.requires_grad and p.grad is not None:
                g, s = local_tensor(p.grad.detach())
                grads.append(g)
                sharded = sharded or s
        if grads:
            if unscale is not None:
                grads = [g * unscale.to(device=g.device, dtype=torch.float32) for g in grads]
            out.append((name, grads, sharded))
    return out


def stacked_norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """L2 norms of ``tensors`` (one fused ``_foreach_norm``) as one buffer-dtype vector."""
    norms = torch._foreach_norm(tensors)
    dt = buffer_dtype(tensors[0].device)
    if len({n.dtype for n in norms}) == 1:
        return torch.stack(norms).to(dt)
    return torch.stack([n.to(dt) for n in norms])


def _sum_sq_norms(groups: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    """Per group: sum of squared L2 norms of its tensors, via one fused foreach call."""
    flat = [g for grads in groups for g in grads]
    if not flat:
        return []
    sq = stacked_norms(flat) ** 2
    sizes = [len(grads) for grads in groups]
    return [part.sum() for part in torch.split(sq, sizes)]


class GradNorm(Probe):
    """``l2``: L2 norm over all of a module's own parameter gradients (``recurse=False``)."""

    name = "grad_norm"
    raw_fields = ("sum_sq",)
    stats = ("l2",)

    def on_step_end(self, ctx: ProbeContext) -> None:
        found = module_grads(ctx)
        if not found:
            return
        # one fused norm over every gradient, then a segment sum per module:
        # a handful of calls per step whatever the number of modules
        flat = [g for _, grads, _ in found for g in grads]
        sq = stacked_norms(flat) ** 2
        owner = torch.tensor(
            [i for i, (_, grads, _) in enumerate(found) for _ in grads], device=sq.device
        )
        sums = torch.zeros(len(found), dtype=sq.dtype, device=sq.device).index_add_(0, owner, sq)
        ctx.emit_many([n for n, _, _ in found], sums[:, None], sharded=[s for _, _, s in found])

    def finalize(self, raw: np.ndarray) -> np.ndarray:
        return np.sqrt(raw)


class GradStats(Probe):
    """``mean``, ``std``, ``abs_mean``, ``abs_max`` (finite entries), ``l2``, ``zero_frac``, ``nonfinite_frac``."""

    name = "grad_stats"
    raw_fields = (*MOMENT_FIELDS, "sum_sq")
    stats = ("mean", "std", "abs_mean", "abs_max", "l2", "zero_frac", "nonfinite_frac")

    def __init__(self, kernel: str = "auto") -> None:
        # kernel: "auto" (fused one-pass CPU kernel where available), "fused" or "eager"
        self._scratch = Scratch(kernel=kernel)

    def on_step_end(self, ctx: ProbeContext) -> None:
        found = module_grads(ctx)
        sums = _sum_sq_norms([g for _, g, _ in found])
        for (name, grads, sharded), sq in zip(found, sums):
            if len(grads) == 1:
                moments = tensor_moments(grads[0], self._scratch)
            else:
                moments = tensor_moments(torch.cat([g.reshape(-1) for g in grads]), self._scratch)
            ctx.emit(name, torch.cat([moments, sq.reshape(1)]), sharded=sharded)

    def finalize(self, raw: np.ndarray) -> np.ndarray:
        from netviz.capture.stats import finalize_moments

        act = finalize_moments(
            raw[:, : len(MOMENT_FIELDS)]
        )  # mean std min max abs_mean zf nff numel
        abs_max = np.maximum(np.abs(act[:, 2]), np.abs(act[:, 3]))
        l2 = np.sqrt(raw[:, -1])
        return np.stack(
            [act[:, 0], act[:, 1], act[:, 4], abs_max, l2, act[:, 5], act[:, 6]], axis=1
        )

    def merge(self, raw: np.ndarray, sharded: np.ndarray) -> np.ndarray:
        moments = merge_moments(raw[..., : len(MOMENT_FIELDS)])
        first = raw[0, :, : len(MOMENT_FIELDS)]
        moments = np.where(sharded[:, None], moments, first)
        sq = np.where(sharded, raw[..., -1].sum(axis=0), raw[0, :, -1])
        return np.concatenate([moments, sq[:, None]], axis=1)
