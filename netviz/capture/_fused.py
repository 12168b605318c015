"""The fused one-pass moments kernel for CPU tensors (``_moments.c``), built at first use.

On CPU, the eager kernel of :func:`netviz.capture.stats.tensor_moments` costs
17 vectorised torch passes over each activation; this C kernel reads it once
(a block again from L1 cache only where it holds NaN/Inf or its spread would
cancel) and is 7-13x cheaper from a million elements on
(``benchmarks/bench_moments.py``; figures in ``docs/performance.md``). It is
compiled with the system's C compiler (``$CC``, else ``cc``, ``gcc`` or
``clang``) into a temporary file the first time a CPU statistic is taken,
loaded with :mod:`ctypes`, and the file is removed; nothing is cached on disk.

It is used only where it is safe, else :func:`load` returns ``None`` and the
eager kernel is used, with the same results:

- Linux, PyTorch's parallel backend is OpenMP, and the loaded kernel is bound
  to PyTorch's OpenMP runtime (a thread count it sets is what
  ``torch.get_num_threads`` reports), so its parallel regions run on
  PyTorch's own thread pool (a second pool would spin against it: measured
  20x slower);
- a C compiler is found and the build succeeds;
- a self-test on values with NaN, infinities, zeros and an all-equal block
  agrees with the eager kernel.

``NETVIZ_KERNEL=eager`` in the environment turns it off for the monitors
created while it is set (``watch(kernel=...)`` or a probe's ``kernel=``
chooses per monitor).
:func:`unavailable_reason` says why it is not used, for the warning given at
attach time (:meth:`netviz.capture.stats.Scratch.prepare`). The build and the
self-test run in a clean context (:func:`clean_context`: no ``torch.func``
transform, inference mode, autocast, grad mode or dispatch mode of the
caller), so a first use inside ``vmap`` or ``inference_mode`` is harmless.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Container, Iterator
from importlib import resources

import numpy as np
import torch

from netviz._compat import (
    disable_current_modes,
    disable_func_torch,
    is_functional_tensor,
    is_functorch_wrapped_tensor,
)

__all__ = ["FusedMoments", "clean_context", "load", "unavailable_reason"]

_SOURCE = "_moments.c"
_FLAGS = ("-O3", "-fopenmp", "-fno-math-errno", "-fPIC", "-shared")


class FusedMoments:
    """The loaded kernel: ``moments(x)`` -> raw moments (float64, 9) of a dense CPU tensor."""

    def __init__(self, lib: ctypes.CDLL, path: str):
        self.path = path  # where it was built (removed after loading)
        self._fns = {}
        for dtype, sym in (
            (torch.float32, "netviz_moments_f32"),
            (torch.float64, "netviz_moments_f64"),
        ):
            fn = getattr(lib, sym)
            fn.argtypes = (ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p)
            fn.restype = None
            self._fns[dtype] = fn
        self._sumsq = lib.netviz_sumsq
        self._sumsq.argtypes = (
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_int64,
            ctypes.c_void_p,
        )
        self._sumsq.restype = None
        self._threads = lib.netviz_omp_max_threads
        self._threads.restype = ctypes.c_int
        self._set_threads = lib.netviz_omp_set_num_threads
        self._set_threads.argtypes = (ctypes.c_int,)
        self._set_threads.restype = None
        self._lib = lib  # keep the library mapped

    def kernels(self) -> dict[torch.dtype, Callable[[int, int, int], None]]:
        """``{dtype: fn(data_ptr, numel, out_ptr)}``: the raw entry points (float32, float64).

        ``fn`` writes the 9 raw moments (float64) of ``numel`` contiguous
        elements at ``data_ptr`` to ``out_ptr``; the caller checks the tensor
        (:func:`in_place_plain`). For hot paths that write into a larger
        buffer (no output tensor per call).
        """
        return dict(self._fns)

    def supports(self, x: torch.Tensor) -> bool:
        """Whether ``x`` can be reduced where it lies: float32/64 on CPU, dense, non-overlapping."""
        return in_place_readable(x, self._fns)

    def moments(self, x: torch.Tensor) -> torch.Tensor:
        """Raw moments of ``x`` (see :meth:`supports`), laid out as ``MOMENT_FIELDS``.

        Statistics do not depend on element order, so a channels-last tensor
        is read in its memory order.
        """
        out = torch.empty(9, dtype=torch.float64)
        self._fns[x.dtype](x.data_ptr(), x.numel(), out.data_ptr())
        return out

    def sum_squares(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        """Sums of squares (float64, one per tensor) of float32/float64 CPU tensors, one call.

        Half-precision, non-contiguous or lazily negated tensors are copied to
        dense float32 first (squares do not depend on the order of elements).
        """
        dense = []
        for t in tensors:
            if t.dtype not in self._fns:
                t = t.float()
            if not self.supports(t):
                t = t.resolve_neg().contiguous()
            dense.append(t)
        return self.sum_squares_dense(dense)

    def sum_squares_dense(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        """:meth:`sum_squares` of tensors the caller checked: dense float32/64 CPU, contiguous."""
        count = len(tensors)
        ptrs = np.fromiter((t.data_ptr() for t in tensors), dtype=np.int64, count=count)
        lens = np.fromiter((t.numel() for t in tensors), dtype=np.int64, count=count)
        f64 = np.fromiter((t.dtype == torch.float64 for t in tensors), dtype=np.int32, count=count)
        out = torch.empty(count, dtype=torch.float64)
        self._sumsq(ptrs.ctypes.data, lens.ctypes.data, f64.ctypes.data, count, out.data_ptr())
        return out


_F32_F64 = (torch.float32, torch.float64)


def in_place_plain(x: torch.Tensor) -> bool:
    """:func:`in_place_readable` and an ordinary tensor (no functorch wrapper, functional
    or nested tensor) for a caller that checked the dtype: the hot path's one check."""
    return (
        not torch.compiler.is_compiling()  # first: nothing below is traced
        and type(x) is torch.Tensor
        and x.is_cpu
        and x.layout == torch.strided
        and not x.is_neg()
        and not x.is_nested
        and (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last))
        and not _is_wrapped(x)
        and not _is_functional(x)
    )


_is_wrapped = is_functorch_wrapped_tensor
_is_functional = is_functional_tensor


def in_place_readable(x: torch.Tensor, dtypes: Container[torch.dtype]) -> bool:
    """Whether a C kernel can read ``x`` where it lies: a plain dense CPU tensor of ``dtypes``.

    Plain tensor (no fake, functional or distributed subclass), not traced by
    ``torch.compile``, strided, not lazily negated, contiguous or channels-last.
    """
    return (
        type(x) is torch.Tensor
        and not torch.compiler.is_compiling()
        and x.dtype in dtypes
        and x.device.type == "cpu"
        and x.layout == torch.strided
        and not x.is_neg()  # a lazy negation is not in memory
        and (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last))
    )


def _compiler() -> str | None:
    for cand in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cand and shutil.which(cand):
            return cand
    return None


def _shares_torch_threads(kernel: FusedMoments) -> bool:
    """Whether the kernel's OpenMP runtime is PyTorch's.

    The kernel sets its runtime's thread count and PyTorch must see it
    (``torch.get_num_threads`` reads the OpenMP runtime PyTorch uses); the
    count is put back. A second OpenMP runtime elsewhere in the process, such
    as scikit-learn's bundled libgomp, does not matter: what counts is the one
    the kernel is bound to.
    """
    before = kernel._threads()
    if before != torch.get_num_threads():
        return False
    try:
        kernel._set_threads(before + 1)
        return torch.get_num_threads() == before + 1
    finally:
        kernel._set_threads(before)


def _build(cc: str, workdir: str) -> str | None:
    src = os.path.join(workdir, _SOURCE)
    with open(src, "w") as fh:
        fh.write(resources.files("netviz.capture").joinpath(_SOURCE).read_text())
    return compile_library(cc, src, os.path.join(workdir, "netviz_moments.so"))


def compile_library(cc: str, src: str, out: str) -> str | None:
    """Compile ``src`` into the shared library ``out`` (its path), or ``None`` on failure.

    ``-march=native`` first (the file is built for, and used on, this machine
    only), then without it for compilers that do not know the flag.
    """
    for extra in (("-march=native",), ()):
        cmd = [cc, *_FLAGS, *extra, src, "-o", out]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        if done.returncode == 0:
            return out
    return None


def _self_test(kernel: FusedMoments) -> bool:
    """The kernel's raw moments against float64 torch.

    On NaN, infinities, zeros and an all-equal block, and on magnitudes whose
    squares overflow or underflow (the scaled second read).
    """
    g = torch.Generator().manual_seed(0)
    for dtype, scale in (
        (torch.float32, 3.0),
        (torch.float64, 3.0),
        (torch.float32, 1e18),
        (torch.float32, 1e-30),
        (torch.float64, 1e200),
    ):
        x = torch.randn(70_000, generator=g, dtype=dtype) * scale + scale / 3
        x[::97] = 0.0
        x[5], x[77], x[1500] = float("nan"), float("inf"), -float("inf")
        x[2048:3072] = 57.06212361653646 * scale  # one all-equal block
        fin = x[torch.isfinite(x)].double()
        mean = fin.mean()
        unit = float(fin.abs().max())  # float64 reference computed near 1 (no overflow)
        want = torch.stack(
            [
                torch.tensor(float(x.numel()), dtype=torch.float64),
                torch.tensor(float(x.numel() - fin.numel()), dtype=torch.float64),
                fin.sum(),
                mean,
                ((fin - mean) / unit).norm() * unit,
                fin.min(),
                fin.max(),
                fin.abs().sum(),
                (fin != 0).sum().double(),
            ]
        )
        got = kernel.moments(x)
        exact = [0, 1, 5, 6, 8]  # counts and extremes
        if not torch.equal(got[exact], want[exact]):
            return False
        if not torch.allclose(got, want, rtol=1e-5, atol=0.0):
            return False
        fin = x.nan_to_num(0.0, 0.0, 0.0)
        sq = kernel.sum_squares([fin, x[:6], x[6:78]])  # finite; NaN; +inf
        want_sq = float(((fin.double() / unit) ** 2).sum()) * unit * unit
        if not (math.isclose(sq[0], want_sq, rel_tol=1e-5) and sq[1].isnan() and sq[2].isinf()):
            return False
    return True


@contextlib.contextmanager
def clean_context() -> Iterator[None]:
    """No ``torch.func`` transform, inference mode, autocast, grad or dispatch mode of the caller."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(disable_func_torch())
        stack.enter_context(disable_current_modes())
        stack.enter_context(torch.inference_mode(False))
        stack.enter_context(torch.no_grad())
        stack.enter_context(torch.autocast("cpu", enabled=False))
        yield


def load() -> FusedMoments | None:
    """Build and load the fused kernel once per process, or ``None`` where it cannot be used."""
    return _load()[0]


def unavailable_reason() -> str:
    """Why :func:`load` gives ``None`` (``""`` where the kernel is used)."""
    return _load()[1]


#: A reason :func:`unavailable_reason` never gives now (the environment is read per
#: monitor, :func:`env_chooses_eager`); kept for callers that test for it.
CHOSEN_EAGER = "NETVIZ_KERNEL=eager is set"


def env_chooses_eager() -> bool:
    """Whether ``NETVIZ_KERNEL=eager`` is set now (read when a monitor is created).

    The choice is never cached for the process: only the build and the
    self-test of the kernel are (:func:`load`), keyed by nothing but the
    machine they ran on.
    """
    return os.environ.get("NETVIZ_KERNEL", "").lower() == "eager"


@functools.cache
def _load() -> tuple[FusedMoments | None, str]:
    if platform.system() != "Linux":
        return None, f"it is built on Linux only, not on {platform.system() or 'this platform'}"
    if "OpenMP" not in torch.__config__.parallel_info():
        return None, "this PyTorch build does not use OpenMP"
    cc = _compiler()
    if cc is None:
        return None, "no C compiler was found ($CC, cc, gcc or clang)"
    with clean_context(), tempfile.TemporaryDirectory(prefix="netviz-kernel-") as workdir:
        path = _build(cc, workdir)
        if path is None:
            return None, f"the C compiler {cc!r} failed to build it"
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            return None, f"it was built but could not be loaded ({exc})"
        kernel = FusedMoments(lib, path)
        # Its parallel regions must run on PyTorch's own OpenMP threads.
        if not _shares_torch_threads(kernel):
            return None, "it would not run on PyTorch's own OpenMP runtime"
        if not _self_test(kernel):
            return None, "it failed its self-test on this machine (please report this)"
    return kernel, ""
