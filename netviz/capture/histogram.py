"""Fixed histogram grids and the device-side histogram of a tensor.

A :class:`HistogramGrid` is a fixed set of bins, the same at every step and
for every layer, so that histograms over training line up bin by bin. Two
kinds:

- :meth:`HistogramGrid.log` (the default): a signed log-magnitude grid. Per
  sign, ``per_octave`` bins per power of two from ``2**min_exp`` to
  ``2**max_exp`` (default ``2**-27`` ~ 7.5e-9 to ``2**27`` ~ 1.3e8, 4 bins per
  octave: edges ``2**k * (1, 1.25, 1.5, 1.75)``), an underflow bin on each side
  of zero (``0 < |x| < 2**min_exp``), a bin for zero itself, and an overflow
  bin on each side (``|x| >= 2**max_exp``). Every edge is a power of two times
  a small dyadic fraction, exactly representable in float32, float16's range
  aside.
- :meth:`HistogramGrid.linear`: ``bins`` equal bins between ``lo`` and ``hi``,
  with an underflow bin ``[-inf, lo)`` and an overflow bin ``[hi, inf)``.

Bins are half-open ``[lo, hi)`` in value space, exactly as
``numpy.histogram(x, bins=grid.edges)`` counts them; the zero bin of the log
grid is ``[0, 5e-324)`` (5e-324 is the smallest positive float64), so it
holds exactly the zeros (``-0.0`` included). NaN, +Inf and -Inf are never put
in a bin: they are counted apart. Every element is counted once, so the
counts sum to ``numel``.

:func:`tensor_histogram` counts on the tensor's device and never synchronises
with the host; on CPU a one-pass C kernel (:mod:`netviz.capture._fused_hist`)
does it where it can be built, torch operations elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from netviz.capture import _fused_hist
from netviz.capture.histogram_grid import NONFINITE_FIELDS, HistogramGrid  # re-exported
from netviz.capture.stats import KERNELS, buffer_dtype
from netviz.errors import NetvizValueError

__all__ = ["NONFINITE_FIELDS", "HistogramGrid", "tensor_histogram"]


def _as_binnable(x: torch.Tensor) -> torch.Tensor:
    if x.dtype in (torch.float32, torch.float64):
        return x
    if x.is_complex():
        x = x.abs()
    return x.float()  # half precision (exact), integers, bool


def _log_index(x: torch.Tensor, grid: HistogramGrid) -> torch.Tensor:
    """Bin index of every element of float32/float64 ``x`` on a log grid (torch ops)."""
    if x.dtype == torch.float64:
        it, exp, maxpos = torch.int64, 0x7FF0000000000000, 0x7FFFFFFFFFFFFFFF
    else:
        it, exp, maxpos = torch.int32, 0x7F800000, 0x7FFFFFFF
    nm = grid.magnitude_bins
    lo, shift = grid.log_bits(x.dtype)
    b = x.reshape(-1).view(it)
    neg = b < 0
    u = b & maxpos
    v = u - neg.to(it)
    c = torch.bitwise_right_shift(v - lo, shift).clamp_(-1, nm).add_(1)  # 0 .. nm + 1
    idx = torch.where(neg, (nm + 1) - c, c + (nm + 3))
    idx = torch.where(u == 0, nm + 2, idx)
    special = (u == exp).to(it) * (neg.to(it) + 1) + (2 * nm + 5)  # NaN, +Inf, -Inf
    return torch.where(u >= exp, special, idx)


def _linear_index(x: torch.Tensor, grid: HistogramGrid) -> torch.Tensor:
    nb = grid.params["bins"]
    x64 = x.reshape(-1).to(torch.float64)
    idx = torch.bucketize(x64, grid.edges_on(x.device), right=True)
    special = torch.where(torch.isnan(x64), nb + 2, torch.where(x64 > 0, nb + 3, nb + 4))
    return torch.where(torch.isfinite(x64), idx, special)


def _count(idx: torch.Tensor, n_fields: int, dt: torch.dtype, histc: bool) -> torch.Tensor:
    if not histc:
        return torch.bincount(idx, minlength=n_fields).to(dt)
    if torch.are_deterministic_algorithms_enabled():
        # histc (atomic adds) refuses to run in deterministic mode: sort the
        # indices and find where each bin starts instead (exact, no sync)
        ordered = torch.sort(idx.to(torch.int32)).values
        bounds = torch.arange(n_fields + 1, dtype=torch.int32, device=idx.device)
        return torch.diff(torch.searchsorted(ordered, bounds)).to(dt)
    # bincount sizes its output from the largest index (a host sync on CUDA);
    # histc with a fixed range does not. Its float32 counts are exact in
    # chunks of at most 2**24 elements, which are summed in float64.
    parts = [
        torch.histc(c.to(torch.float32), bins=n_fields, min=0, max=n_fields).to(dt)
        for c in idx.split(1 << 24)
    ]
    return torch.stack(parts).sum(0) if len(parts) > 1 else parts[0]


def torch_histogram(
    tensors: Sequence[torch.Tensor], grid: HistogramGrid, *, histc: bool | None = None
) -> torch.Tensor:
    """Counts of ``tensors`` together on ``grid`` with torch operations (any device).

    ``histc`` picks the counting kernel (default: on every device but the CPU).
    """
    dev = tensors[0].device
    dt = buffer_dtype(dev)
    n_fields = len(grid.fields)
    out = torch.zeros(n_fields, dtype=dt, device=dev)
    for t in tensors:
        t = _as_binnable(t.detach())
        if t.numel() == 0:
            continue
        if not t.is_contiguous():
            t = t.contiguous()
        idx = _log_index(t, grid) if grid.kind == "log" else _linear_index(t, grid)
        use_histc = t.device.type != "cpu" if histc is None else histc
        out = out + _count(idx, n_fields, dt, use_histc)
    return out


def tensor_histogram(
    x: torch.Tensor | Sequence[torch.Tensor], grid: HistogramGrid, kernel: str = "auto"
) -> torch.Tensor:
    """Counts of ``x`` (a tensor, or several counted together) on ``grid``.

    Returns a 1-D tensor on ``x``'s device, ``len(grid.fields)`` values: the
    count of each bin, then the NaN, +Inf and -Inf counts (float64, exact to
    2**53; float32 on MPS). Nothing is synchronised with the host.

    ``kernel``: ``"auto"`` counts CPU tensors with the one-pass C kernel
    where it can be built (see :mod:`netviz.capture._fused_hist`), ``"fused"``
    requires it, ``"eager"`` uses torch operations only. CUDA tensors always
    use torch operations.

    >>> grid = HistogramGrid.linear(0.0, 1.0, 2)
    >>> tensor_histogram(torch.tensor([0.2, 0.7, 0.9, 3.0, float("nan")]), grid).tolist()
    [0.0, 1.0, 2.0, 1.0, 1.0, 0.0, 0.0]
    """
    if kernel not in KERNELS:
        raise NetvizValueError(
            f"`kernel` must be one of {', '.join(map(repr, KERNELS))}, got {kernel!r}"
        )
    tensors = [x] if isinstance(x, torch.Tensor) else list(x)
    if not tensors:
        raise NetvizValueError("no tensor to count")
    fused = _fused_hist.get(kernel)
    if fused is not None and tensors[0].device.type == "cpu":
        out = fused.histogram(tensors, grid)
        if out is not None:
            return out
    return torch_histogram(tensors, grid)
