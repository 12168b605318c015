"""Device-side statistic kernels and their host-side finalisation.

Hooks call :func:`tensor_moments`, which launches a fixed handful of reduction
kernels and returns a small device vector of *raw* moments without ever
reading a value on the host (no ``.item()``, no branching on tensor values).
The host later turns many such vectors at once into reported statistics with
:func:`finalize_moments`, and merges vectors of several ranks with
:func:`merge_moments` (Chan et al.'s parallel variance update).

Raw moment layout (:data:`MOMENT_FIELDS`):

========== ====================================================================
numel      number of elements
nonfinite  number of NaN or +-Inf elements
mean       mean of the finite elements
var        population variance of the finite elements
min, max   extremes of the finite elements
l1         sum of absolute values of the finite elements
zeros      number of elements exactly 0
========== ====================================================================

Non-finite elements are replaced by the finite mean before the fused
``var_mean``/``aminmax`` kernels run, which leaves the mean, the variance, the
minimum and the maximum of the finite elements unchanged; no second pass is
needed and nothing is masked out on the host.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "MOMENT_FIELDS",
    "buffer_dtype",
    "finalize_moments",
    "merge_moments",
    "tensor_moments",
]

MOMENT_FIELDS: tuple[str, ...] = ("numel", "nonfinite", "mean", "var", "min", "max", "l1", "zeros")
_F = {name: i for i, name in enumerate(MOMENT_FIELDS)}

#: Statistics reported by activation-type probes, in order.
ACTIVATION_STATS: tuple[str, ...] = (
    "mean",
    "std",
    "min",
    "max",
    "abs_mean",
    "zero_frac",
    "nonfinite_frac",
    "numel",
)


def buffer_dtype(device: torch.device) -> torch.dtype:
    """dtype of raw statistics on ``device``: float64 (exact counts to 2**53), float32 on MPS."""
    return torch.float32 if device.type == "mps" else torch.float64


def _as_float(x: torch.Tensor) -> torch.Tensor:
    # Half precision statistics are computed in float32 (sums of many bf16
    # values lose all precision); float32/float64 are used as they are.
    if x.dtype in (torch.float32, torch.float64):
        return x
    if x.is_complex():
        x = x.abs()
    return x.float()


def tensor_moments(x: torch.Tensor) -> torch.Tensor:
    """Raw moments of ``x`` as a 1-D device tensor laid out as :data:`MOMENT_FIELDS`.

    Runs entirely on ``x``'s device and never synchronises with the host.

    >>> m = tensor_moments(torch.tensor([1.0, -2.0, 0.0, float("nan")]))
    >>> dict(zip(MOMENT_FIELDS, m.tolist()))["nonfinite"]
    1.0
    """
    x = _as_float(x.detach())
    if x.numel() == 0:
        nan = float("nan")
        return torch.tensor([0.0, 0.0, nan, nan, nan, nan, 0.0, 0.0], dtype=buffer_dtype(x.device), device=x.device)
    finite = torch.isfinite(x)
    n_finite = finite.sum()
    # mean of the finite elements, written into the non-finite positions so
    # that one fused var_mean/aminmax pass gives finite-only results.
    finite_sum = torch.where(finite, x, 0).sum()
    finite_mean = finite_sum / n_finite.clamp(min=1)
    filled = torch.where(finite, x, finite_mean.to(x.dtype))
    var_all, mean_all = torch.var_mean(filled, correction=0)
    lo, hi = torch.aminmax(filled)
    l1 = torch.linalg.vector_norm(filled, ord=1)
    nonzero = torch.count_nonzero(x)
    numel = x.numel()
    dt = buffer_dtype(x.device)
    return torch.stack(
        [
            torch.full((), numel, dtype=dt, device=x.device),
            (numel - n_finite).to(dt),
            mean_all.to(dt),
            var_all.to(dt),
            lo.to(dt),
            hi.to(dt),
            l1.to(dt),
            (numel - nonzero).to(dt),
        ]
    )


def finalize_moments(raw: np.ndarray) -> np.ndarray:
    """Raw moments ``(n, 8)`` -> activation statistics ``(n, 8)`` (:data:`ACTIVATION_STATS`).

    ``mean``, ``std`` (population), ``min``, ``max`` and ``abs_mean`` are over
    finite elements only and NaN when no element is finite.
    """
    raw = np.asarray(raw, dtype=np.float64).reshape(-1, len(MOMENT_FIELDS))
    numel = raw[:, _F["numel"]]
    k = raw[:, _F["nonfinite"]]
    n_f = numel - k
    mean = raw[:, _F["mean"]]
    with np.errstate(invalid="ignore", divide="ignore"):
        # var_mean ran over all numel elements, k of which hold the finite
        # mean and contribute no deviation: rescale to the finite count.
        var = np.where(k > 0, raw[:, _F["var"]] * numel / n_f, raw[:, _F["var"]])
        std = np.sqrt(np.maximum(var, 0.0))
        abs_mean = (raw[:, _F["l1"]] - k * np.abs(mean)) / n_f
        zero_frac = raw[:, _F["zeros"]] / numel
        nonfinite_frac = k / numel
    none_finite = n_f <= 0
    out = np.stack(
        [
            mean,
            std,
            raw[:, _F["min"]],
            raw[:, _F["max"]],
            abs_mean,
            zero_frac,
            nonfinite_frac,
            numel,
        ],
        axis=1,
    )
    out[none_finite, :5] = np.nan
    return out


def merge_moments(raw: np.ndarray) -> np.ndarray:
    """Merge raw moments of several parts ``(parts, n, 8)`` into ``(n, 8)``.

    The result equals :func:`tensor_moments` of the concatenated parts (up to
    rounding): counts add, means and variances combine with Chan et al.'s
    parallel update, extremes take min/max over parts with finite elements.
    """
    raw = np.asarray(raw, dtype=np.float64)
    numel = raw[..., _F["numel"]]
    k = raw[..., _F["nonfinite"]]
    n_f = numel - k
    has = n_f > 0
    mean = np.where(has, raw[..., _F["mean"]], 0.0)
    # variance over finite elements of each part (see finalize_moments)
    with np.errstate(invalid="ignore", divide="ignore"):
        var_f = np.where(k > 0, raw[..., _F["var"]] * numel / n_f, raw[..., _F["var"]])
    var_f = np.where(has, var_f, 0.0)
    l1_f = np.where(has, raw[..., _F["l1"]] - k * np.abs(mean), 0.0)
    tot_n = numel.sum(axis=0)
    tot_k = k.sum(axis=0)
    tot_f = n_f.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        g_mean = (n_f * mean).sum(axis=0) / tot_f
        m2 = (n_f * var_f).sum(axis=0) + (n_f * (mean - g_mean) ** 2).sum(axis=0)
        g_var = m2 / tot_f
    lo = np.where(has, raw[..., _F["min"]], np.inf).min(axis=0)
    hi = np.where(has, raw[..., _F["max"]], -np.inf).max(axis=0)
    out = np.empty(raw.shape[1:], dtype=np.float64)
    out[:, _F["numel"]] = tot_n
    out[:, _F["nonfinite"]] = tot_k
    out[:, _F["mean"]] = g_mean
    # store the finite-only variance so that no rescaling is needed:
    # finalize_moments rescales var by numel / n_f when nonfinite > 0, so
    # pre-divide by that factor here.
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, _F["var"]] = np.where(tot_k > 0, g_var * tot_f / tot_n, g_var)
        # l1 is stored "as if" non-finite entries held the mean (see tensor_moments)
        out[:, _F["l1"]] = l1_f.sum(axis=0) + tot_k * np.abs(g_mean)
    out[:, _F["min"]] = lo
    out[:, _F["max"]] = hi
    out[:, _F["zeros"]] = raw[..., _F["zeros"]].sum(axis=0)
    none = tot_f <= 0
    out[none, _F["mean"] : _F["l1"] + 1] = np.nan
    return out
