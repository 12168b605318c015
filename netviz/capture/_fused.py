"""The fused one-pass moments kernel for CPU tensors (``_moments.c``), built at first use.

On CPU, the eager kernel of :func:`netviz.capture.stats.tensor_moments` costs
17 vectorised passes over each activation; this C kernel reads it once (and
each 4 KiB block a second time from L1 cache) and is 5-10x cheaper. It is
compiled with the system's C compiler (``$CC``, else ``cc``, ``gcc`` or
``clang``) into a temporary file the first time a CPU statistic is taken,
loaded with :mod:`ctypes`, and the file is removed; nothing is cached on disk.

It is used only where it is safe, else :func:`load` returns ``None`` and the
eager kernel is used, with the same results:

- Linux, PyTorch's parallel backend is OpenMP, and after loading exactly one
  OpenMP runtime is mapped in the process (the kernel's parallel regions then
  run on PyTorch's own thread pool; a second runtime would spin against it);
- a C compiler is found and the build succeeds;
- a self-test on values with NaN, infinities, zeros and an all-equal block
  agrees with the eager kernel.

``NETVIZ_KERNEL=eager`` in the environment turns it off for a process.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import resources

import torch

__all__ = ["FusedMoments", "load"]

_SOURCE = "_moments.c"
_FLAGS = ("-O3", "-fopenmp", "-fno-math-errno", "-fPIC", "-shared")
_OMP_LIB = re.compile(r"/lib(gomp|omp|iomp5)[^/]*\.so[^/]*$")


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
        self._threads = lib.netviz_omp_max_threads
        self._threads.restype = ctypes.c_int
        self._lib = lib  # keep the library mapped

    def supports(self, x: torch.Tensor) -> bool:
        """Whether ``x`` can be reduced in place: float32/64 on CPU, dense and non-overlapping."""
        return (
            x.dtype in self._fns
            and x.device.type == "cpu"
            and (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last))
        )

    def moments(self, x: torch.Tensor) -> torch.Tensor:
        """Raw moments of ``x`` (see :meth:`supports`), laid out as ``MOMENT_FIELDS``.

        Statistics do not depend on element order, so a channels-last tensor
        is read in its memory order.
        """
        out = torch.empty(9, dtype=torch.float64)
        self._fns[x.dtype](x.data_ptr(), x.numel(), out.data_ptr())
        return out


def _compiler() -> str | None:
    for cand in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cand and shutil.which(cand):
            return cand
    return None


def _omp_runtimes() -> set[str]:
    """Paths of the OpenMP runtimes mapped in this process (Linux)."""
    found = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split(maxsplit=5)[-1].strip()
            if _OMP_LIB.search(path):
                found.add(os.path.realpath(path))
    return found


def _build(cc: str, workdir: str) -> str | None:
    src = os.path.join(workdir, _SOURCE)
    with open(src, "w") as fh:
        fh.write(resources.files("netviz.capture").joinpath(_SOURCE).read_text())
    out = os.path.join(workdir, "netviz_moments.so")
    # -march=native first (the file is built for, and used on, this machine only)
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
    from netviz.capture.stats import _chunk_moments

    g = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(70_000, generator=g, dtype=dtype) * 3 + 1
        x[::97] = 0.0
        x[5], x[77], x[1500] = float("nan"), float("inf"), -float("inf")
        x[2048:3072] = 171.18637084960938  # one all-equal block
        want = _chunk_moments(x, torch.empty_like(x), torch.empty_like(x), torch.float64)
        got = kernel.moments(x)
        exact = [0, 1, 5, 6, 8]  # counts and extremes
        if not torch.equal(got[exact], want[exact]):
            return False
        if not torch.allclose(got, want, rtol=1e-5, atol=1e-6):
            return False
    return True


@functools.cache
def load() -> FusedMoments | None:
    """Build and load the fused kernel once per process, or ``None`` where it cannot be used."""
    if os.environ.get("NETVIZ_KERNEL", "").lower() == "eager":
        return None
    if platform.system() != "Linux" or "OpenMP" not in torch.__config__.parallel_info():
        return None
    cc = _compiler()
    if cc is None:
        return None
    before = _omp_runtimes()
    with tempfile.TemporaryDirectory(prefix="netviz-kernel-") as workdir:
        path = _build(cc, workdir)
        if path is None:
            return None
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            return None
        kernel = FusedMoments(lib, path)
    # One OpenMP runtime (PyTorch's): ours must have bound to it, not loaded another.
    if len(_omp_runtimes()) != 1 or (before and _omp_runtimes() != before):
        return None
    if kernel._threads() != torch.get_num_threads():
        return None
    if not _self_test(kernel):
        print("netviz: fused moments kernel failed its self-test; using eager", file=sys.stderr)
        return None
    return kernel
