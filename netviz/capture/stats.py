"""Device-side statistic kernels and their host-side finalisation.

Hooks call :func:`tensor_moments`, which launches a fixed handful of reduction
kernels and returns a small device vector of *raw* moments without ever
reading a value on the host (no ``.item()``, no branching on tensor values).
On CPU, with a :class:`Scratch`, a fused one-pass C kernel does the same work
where it can be built (:mod:`netviz.capture._fused`); the eager torch kernel
below is the reference, the fallback and the CUDA path.
The host later turns many such vectors at once into reported statistics with
:func:`finalize_moments`, and merges vectors of several ranks with
:func:`merge_moments` (Chan et al.'s parallel variance update).

The raw layout is :data:`MOMENT_FIELDS` (see :func:`tensor_moments`). It is
additive across parts of a tensor (counts, sums, extremes), so that the
distributed mode can merge the moments of several ranks exactly.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from netviz.capture import _fused
from netviz.capture._fused import FusedMoments

__all__ = [
    "KERNELS",
    "MOMENT_FIELDS",
    "Scratch",
    "buffer_dtype",
    "finalize_moments",
    "merge_moments",
    "tensor_moments",
]

MOMENT_FIELDS: tuple[str, ...] = (
    "numel",
    "nonfinite",
    "sum",
    "centre",
    "dev",
    "min",
    "max",
    "l1",
    "nonzero",
)
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

_INF = float("inf")

#: Kernels :class:`Scratch` accepts: fused one-pass C kernel where available, or eager torch ops.
KERNELS: tuple[str, ...] = ("auto", "fused", "eager")


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


class Scratch:
    """Reusable work buffers for :func:`tensor_moments` on CPU.

    On CPU, every fresh allocation of a large temporary is paid in page faults,
    which cost more than the arithmetic of a statistic; a monitor therefore
    gives its probes one ``Scratch``, whose two buffers (``chunk`` elements
    each, per thread and dtype) are reused by every hook and every step.
    Tensors larger than ``chunk`` are reduced chunk by chunk, which also keeps
    the passes in cache. CUDA needs none of this: its caching allocator reuses
    blocks, and tensors are reduced whole.

    ``kernel`` (one of :data:`KERNELS`): ``"auto"`` reduces CPU tensors with the
    fused one-pass C kernel where it can be built and loaded safely (see
    :mod:`netviz.capture._fused`; it needs no buffers), else eagerly;
    ``"fused"`` requires the fused kernel (``RuntimeError`` here if it is not
    available); ``"eager"`` never uses it.
    """

    def __init__(self, chunk: int = 1 << 18, kernel: str = "auto"):
        if chunk < 1:
            raise ValueError(f"`chunk` must be >= 1, got {chunk}")
        if kernel not in KERNELS:
            raise ValueError(
                f"`kernel` must be one of {', '.join(map(repr, KERNELS))}, got {kernel!r}"
            )
        self.chunk = chunk
        self.kernel = kernel
        self._buffers: dict[tuple[int, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}
        if kernel == "fused":
            self.fused()  # fail here, not in the first forward hook

    def fused(self) -> FusedMoments | None:
        """The fused CPU kernel this scratch uses, or ``None`` for the eager one.

        ``"auto"`` uses it where it can be built and loaded safely (see
        :mod:`netviz.capture._fused`); ``"fused"`` requires it.
        """
        if self.kernel == "eager":
            return None
        kernel = _fused.load()
        if kernel is None and self.kernel == "fused":
            raise RuntimeError(
                "the fused moments kernel is not available here: it needs Linux, "
                "PyTorch with OpenMP, a C compiler ($CC, cc, gcc or clang) and "
                "NETVIZ_KERNEL not set to 'eager'; use kernel='auto' or 'eager'"
            )
        return kernel

    def get(self, n: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Two CPU buffers of ``n <= chunk`` elements."""
        key = (threading.get_ident(), dtype)
        bufs = self._buffers.get(key)
        if bufs is None or bufs[0].numel() < n:
            size = max(n, min(self.chunk, 1 << 12))
            bufs = (torch.empty(size, dtype=dtype), torch.empty(size, dtype=dtype))
            self._buffers[key] = bufs
        return bufs[0][:n], bufs[1][:n]


def tensor_moments(x: torch.Tensor, scratch: Scratch | None = None) -> torch.Tensor:
    """Raw moments of ``x`` as a 1-D device tensor laid out as :data:`MOMENT_FIELDS`.

    Runs entirely on ``x``'s device and never synchronises with the host. Only
    cheap, vectorised element-wise passes and reductions are used (``isfinite``,
    comparisons producing ``bool`` and Welford's ``var_mean`` are many times
    slower on CPU): non-finite elements are zeroed with ``nan_to_num`` and
    counted as ``nan_to_num(x * 0, 1)``, zeros are counted as
    ``ceil(min(|x|, 1))``, and the spread is measured around the finite mean
    ``c`` in a second pass (no cancellation). With a :class:`Scratch` (CPU)
    the temporaries live in reused buffers and large tensors are reduced in
    chunks whose moments are merged on the device.

    Fields: ``numel``; ``nonfinite`` count; ``sum`` of finite elements;
    ``centre`` c; ``dev`` = sqrt(sum over finite elements of (x - c)^2);
    ``min``/``max`` of finite elements (undefined when there are none:
    ``nonfinite == numel``); ``l1`` = sum of
    |finite elements|; ``nonzero`` count of finite non-zero elements.

    >>> m = tensor_moments(torch.tensor([1.0, -2.0, 0.0, float("nan")]))
    >>> dict(zip(MOMENT_FIELDS, m.tolist()))["nonfinite"]
    1.0
    """
    x = _as_float(x.detach())
    dt = buffer_dtype(x.device)
    if x.numel() == 0:
        return torch.tensor(
            [0.0, 0.0, 0.0, 0.0, 0.0, _INF, -_INF, 0.0, 0.0], dtype=dt, device=x.device
        )
    if scratch is None or x.device.type != "cpu" or torch.compiler.is_compiling():
        # (traced by torch.compile: plain torch ops, no buffers keyed by thread)
        return _chunk_moments(x, torch.empty_like(x), torch.empty_like(x), dt)
    fused = scratch.fused()
    if fused is not None:
        if not fused.supports(x) and type(x) is torch.Tensor and x.layout == torch.strided:
            x = x.resolve_neg().contiguous()  # a strided or overlapping view: copy once
        if fused.supports(x):
            return fused.moments(x)
    flat = x.reshape(-1)
    if flat.numel() <= scratch.chunk:
        return _chunk_moments(flat, *scratch.get(flat.numel(), flat.dtype), dt)
    parts = [
        _chunk_moments(c, *scratch.get(c.numel(), c.dtype), dt) for c in flat.split(scratch.chunk)
    ]
    return _merge_parts(torch.stack(parts))


def _chunk_moments(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, dt: torch.dtype
) -> torch.Tensor:
    """Raw moments of ``x`` using ``a`` and ``b`` (same shape as ``x``) as scratch."""
    numel = x.numel()
    a = a.view(x.shape) if a.shape != x.shape else a
    b = b.view(x.shape) if b.shape != x.shape else b
    torch.nan_to_num(x, 0.0, 0.0, 0.0, out=a)  # finite values, 0 elsewhere
    total = a.sum()
    l1 = torch.abs(a, out=b).sum()
    nonzero = b.clamp_(max=1.0).ceil_().sum()
    torch.mul(x, 0, out=b)  # NaN where x is NaN/Inf, 0 elsewhere ...
    b.nan_to_num_(1.0, 1.0, 1.0)  # ... now 1 there
    nonfinite = b.sum()
    centre = total / (numel - nonfinite).clamp(min=1)
    # deviations from the finite mean, non-finite positions (a = 0) reset to 0
    dev = torch.linalg.vector_norm(a.sub_(centre).addcmul_(b, centre))
    # Extremes need their own passes: filling non-finite positions with the
    # mean instead would report the rounded mean as an extreme whenever all
    # finite values are equal.
    lo = torch.nan_to_num(x, _INF, _INF, _INF, out=a).amin()
    hi = torch.nan_to_num(x, -_INF, -_INF, -_INF, out=b).amax()
    return torch.stack(
        [total.new_full((), numel), nonfinite, total, centre, dev, lo, hi, l1, nonzero]
    ).to(dt)


def _merge_parts(p: torch.Tensor) -> torch.Tensor:
    """Device-side merge of raw moments ``(parts, 9)`` of chunks of one tensor."""
    n_f = p[:, 0] - p[:, 1]
    total = p[:, 2].sum()
    n_all = n_f.sum()
    centre = total / n_all.clamp(min=1)
    # Chan et al.: spread within chunks plus spread of chunk means (each chunk's
    # centre is its finite mean; chunks without finite values have n_f = 0).
    m2 = (p[:, 4] ** 2).sum() + (n_f * (p[:, 3] - centre) ** 2).sum()
    return torch.stack(
        [
            p[:, 0].sum(),
            p[:, 1].sum(),
            total,
            centre,
            m2.sqrt(),
            # a chunk without finite values holds its fill value: ignore it
            p[:, 5].masked_fill(n_f == 0, _INF).amin(),
            p[:, 6].masked_fill(n_f == 0, -_INF).amax(),
            p[:, 7].sum(),
            p[:, 8].sum(),
        ]
    )


def _finite_moments(raw: np.ndarray) -> tuple[np.ndarray, ...]:
    """(numel, nonfinite, n_finite, mean, var) of the finite elements, from raw moments."""
    numel = raw[..., _F["numel"]]
    k = raw[..., _F["nonfinite"]]
    n_f = numel - k
    c = raw[..., _F["centre"]]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = raw[..., _F["sum"]] / n_f
        # dev^2 = sum over finite elements of (x - c)^2, c close to their mean
        var = np.maximum(raw[..., _F["dev"]] ** 2 / n_f - (mean - c) ** 2, 0.0)
    return numel, k, n_f, mean, var


def finalize_moments(raw: np.ndarray) -> np.ndarray:
    """Raw moments ``(n, 9)`` -> activation statistics ``(n, 8)`` (:data:`ACTIVATION_STATS`).

    ``mean``, ``std`` (population), ``min``, ``max`` and ``abs_mean`` are over
    finite elements only and NaN when no element is finite.
    """
    raw = np.asarray(raw, dtype=np.float64).reshape(-1, len(MOMENT_FIELDS))
    numel, k, n_f, mean, var = _finite_moments(raw)
    with np.errstate(invalid="ignore", divide="ignore"):
        abs_mean = raw[:, _F["l1"]] / n_f
        zero_frac = (n_f - raw[:, _F["nonzero"]]) / numel
        nonfinite_frac = k / numel
    out = np.stack(
        [
            mean,
            np.sqrt(var),
            raw[:, _F["min"]],
            raw[:, _F["max"]],
            abs_mean,
            zero_frac,
            nonfinite_frac,
            numel,
        ],
        axis=1,
    )
    out[n_f <= 0, :5] = np.nan
    return out


def merge_moments(raw: np.ndarray) -> np.ndarray:
    """Merge raw moments of several parts ``(parts, n, 9)`` into ``(n, 9)``.

    The result describes the concatenated parts (up to rounding): counts and
    sums add, the spread combines with Chan et al.'s parallel update around
    the merged centre, extremes take min/max.
    """
    raw = np.asarray(raw, dtype=np.float64)
    numel, k, n_f, mean, var = _finite_moments(raw)
    has = n_f > 0
    tot_n = numel.sum(axis=0)
    tot_k = k.sum(axis=0)
    tot_f = n_f.sum(axis=0)
    total = raw[..., _F["sum"]].sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        g_mean = total / tot_f
        m2 = np.where(has, n_f * var + n_f * (np.where(has, mean, 0.0) - g_mean) ** 2, 0.0).sum(
            axis=0
        )
        centre = np.where(tot_f > 0, g_mean, 0.0)
    # In the raw layout the spread is measured around the centre (here the mean).
    dev2 = m2
    out = np.empty(raw.shape[1:], dtype=np.float64)
    out[:, _F["numel"]] = tot_n
    out[:, _F["nonfinite"]] = tot_k
    out[:, _F["sum"]] = total
    out[:, _F["centre"]] = centre
    out[:, _F["dev"]] = np.sqrt(np.maximum(dev2, 0.0))
    # a part without finite values holds no extremes (see tensor_moments)
    out[:, _F["min"]] = np.where(has, raw[..., _F["min"]], np.inf).min(axis=0)
    out[:, _F["max"]] = np.where(has, raw[..., _F["max"]], -np.inf).max(axis=0)
    out[:, _F["l1"]] = raw[..., _F["l1"]].sum(axis=0)
    out[:, _F["nonzero"]] = raw[..., _F["nonzero"]].sum(axis=0)
    return out
