"""``grad_norm`` and ``grad_stats``: gradients of each module's own parameters.

Both read ``param.grad`` when the step closes (after ``backward`` and any
gradient synchronisation or clipping), so they need no backward hook and are
unaffected by in-place operations. Norms are never rounded to the gradient's
precision and never overflow where the gradient is finite: on CPU they come
from the fused kernel's sums of squares (one call per step) or, without it,
from each gradient's raw moments (:func:`~netviz.capture.stats.tensor_moments`);
elsewhere from one fused ``torch._foreach_norm`` call accumulated in float32
or wider (see :func:`stacked_sum_squares`).
"""

from __future__ import annotations

import numpy as np
import torch

from netviz._compat import foreach_norm, is_shard_placement, own_parameters
from netviz.capture.probe import Probe, ProbeContext
from netviz.capture.stats import (
    MOMENT_FIELDS,
    Scratch,
    buffer_dtype,
    merge_moments,
    readable_tensor,
    tensor_moments,
)

__all__ = [
    "GradNorm",
    "GradStats",
    "local_tensor",
    "module_grads",
    "stacked_norms",
    "stacked_sum_squares",
]

_F = {name: i for i, name in enumerate(MOMENT_FIELDS)}
_HALF = (torch.float16, torch.bfloat16)


def local_tensor(t: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """The locally stored part of ``t`` and whether it is a shard of a larger tensor.

    DTensors (FSDP2) are reduced to their local shard; sparse gradients to
    their stored values.
    """
    to_local = getattr(t, "to_local", None)
    if to_local is not None and callable(to_local):
        placements = getattr(t, "placements", ())
        sharded = any(is_shard_placement(p) for p in placements)
        return to_local(), sharded
    if t.is_sparse:
        return t.coalesce().values(), False
    return t, False


def module_grads(ctx: ProbeContext) -> list[tuple[str, list[torch.Tensor], bool]]:
    """``(module_name, grads, sharded)`` for selected modules with at least one gradient.

    Frozen parameters and parameters without ``.grad`` are skipped; a module
    with a gradient that holds no values (meta or fake) is skipped with
    :meth:`ProbeContext.skip`. Where a ``GradScaler`` skipped a fused
    optimizer's step (``ctx.grad_unscale``), the gradients are unscaled copies.
    """
    out = []
    unscale = ctx.grad_unscale  # a skipped fused-optimizer step leaves .grad scaled
    for name, module in ctx.modules:
        grads, sharded, reason = [], False, ""
        for p in own_parameters(module):
            if p.requires_grad and p.grad is not None:
                g, s = local_tensor(p.grad.detach())
                dense, _, reason = readable_tensor(g)
                if dense is None:
                    break
                grads.append(dense)
                sharded = sharded or s
        if reason:
            ctx.skip(name, reason)
        elif grads:
            if unscale is not None:
                grads = [g * unscale.to(device=g.device, dtype=torch.float32) for g in grads]
            out.append((name, grads, sharded))
    return out


def _foreach_norms(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """``_foreach_norm`` accumulated in float32 or wider: half precision never rounds to half."""
    if not any(t.dtype in _HALF for t in tensors):
        return list(foreach_norm(tensors))
    out: list[torch.Tensor | None] = [None] * len(tensors)
    for wide in (True, False):
        idx = [i for i, t in enumerate(tensors) if (t.dtype != torch.float64) == wide]
        if idx:
            kw = {"dtype": torch.float32} if wide else {}
            for i, n in zip(idx, foreach_norm([tensors[i] for i in idx], **kw)):
                out[i] = n
    return out  # type: ignore[return-value]


def sum_squares_from_moments(moments: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
    """Sums of squares from raw moments ``(..., 9)``; ``norm ** 2`` where elements are non-finite.

    sum of x^2 = dev^2 + c (2 sum - n c) for the centre c of the moments (no
    cancellation: c is close to the mean). ``norm`` (any L2 norm of the same
    tensors) supplies NaN or infinity where the tensor holds them.
    """
    n_f = moments[..., _F["numel"]] - moments[..., _F["nonfinite"]]
    c, total = moments[..., _F["centre"]], moments[..., _F["sum"]]
    sq = moments[..., _F["dev"]] ** 2 + c * (2 * total - n_f * c)
    norm = norm.to(sq.dtype)
    return torch.where(moments[..., _F["nonfinite"]] > 0, norm * norm, sq.clamp(min=0))


def stacked_sum_squares(
    tensors: list[torch.Tensor], scratch: Scratch | None = None
) -> torch.Tensor:
    """Sums of squares of ``tensors`` as one buffer-dtype vector, without overflow or rounding.

    On CPU with the fused kernel from its ``sum_squares`` (one call; float
    blocks redone in double where squares overflow or underflow); on CPU
    without it from each tensor's raw moments (values scaled near 1, float64
    merges; torch's own float32 CPU norm is off by 1e-5 at a million
    elements); on other devices from one ``_foreach_norm`` in float32 or
    wider.
    """
    dt = buffer_dtype(tensors[0].device)
    on_cpu = all(t.device.type == "cpu" and type(t) is torch.Tensor for t in tensors)
    fused = scratch.fused() if scratch is not None and on_cpu else None
    if fused is not None and not torch.compiler.is_compiling():
        return fused.sum_squares(tensors)  # one call, one read of each tensor
    norms = [n.to(dt) for n in _foreach_norms(tensors)]
    if on_cpu:
        moments = torch.stack([tensor_moments(t, scratch) for t in tensors])
        return sum_squares_from_moments(moments, torch.stack(norms))
    return torch.stack(norms) ** 2


def stacked_norms(tensors: list[torch.Tensor], scratch: Scratch | None = None) -> torch.Tensor:
    """L2 norms of ``tensors`` as one buffer-dtype vector (see :func:`stacked_sum_squares`)."""
    return stacked_sum_squares(tensors, scratch).sqrt()


def _sum_sq_norms(
    groups: list[list[torch.Tensor]], scratch: Scratch | None = None
) -> list[torch.Tensor]:
    """Per group: sum of squared L2 norms of its tensors."""
    flat = [g for grads in groups for g in grads]
    if not flat:
        return []
    sq = stacked_sum_squares(flat, scratch)
    sizes = [len(grads) for grads in groups]
    return [part.sum() for part in torch.split(sq, sizes)]


class GradNorm(Probe):
    """``l2``: L2 norm over all of a module's own parameter gradients (``recurse=False``)."""

    name = "grad_norm"
    raw_fields = ("sum_sq",)
    stats = ("l2",)

    def __init__(self) -> None:
        self._scratch = Scratch()  # CPU norms come from the moments kernel

    def setup(self, ctx: ProbeContext) -> None:
        self._scratch.prepare(ctx.model)

    def on_step_end(self, ctx: ProbeContext) -> None:
        found = module_grads(ctx)
        if not found:
            return
        # one fused sum of squares over every gradient, then a segment sum per
        # module: a handful of calls per step whatever the number of modules
        flat = [g for _, grads, _ in found for g in grads]
        sq = stacked_sum_squares(flat, self._scratch)
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

    def setup(self, ctx: ProbeContext) -> None:
        self._scratch.prepare(ctx.model)

    def on_step_end(self, ctx: ProbeContext) -> None:
        for name, grads, sharded in module_grads(ctx):
            if len(grads) == 1:
                moments = tensor_moments(grads[0], self._scratch)
            else:
                flat = [
                    g.reshape(-1).to(torch.promote_types(g.dtype, torch.float32)) for g in grads
                ]
                moments = tensor_moments(torch.cat(flat), self._scratch)
            sq = _sum_sq_norms([grads], self._scratch)[0]
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
