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
import tempfile
import warnings
from collections.abc import Callable, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from netviz._compat import tensor_version
from netviz.capture import _fused
from netviz.errors import NetvizRuntimeError

if TYPE_CHECKING:  # pragma: no cover
    from netviz.capture._fused import FusedMoments
    from netviz.capture.histogram_grid import HistogramGrid

__all__ = ["FusedHistogram", "SharedRead", "get", "load"]


def _out_of_memory() -> MemoryError:
    return MemoryError("netviz: the histogram kernel could not allocate its counters")


_SOURCE = "_hist.c"
_INCLUDED = "_moments.c"  # the moments kernel, for the one-read moments + counts


class FusedHistogram:
    """The loaded kernel: ``histogram(tensors, grid)`` -> counts (float64) of dense CPU tensors."""

    def __init__(self, lib: ctypes.CDLL, path: str):
        self.path = path  # where it was built (removed after loading)
        self._log: dict[torch.dtype, Any] = {}
        self._lin: dict[torch.dtype, Any] = {}
        self._mh_log: dict[torch.dtype, Any] = {}
        self._mh_lin: dict[torch.dtype, Any] = {}
        log_args = (ctypes.c_uint64, ctypes.c_int, ctypes.c_int64)  # lo bits, shift, bins
        lin_args = (ctypes.c_void_p, ctypes.c_int64)  # edges, bins
        for dtype, suffix in ((torch.float32, "f32"), (torch.float64, "f64")):
            for table, name, grid_args, outputs in (
                (self._log, "hist_log", log_args, 1),  # counts
                (self._lin, "hist_lin", lin_args, 1),
                (self._mh_log, "mh_log", log_args, 2),  # moments, counts
                (self._mh_lin, "mh_lin", lin_args, 2),
            ):
                fn = getattr(lib, f"netviz_{name}_{suffix}")
                fn.argtypes = (
                    ctypes.c_void_p,
                    ctypes.c_int64,
                    *grid_args,
                    *(ctypes.c_void_p,) * outputs,
                )
                fn.restype = ctypes.c_int
                table[dtype] = fn
        arrays = (ctypes.c_void_p,) * 4 + (ctypes.c_int64, ctypes.c_int64)
        self._many_log = lib.netviz_hist_log_many
        self._many_log.argtypes = (
            *arrays,
            ctypes.c_uint64,
            ctypes.c_int,
            ctypes.c_uint64,
            ctypes.c_int,
            ctypes.c_int64,
            ctypes.c_void_p,
        )
        self._many_log.restype = ctypes.c_int
        self._many_lin = lib.netviz_hist_lin_many
        self._many_lin.argtypes = (*arrays, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p)
        self._many_lin.restype = ctypes.c_int
        self._threads = lib.netviz_hist_omp_max_threads
        self._threads.restype = ctypes.c_int
        self._set_threads = lib.netviz_hist_omp_set_num_threads
        self._set_threads.argtypes = (ctypes.c_int,)
        self._set_threads.restype = None
        self._lib = lib  # keep the library mapped

    def supports(self, x: torch.Tensor) -> bool:
        """Whether ``x`` can be counted where it lies: float32/64 on CPU, dense, non-overlapping."""
        return _fused.in_place_readable(x, self._log)

    def _args(self, grid: HistogramGrid, dtype: torch.dtype) -> tuple[Any, Any, tuple]:
        """(counting function, moments + counting function, grid arguments) for ``dtype``.

        Cached on the grid.
        """
        cache = grid._kernel_args
        args = cache.get(dtype)
        if args is None:
            if grid.kind == "log":
                lo, shift = grid.log_bits(dtype)
                args = (self._log[dtype], self._mh_log[dtype], (lo, shift, grid.magnitude_bins))
            else:
                inner = grid.edges[1:-1]  # a contiguous view of the grid's (read-only) edges
                args = (
                    self._lin[dtype],
                    self._mh_lin[dtype],
                    (inner.ctypes.data, grid.params["bins"]),
                )
            cache[dtype] = args
        return args

    def _readable(self, tensors: Sequence[torch.Tensor]) -> list[torch.Tensor] | None:
        """``tensors`` as the kernels read them (see :meth:`histogram`), or ``None``."""
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
        return ready

    def histograms(
        self, groups: Sequence[Sequence[torch.Tensor]], grid: HistogramGrid
    ) -> torch.Tensor | None:
        """Counts of each group of CPU tensors (one row per group) in one call; ``None`` if one is unsupported.

        One parallel region for all of them (a step's parameter gradients),
        instead of one per tensor; tensors as in :meth:`histogram`.
        """
        ready: list[torch.Tensor] = []
        seg: list[int] = []
        for i, group in enumerate(groups):
            tensors = self._readable(group)
            if tensors is None:
                return None
            ready += tensors
            seg += [i] * len(tensors)
        out = torch.zeros(len(groups), len(grid.fields), dtype=torch.float64)
        ptrs = torch.tensor([x.data_ptr() for x in ready], dtype=torch.int64)
        lens = torch.tensor([x.numel() for x in ready], dtype=torch.int64)
        f64 = torch.tensor([x.dtype == torch.float64 for x in ready], dtype=torch.int32)
        segs = torch.tensor(seg, dtype=torch.int32)
        args: tuple[int, ...]
        if grid.kind == "log":
            lo32, shift32 = grid.log_bits(torch.float32)
            lo64, shift64 = grid.log_bits(torch.float64)
            fn, args = self._many_log, (lo32, shift32, lo64, shift64, grid.magnitude_bins)
        else:
            inner = grid.edges[1:-1]
            fn, args = self._many_lin, (inner.ctypes.data, grid.params["bins"])
        rc = fn(
            ptrs.data_ptr(),
            lens.data_ptr(),
            f64.data_ptr(),
            segs.data_ptr(),
            len(ready),
            len(groups),
            *args,
            out.data_ptr(),
        )
        if rc != 0:
            raise _out_of_memory()
        return out

    def moments_histogram(
        self, x: torch.Tensor, grid: HistogramGrid
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw moments (as :meth:`FusedMoments.moments <netviz.capture._fused.FusedMoments.moments>`)
        and counts on ``grid`` of ``x`` in one read.

        The moments are the moments kernel's algorithm, blocks, threads and
        merge order; where the compiler contracts a multiply-add differently
        in the two libraries, a sum may differ in its last bits.

        ``x`` must be :meth:`supported <supports>`.
        """
        mom = torch.empty(9, dtype=torch.float64)
        out = torch.zeros(len(grid.fields), dtype=torch.float64)
        _, fn, args = self._args(grid, x.dtype)
        if fn(x.data_ptr(), x.numel(), *args, mom.data_ptr(), out.data_ptr()) != 0:
            raise _out_of_memory()
        return mom, out

    def histogram(
        self, tensors: Sequence[torch.Tensor], grid: HistogramGrid
    ) -> torch.Tensor | None:
        """Counts of CPU ``tensors`` together, laid out as ``grid.fields``; ``None`` if one is unsupported.

        Half precision is counted in float32 (exact), a strided view from a
        contiguous copy. Counts do not depend on element order, so a
        channels-last tensor is read in its memory order.
        """
        ready = self._readable(tensors)
        if ready is None:
            return None
        out = torch.zeros(len(grid.fields), dtype=torch.float64)
        ptr = out.data_ptr()
        for x in ready:
            n = x.numel()
            if n:
                fn, _, args = self._args(grid, x.dtype)
                if fn(x.data_ptr(), n, *args, ptr) != 0:
                    raise _out_of_memory()
        return out


def _build(cc: str, workdir: str) -> str | None:
    src = os.path.join(workdir, _SOURCE)
    for name in (_SOURCE, _INCLUDED):
        try:
            text = resources.files("netviz.capture").joinpath(name).read_text()
        except OSError:  # an installation without the C sources
            return None
        with open(os.path.join(workdir, name), "w") as fh:
            fh.write(text)
    return _fused.compile_library(cc, src, os.path.join(workdir, "netviz_hist.so"))


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
            want = numpy_reference(x, grid)
            got = kernel.histogram([x], grid)
            if got is None or not np.array_equal(got.numpy(), want):
                return False
            moments, counts = kernel.moments_histogram(x, grid)
            if not np.array_equal(counts.numpy(), want):
                return False
            groups = [[x[:100], x[5000:]], [x[100:5000]], []]
            many = kernel.histograms(groups, grid)
            parts = [
                numpy_reference(torch.cat([t.ravel() for t in g] or [x[:0]]), grid) for g in groups
            ]
            if many is None or not np.array_equal(many.numpy(), np.stack(parts)):
                return False
            plain = _fused.load()  # the one-read moments must be the moments kernel's
            if plain is not None:
                want_m = plain.moments(x)
                exact = [0, 1, 5, 6, 8]  # counts, extremes; sums to rounding (FMA contraction)
                if not torch.equal(moments[exact], want_m[exact]) or not torch.allclose(
                    moments, want_m, rtol=1e-12, atol=0.0
                ):
                    return False
    return True


@functools.cache
def load() -> FusedHistogram | None:
    """Build and load the histogram kernel once per process, or ``None`` where it cannot be used.

    Only the build and the self-test are cached; ``NETVIZ_KERNEL`` is read by
    :func:`get` on every call, so the choice is never fixed for the process.
    """
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
    loaded = None if _fused.env_chooses_eager() else load()
    if loaded is None and kernel == "fused":
        raise NetvizRuntimeError(
            "the fused histogram kernel is not available here: it needs Linux, "
            "PyTorch with OpenMP, a C compiler ($CC, cc, gcc or clang) and "
            "NETVIZ_KERNEL not set to 'eager'; use kernel='auto' or 'eager'"
        )
    return loaded


def _key(x: torch.Tensor) -> tuple:
    """What identifies the values of ``x`` between two probes' hooks of one module call."""
    return (x.data_ptr(), x.dtype, x.shape, x.stride(), tensor_version(x))


class SharedRead:
    """One read of a module's output for both ``activation_stats`` and ``activation_hist``.

    On CPU the moments kernel and the histogram kernel each read the whole
    activation; :meth:`FusedHistogram.moments_histogram` reads it once for
    both. The two probes run one after the other in the same module call
    (the monitor calls its forward probes in their order), so the first one
    computes both and leaves the other's part, keyed by the tensor's storage
    address, shape, strides and version, for the second one to take:

    - ``activation_stats`` first (``hist_first=False``): its
      :class:`~netviz.capture.stats.Scratch` calls :meth:`moments` (the
      ``Scratch.share`` hook) which, on a step the histogram probe counts,
      leaves the counts; the histogram probe takes them with :meth:`counts`.
    - ``activation_hist`` first: :meth:`counts` computes both and leaves the
      moments; the hook returns them.

    Every call of the first probe replaces what was left, so nothing
    outlives the module call it belongs to. A tensor the two probes see
    differently (half precision: each converts it to its own float32 copy)
    does not match; each then reads it alone, with the same results (with
    ``activation_stats`` first, its read counts its copy for nothing).
    """

    def __init__(
        self,
        kernel: FusedHistogram,
        grid: HistogramGrid,
        wanted: Callable[[], bool],
        hist_first: bool,
    ):
        self._kernel = kernel
        self._grid = grid
        self._wanted = wanted  # whether the histogram probe counts this step
        self.hist_first = hist_first
        self._left: tuple[tuple, torch.Tensor] | None = None

    def moments(self, fused: FusedMoments, x: torch.Tensor) -> torch.Tensor:
        """The ``Scratch.share`` hook: the moments of ``x`` (supported by ``fused``)."""
        left, self._left = self._left, None
        if self.hist_first:
            if left is not None and left[0] == _key(x):
                return left[1]
            return fused.moments(x)
        if not self._wanted():
            return fused.moments(x)
        moments, counts = self._kernel.moments_histogram(x, self._grid)
        self._left = (_key(x), counts)
        return moments

    def counts(self, x: torch.Tensor) -> torch.Tensor | None:
        """The counts of ``x`` for the histogram probe, or ``None`` (count it alone)."""
        left, self._left = self._left, None
        if not self.hist_first:
            return left[1] if left is not None and left[0] == _key(x) else None
        if not self._kernel.supports(x):
            return None
        moments, counts = self._kernel.moments_histogram(x, self._grid)
        self._left = (_key(x), moments)
        return counts

    def clear(self) -> None:
        """Drop what was left (the histogram probe skips a call)."""
        self._left = None
