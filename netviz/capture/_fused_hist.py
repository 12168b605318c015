"""The one-pass histogram kernel for CPU tensors (``_hist.c``), built at first use.

Built and loaded like the fused moments kernel (:mod:`netviz.capture._fused`,
whose compiler lookup, flags and OpenMP check it reuses): compiled with the
system's C compiler into a temporary directory the first time a CPU histogram
is taken, loaded with :mod:`ctypes`, and used only where

- Linux, PyTorch's parallel backend is OpenMP, and the kernel's OpenMP runtime
  is PyTorch's own (its parallel regions run on PyTorch's thread pool; a
  second pool would spin against it);
- a C compiler is found and the build succeeds;
- a self-test on values with NaN, infinities, zeros, subnormals and values
  exactly on bin edges gives exactly ``numpy.histogram``'s counts.

Else :func:`load` returns ``None`` and torch operations count the same bins
(:func:`netviz.capture.histogram.torch_histogram`). ``NETVIZ_KERNEL=eager``
turns it off for a process.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import subprocess
import tempfile
import warnings
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np
import torch

from netviz.capture import _fused

if TYPE_CHECKING:  # pragma: no cover
    from netviz.capture.histogram_grid import HistogramGrid

__all__ = ["FusedHistogram", "get", "load"]

_SOURCE = "_hist.c"


class FusedHistogram:
    """The loaded kernel: ``histogram(tensors, grid)`` -> counts (float64) of dense CPU tensors."""

    def __init__(self, lib: ctypes.CDLL, path: str):
        self.path = path  # where it was built (removed after loading)
        self._log, self._lin = {}, {}
        for dtype, suffix in ((torch.float32, "f32"), (torch.float64, "f64")):
            fn = getattr(lib, f"netviz_hist_log_{suffix}")
            fn.argtypes = (
                ctypes.c_void_p,
                ctypes.c_int64,
                ctypes.c_uint64,
                ctypes.c_int,
                ctypes.c_int64,
                ctypes.c_void_p,
            )
            fn.restype = ctypes.c_int
            self._log[dtype] = fn
            fn = getattr(lib, f"netviz_hist_lin_{suffix}")
            fn.argtypes = (
                ctypes.c_void_p,
                ctypes.c_int64,
                ctypes.c_void_p,
                ctypes.c_int64,
                ctypes.c_void_p,
            )
            fn.restype = ctypes.c_int
            self._lin[dtype] = fn
        self._threads = lib.netviz_hist_omp_max_threads
        self._threads.restype = ctypes.c_int
        self._set_threads = lib.netviz_hist_omp_set_num_threads
        self._set_threads.argtypes = (ctypes.c_int,)
        self._set_threads.restype = None
        self._lib = lib  # keep the library mapped

    def supports(self, x: torch.Tensor) -> bool:
        """Whether ``x`` can be counted where it lies: float32/64 on CPU, dense, non-overlapping."""
        return _fused.in_place_readable(x, self._log)

    def _args(self, grid: HistogramGrid, dtype: torch.dtype) -> tuple:
        """(C function, grid arguments) for ``dtype``, cached on the grid."""
        cache = grid._kernel_args
        args = cache.get(dtype)
        if args is None:
            if grid.kind == "log":
                lo, shift = grid.log_bits(dtype)
                args = (self._log[dtype], (lo, shift, grid.magnitude_bins))
            else:
                inner = grid.edges[1:-1]  # a contiguous view of the grid's (read-only) edges
                args = (self._lin[dtype], (inner.ctypes.data, grid.params["bins"]))
            cache[dtype] = args
        return args

    def histogram(
        self, tensors: Sequence[torch.Tensor], grid: HistogramGrid
    ) -> torch.Tensor | None:
        """Counts of CPU ``tensors`` together, laid out as ``grid.fields``; ``None`` if one is unsupported.

        Half precision is counted in float32 (exact), a strided view from a
        contiguous copy. Counts do not depend on element order, so a
        channels-last tensor is read in its memory order.
        """
        ready = []
        for x in tensors:
            x = x.detach()
            if x.dtype not in self._log:  # half precision (exact), integers, bool, complex
                x = x.abs().float() if x.is_complex() else x.float()
            if not self.supports(x):
                if type(x) is not torch.Tensor or x.layout != torch.strided:
                    return None
                x = x.resolve_neg().contiguous()  # a strided view: copy once
                if not self.supports(x):
                    return None
            ready.append(x)
        out = torch.zeros(len(grid.fields), dtype=torch.float64)
        ptr = out.data_ptr()
        for x in ready:
            n = x.numel()
            if n:
                fn, args = self._args(grid, x.dtype)
                if fn(x.data_ptr(), n, *args, ptr) != 0:
                    raise MemoryError(
                        "netviz: the histogram kernel could not allocate its counters"
                    )
        return out


def _build(cc: str, workdir: str) -> str | None:
    src = os.path.join(workdir, _SOURCE)
    try:
        text = resources.files("netviz.capture").joinpath(_SOURCE).read_text()
    except OSError:  # an installation without the C source
        return None
    with open(src, "w") as fh:
        fh.write(text)
    out = os.path.join(workdir, "netviz_hist.so")
    for extra in (("-march=native",), ()):
        cmd = [cc, *_fused._FLAGS, *extra, src, "-o", out]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        if done.returncode == 0:
            return out
    return None


def self_test_values(dtype: torch.dtype, grid: HistogramGrid, n: int = 70_000) -> torch.Tensor:
    """Values that exercise every branch of a kernel: specials, subnormals, edges, both signs."""
    g = torch.Generator().manual_seed(0)
    x = (
        torch.randn(n, generator=g, dtype=torch.float64)
        * 10.0 ** torch.randint(-12, 12, (n,), generator=g).double()
    ).to(dtype)
    finite = grid.edges[1:-1]
    finite = finite[(np.abs(finite) < float(torch.finfo(dtype).max))]
    on_edges = torch.tensor(finite, dtype=torch.float64).to(dtype)
    k = on_edges.numel()
    x[:k] = on_edges  # exactly on every edge (rounded to dtype where not exact)
    x[k : k + 100] = 0.0
    x[k + 100 : k + 110] = -0.0
    tiny = torch.finfo(dtype).tiny
    x[k + 110 : k + 120] = tiny / 4  # subnormal
    x[k + 120 : k + 130] = -tiny / 8
    x[k + 130], x[k + 131], x[k + 132] = float("nan"), float("inf"), -float("inf")
    x[k + 133 : k + 140] = torch.finfo(dtype).max
    return x


def numpy_reference(x: torch.Tensor, grid: HistogramGrid) -> np.ndarray:
    """``numpy.histogram`` counts of the finite values on ``grid.edges``, then NaN, +Inf, -Inf."""
    a = x.detach().double().cpu().numpy().ravel()
    fin = a[np.isfinite(a)]
    counts, _ = np.histogram(fin, bins=grid.edges)
    special = [np.isnan(a).sum(), (a == np.inf).sum(), (a == -np.inf).sum()]
    return np.concatenate([counts, special]).astype(np.float64)


def _self_test(kernel: FusedHistogram) -> bool:
    from netviz.capture.histogram_grid import HistogramGrid

    for grid in (HistogramGrid.log(), HistogramGrid.linear(-3.0, 5.0, 40)):
        for dtype in (torch.float32, torch.float64):
            x = self_test_values(dtype, grid)
            got = kernel.histogram([x], grid)
            if got is None or not np.array_equal(got.numpy(), numpy_reference(x, grid)):
                return False
    return True


@functools.cache
def load() -> FusedHistogram | None:
    """Build and load the histogram kernel once per process, or ``None`` where it cannot be used."""
    if os.environ.get("NETVIZ_KERNEL", "").lower() == "eager":
        return None
    if platform.system() != "Linux" or "OpenMP" not in torch.__config__.parallel_info():
        return None
    cc = _fused._compiler()
    if cc is None:
        return None
    with tempfile.TemporaryDirectory(prefix="netviz-kernel-") as workdir:
        path = _build(cc, workdir)
        if path is None:
            return None
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            return None
        kernel = FusedHistogram(lib, path)
    if not _fused._shares_torch_threads(kernel):  # type: ignore[arg-type]
        return None
    if not _self_test(kernel):
        warnings.warn(
            "netviz: the histogram kernel failed its self-test on this machine; "
            "using torch operations (please report this)",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return kernel


def get(kernel: str) -> FusedHistogram | None:
    """The C kernel for ``kernel`` (``"auto"``, ``"fused"`` or ``"eager"``), or ``None``."""
    if kernel == "eager":
        return None
    loaded = load()
    if loaded is None and kernel == "fused":
        raise RuntimeError(
            "the fused histogram kernel is not available here: it needs Linux, "
            "PyTorch with OpenMP, a C compiler ($CC, cc, gcc or clang) and "
            "NETVIZ_KERNEL not set to 'eager'; use kernel='auto' or 'eager'"
        )
    return loaded
