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
import warnings
from collections.abc import Callable

import numpy as np
import torch

from netviz._compat import (
    disable_func_torch,
    functorch_unwrap,
    is_fake,
    is_functional_tensor,
    is_functorch_wrapped_tensor,
    jagged_has_lengths,
)
from netviz.capture import _fused
from netviz.capture._fused import FusedMoments
from netviz.capture._triton_moments import maybe_triton_moments
from netviz.errors import NetvizRuntimeError, NetvizValueError

__all__ = [
    "KERNELS",
    "MOMENT_FIELDS",
    "Scratch",
    "buffer_dtype",
    "finalize_moments",
    "merge_moments",
    "moments_or_skip",
    "readable_tensor",
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
    # values lose all precision; the conversion is exact); float32/float64 are
    # used as they are; integers become float64 on CPU (exact below 2**53).
    if x.dtype in (torch.float32, torch.float64):
        return x
    if x.is_complex():
        x = x.abs()
    if not x.is_floating_point() and x.dtype != torch.bool and x.device.type == "cpu":
        return x.double()
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
            raise NetvizValueError(f"`chunk` must be >= 1, got {chunk}")
        if kernel not in KERNELS:
            raise NetvizValueError(
                f"`kernel` must be one of {', '.join(map(repr, KERNELS))}, got {kernel!r}"
            )
        self.chunk = chunk
        self.kernel = kernel
        # NETVIZ_KERNEL=eager, read now and again at attach (prepare): per monitor
        self.env_eager = _fused.env_chooses_eager()
        #: Where set, the fused kernel's moments of a supported CPU tensor are
        #: ``share(fused, x)`` instead of ``fused.moments(x)``: a histogram probe
        #: on the same modules reads the tensor once for both (issue #14).
        self.share: Callable[[FusedMoments, torch.Tensor], torch.Tensor] | None = None
        self._buffers: dict[tuple[int, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}
        if kernel == "fused":
            self.fused()  # fail here, not in the first forward hook

    def fused(self) -> FusedMoments | None:
        """The fused CPU kernel this scratch uses, or ``None`` for the eager one.

        ``"auto"`` uses it where it can be built and loaded safely (see
        :mod:`netviz.capture._fused`); ``"fused"`` requires it.
        """
        if self.kernel == "eager" or (self.kernel == "auto" and self.env_eager):
            return None
        kernel = _fused.load()
        if kernel is None and self.kernel == "fused":
            raise NetvizRuntimeError(
                "the fused moments kernel is not available here "
                f"({_fused.unavailable_reason()}): it needs Linux, PyTorch with OpenMP and "
                "a C compiler ($CC, cc, gcc or clang); use kernel='auto' or 'eager'"
            )
        return kernel

    def prepare(self, model: torch.nn.Module | None = None) -> FusedMoments | None:
        """Build and self-test the fused kernel now (at attach time), not in a forward hook.

        Where ``kernel="auto"`` falls back to the eager kernel for a model
        with CPU tensors (or ``model=None``), warns once per process what is
        slower and why, and how to silence it; nothing is said where the
        eager kernel was chosen (``kernel="eager"`` or ``NETVIZ_KERNEL=eager``).
        """
        self.env_eager = _fused.env_chooses_eager()
        fused = self.fused()
        reason = _fused.unavailable_reason()
        chosen = self.env_eager or reason == _fused.CHOSEN_EAGER
        if fused is None and self.kernel == "auto" and not chosen:
            self._warn_fallback(model, reason)
        return fused

    @property
    def eager(self) -> bool:
        """Whether this scratch's statistics use the torch-op kernel by choice."""
        return self.kernel == "eager" or (self.kernel == "auto" and self.env_eager)

    @staticmethod
    def _warn_fallback(model: torch.nn.Module | None, reason: str) -> None:
        if model is not None:
            tensors = [*model.parameters(), *model.buffers()]
            if tensors and all(t.device.type != "cpu" for t in tensors):
                return  # CUDA statistics never use the fused kernel
        warnings.warn(
            "netviz: statistics of CPU tensors use the torch-operation kernel, several "
            f"times slower than the fused C kernel (see docs/performance.md), because {reason}. "
            "Choose it explicitly to silence this warning: NETVIZ_KERNEL=eager in the "
            "environment, or kernel='eager' for ActivationStats / GradStats.",
            RuntimeWarning,
            stacklevel=1,  # one location: Python's default filter says it once
        )

    def get(self, n: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Two CPU buffers of ``n <= chunk`` elements."""
        key = (threading.get_ident(), dtype)
        bufs = self._buffers.get(key)
        if bufs is None or bufs[0].numel() < n:
            size = max(n, min(self.chunk, 1 << 12))
            # never inference tensors: a first use under inference_mode must not
            # make them unwritable in later training forwards
            with torch.inference_mode(False):
                bufs = (torch.empty(size, dtype=dtype), torch.empty(size, dtype=dtype))
            self._buffers[key] = bufs
        return bufs[0][:n], bufs[1][:n]


def tensor_moments(x: torch.Tensor, scratch: Scratch | None = None) -> torch.Tensor:
    """Raw moments of ``x`` as a 1-D device tensor laid out as :data:`MOMENT_FIELDS`.

    Runs entirely on ``x``'s device and never synchronises with the host. Only
    cheap, vectorised element-wise passes and reductions are used (``isfinite``,
    comparisons producing ``bool`` and Welford's ``var_mean`` are many times
    slower on CPU): non-finite elements are zeroed with ``nan_to_num`` and
    counted as ``nan_to_num(x * 0, 1)``, non-zeros are counted as
    ``sign(|x|)``, sums are taken of the values times a power of two that
    brings the largest magnitude near 1 (exact; no square can overflow or
    underflow), and the spread is measured around the finite mean ``c`` in a
    second pass, corrected by the sum of deviations (Chan, Golub & LeVeque's
    corrected two-pass algorithm; squares summed with ``sum``, whose pairwise
    summation is far more accurate than ``vector_norm``'s on CPU). With a
    :class:`Scratch` (CPU)
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
    x = x.detach()
    eager = scratch.eager if scratch is not None else _fused.env_chooses_eager()
    if x.is_cuda and not eager:
        # one fused Triton launch (two above 2,048 elements) instead of the
        # torch-op kernel, where Triton imports and its self-test passed
        fused_cuda = maybe_triton_moments(x, chosen=True)
        if fused_cuda is not None:
            return fused_cuda
    x = _as_float(x)
    dt = buffer_dtype(x.device)
    if x.numel() == 0:
        return torch.tensor(
            [0.0, 0.0, 0.0, 0.0, 0.0, _INF, -_INF, 0.0, 0.0], dtype=dt, device=x.device
        )
    if x.device.type != "cpu" or torch.compiler.is_compiling():
        # (traced by torch.compile: plain torch ops, no buffers keyed by thread)
        flat = x.reshape(-1)
        return _chunk_moments(flat, torch.empty_like(flat), torch.empty_like(flat), dt)
    if scratch is None:  # CPU: chunks keep the float32 sums accurate
        scratch = Scratch(kernel="eager")
    fused = scratch.fused()
    if fused is not None:
        if not fused.supports(x) and type(x) is torch.Tensor and x.layout == torch.strided:
            x = x.resolve_neg().contiguous()  # a strided or overlapping view: copy once
        if fused.supports(x):
            return fused.moments(x) if scratch.share is None else scratch.share(fused, x)
    flat = x.reshape(-1)
    if flat.numel() <= scratch.chunk:
        return _chunk_moments(flat, *scratch.get(flat.numel(), flat.dtype), dt)
    parts = [
        _chunk_moments(c, *scratch.get(c.numel(), c.dtype), dt) for c in flat.split(scratch.chunk)
    ]
    return _merge_parts(torch.stack(parts))


_SPARSE = (torch.sparse_coo, torch.sparse_csr, torch.sparse_csc, torch.sparse_bsr, torch.sparse_bsc)


def _unwrap_functorch(x: torch.Tensor) -> torch.Tensor:
    """The plain tensor under ``torch.func`` wrappers (grad, vmap: the whole batch), exact."""
    return functorch_unwrap(x)


def _plain(x: torch.Tensor) -> bool:
    """A dense tensor with values in memory, read as it is (the common case, checked cheaply)."""
    return (
        type(x) is torch.Tensor
        and x.layout == torch.strided
        and not x.is_meta
        and not x.is_nested
        and not x.is_quantized
        and not is_functorch_wrapped_tensor(x)
        and not is_functional_tensor(x)
    )


def readable_tensor(x: torch.Tensor) -> tuple[torch.Tensor | None, int, str]:
    """``(dense, implicit_zeros, "")`` holding ``x``'s values exactly, or ``(None, 0, reason)``.

    ``torch.func`` wrappers are unwrapped (the values of the whole batch
    under ``vmap``), sparse tensors give their stored values (the other
    elements are ``implicit_zeros`` zeros), nested tensors their elements and
    quantized tensors their dequantized values. Meta, fake and functionalized
    tensors hold no values: they give a reason instead.
    """
    if _plain(x):
        return x, 0, ""
    x = _unwrap_functorch(x.detach())
    if x.is_meta:
        return None, 0, "meta tensor (no data)"
    if is_fake(x):
        return None, 0, "fake tensor (no data)"
    if is_functional_tensor(x):
        return None, 0, "functionalized tensor (torch.func.functionalize)"
    if x.layout in _SPARSE:
        values = x.coalesce().values() if x.layout == torch.sparse_coo else x.values()
        return values, x.numel() - values.numel(), ""
    if x.is_nested:
        if x.layout == torch.jagged and not jagged_has_lengths(x):
            return x.values(), 0, ""  # the packed buffer holds exactly the elements
        parts = [t.reshape(-1) for t in x.unbind()]
        return (torch.cat(parts) if parts else x.new_empty(0, layout=torch.strided)), 0, ""
    if x.is_quantized:
        return x.dequantize(), 0, ""
    return x, 0, ""


def moments_or_skip(
    x: torch.Tensor, scratch: Scratch | None = None
) -> tuple[torch.Tensor | None, str]:
    """:func:`tensor_moments` of any tensor a hook may see, or ``(None, reason)``.

    Never raises for an unusual tensor or context: see :func:`readable_tensor`
    for what is read; a tensor subclass whose operations fail is skipped with
    the error as the reason. Under ``torch.compile`` tracing the statistics
    are traced as torch operations.
    """
    if torch.compiler.is_compiling() or _plain(x):
        return tensor_moments(x, scratch), ""
    dense, zeros, reason = readable_tensor(x)
    if dense is None:
        return None, reason
    with disable_func_torch():
        if type(dense) in (torch.Tensor, torch.nn.Parameter):
            moments = tensor_moments(dense, scratch)
        else:
            try:  # a subclass decides what its operations do
                moments = tensor_moments(dense, scratch)
            except Exception as exc:  # the subclass fails, not netviz
                return None, f"tensor subclass {type(dense).__name__} cannot be read ({exc})"
        if zeros:
            zero = torch.zeros(len(MOMENT_FIELDS), dtype=moments.dtype, device=moments.device)
            zero[_F["numel"]] = zeros
            moments = _merge_parts(torch.stack([moments, zero]))
    return moments, ""


def _pow2_scale(amax: torch.Tensor) -> torch.Tensor:
    """``2**-e`` (0-dim, ``amax``'s dtype) with ``amax * 2**-e`` in [0.5, 1); 1 for 0 or non-finite."""
    if amax.device.type == "mps":  # no frexp there: float32 buffers, unscaled
        return torch.ones_like(amax)
    limit = 1022 if amax.dtype == torch.float64 else 126  # stay a normal number
    exponent = torch.frexp(amax.nan_to_num(0.0, 0.0, 0.0)).exponent.clamp_(-limit, limit)
    return torch.ldexp(torch.ones_like(amax), exponent.neg_())


def _chunk_moments(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, dt: torch.dtype
) -> torch.Tensor:
    """Raw moments of the 1-D ``x`` using ``a`` and ``b`` (same shape as ``x``) as scratch."""
    numel = x.numel()
    # Extremes need their own passes: filling non-finite positions with the
    # mean instead would report the rounded mean as an extreme whenever all
    # finite values are equal. Their magnitude sets the scale of the sums.
    lo = torch.nan_to_num(x, _INF, _INF, _INF, out=a).amin()
    hi = torch.nan_to_num(x, -_INF, -_INF, -_INF, out=b).amax()
    scale = _pow2_scale(torch.maximum(-lo, hi))
    torch.nan_to_num(x, 0.0, 0.0, 0.0, out=a)  # finite values, 0 elsewhere
    torch.sign(a, out=b)  # before scaling: tiny values stay non-zero
    nonzero = torch.dot(b, b)  # (dot: one read pass, pairwise-accurate within a chunk)
    a.mul_(scale)  # |a| <= 1: sums of squares can neither overflow nor underflow
    total = a.sum()
    l1 = torch.dot(a, b)  # sum of |a|
    torch.mul(x, 0, out=b)  # NaN where x is NaN/Inf, 0 elsewhere ...
    b.nan_to_num_(1.0, 1.0, 1.0)  # ... now 1 there
    nonfinite = b.sum()
    n_f = numel - nonfinite
    centre = total / n_f.clamp(min=1)
    # deviations from the finite mean, non-finite positions (a = 0) reset to 0
    a.sub_(centre).addcmul_(b, centre)
    err = a.sum()  # sum of deviations: corrects the rounding of the centre
    sq = torch.dot(a, a)
    # in the buffer dtype (float64: the sum n_f * c + err keeps err's digits),
    # with few small operations (each costs as much as a pass over 4K elements)
    v = torch.stack([nonfinite, centre, err, sq, lo, hi, l1, nonzero, scale]).to(dt)
    k, c, err, sq, lo, hi, l1, nonzero, scale = v.unbind()
    total = torch.addcmul(err, numel - k, c)
    scaled = (torch.stack([total, c, sq.sqrt(), l1]) / scale).unbind()
    return torch.stack([k.new_full((), numel), k, *scaled[:3], lo, hi, scaled[3], nonzero])


def _merge_parts(p: torch.Tensor) -> torch.Tensor:
    """Device-side merge of raw moments ``(parts, 9)`` of chunks of one tensor."""
    n_f = p[:, 0] - p[:, 1]
    total = p[:, 2].sum()
    n_all = n_f.sum()
    centre = total / n_all.clamp(min=1)
    # Sum of (x - centre)^2 over chunk i, from dev_i^2 = sum of (x - c_i)^2:
    # dev_i^2 + 2 (c_i - centre) (sum_i - n_i c_i) + n_i (c_i - centre)^2, all
    # divided by the square of the largest term's root (no overflow; chunks
    # without finite values have n_f = dev = 0).
    shift = torch.where(n_f > 0, p[:, 3] - centre, 0.0)
    err = torch.where(n_f > 0, p[:, 2] - n_f * p[:, 3], 0.0)
    unit = torch.maximum(p[:, 4].amax(), (n_f.sqrt() * shift.abs()).amax())
    unit = torch.where(unit > 0, unit, 1.0)
    d, s, e = p[:, 4] / unit, shift / unit, err / unit
    m2 = (d * d + 2 * s * e + n_f * s * s).sum().clamp(min=0)
    return torch.stack(
        [
            p[:, 0].sum(),
            p[:, 1].sum(),
            total,
            centre,
            m2.sqrt() * unit,
            # a chunk without finite values holds its fill value: ignore it
            p[:, 5].masked_fill(n_f == 0, _INF).amin(),
            p[:, 6].masked_fill(n_f == 0, -_INF).amax(),
            p[:, 7].sum(),
            p[:, 8].sum(),
        ]
    )


def _finite_moments(raw: np.ndarray) -> tuple[np.ndarray, ...]:
    """(numel, nonfinite, n_finite, mean, std) of the finite elements, from raw moments."""
    numel = raw[..., _F["numel"]]
    k = raw[..., _F["nonfinite"]]
    n_f = numel - k
    c = raw[..., _F["centre"]]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mean = raw[..., _F["sum"]] / n_f
        # dev^2 = sum over finite elements of (x - c)^2, c close to their mean:
        # var = dev^2 / n - (mean - c)^2, as (r - d)(r + d) with r = dev / sqrt(n)
        # so that no square of a large deviation overflows
        r = raw[..., _F["dev"]] / np.sqrt(n_f)
        d = np.abs(mean - c)
        std = np.sqrt(np.maximum(r - d, 0.0)) * np.sqrt(r + d)
    return numel, k, n_f, mean, std


def finalize_moments(raw: np.ndarray) -> np.ndarray:
    """Raw moments ``(n, 9)`` -> activation statistics ``(n, 8)`` (:data:`ACTIVATION_STATS`).

    ``mean``, ``std`` (population), ``min``, ``max`` and ``abs_mean`` are over
    finite elements only and NaN when no element is finite.
    """
    raw = np.asarray(raw, dtype=np.float64).reshape(-1, len(MOMENT_FIELDS))
    numel, k, n_f, mean, std = _finite_moments(raw)
    with np.errstate(invalid="ignore", divide="ignore"):
        abs_mean = raw[:, _F["l1"]] / n_f
        zero_frac = (n_f - raw[:, _F["nonzero"]]) / numel
        nonfinite_frac = k / numel
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
    out[n_f <= 0, :5] = np.nan
    return out


def merge_moments(raw: np.ndarray) -> np.ndarray:
    """Merge raw moments of several parts ``(parts, n, 9)`` into ``(n, 9)``.

    The result describes the concatenated parts (up to rounding): counts and
    sums add, the spread combines with Chan et al.'s parallel update around
    the merged centre, extremes take min/max.
    """
    raw = np.asarray(raw, dtype=np.float64)
    numel, k, n_f, mean, std = _finite_moments(raw)
    has = n_f > 0
    tot_n = numel.sum(axis=0)
    tot_k = k.sum(axis=0)
    tot_f = n_f.sum(axis=0)
    total = raw[..., _F["sum"]].sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        g_mean = total / tot_f
        # sum of n_i (std_i^2 + (mean_i - g_mean)^2), divided by the largest
        # term's square root squared (no overflow)
        shift = np.where(has, np.sqrt(n_f) * np.abs(np.where(has, mean, 0.0) - g_mean), 0.0)
        spread = np.where(has, np.sqrt(n_f) * std, 0.0)
        unit = np.maximum(shift.max(axis=0), spread.max(axis=0))
        unit = np.where(unit > 0, unit, 1.0)
        dev = np.sqrt(((spread / unit) ** 2 + (shift / unit) ** 2).sum(axis=0)) * unit
        centre = np.where(tot_f > 0, g_mean, 0.0)
    # In the raw layout the spread is measured around the centre (here the mean).
    out = np.empty(raw.shape[1:], dtype=np.float64)
    out[:, _F["numel"]] = tot_n
    out[:, _F["nonfinite"]] = tot_k
    out[:, _F["sum"]] = total
    out[:, _F["centre"]] = centre
    out[:, _F["dev"]] = dev
    # a part without finite values holds no extremes (see tensor_moments)
    out[:, _F["min"]] = np.where(has, raw[..., _F["min"]], np.inf).min(axis=0)
    out[:, _F["max"]] = np.where(has, raw[..., _F["max"]], -np.inf).max(axis=0)
    out[:, _F["l1"]] = raw[..., _F["l1"]].sum(axis=0)
    out[:, _F["nonzero"]] = raw[..., _F["nonzero"]].sum(axis=0)
    return out
