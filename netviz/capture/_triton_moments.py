"""The fused moments kernel for CUDA tensors, written in Triton, loaded at first use.

On CUDA, the eager kernel of :func:`netviz.capture.stats.tensor_moments` is
about 17 torch operations, each a kernel launch, per activation. This module
computes the same :data:`~netviz.capture.stats.MOMENT_FIELDS` vector (float64)
with one Triton launch for tensors of up to ``BLOCK`` elements and two above,
writing into a device tensor without any host synchronisation:

1. ``_partials_kernel``: each program reads tiles of ``BLOCK`` elements
   (at most ``MAX_PROGRAMS`` programs, each looping over its share of tiles)
   once into registers. Per tile, non-finite elements (NaN, +-Inf) are masked
   out of every finite statistic and counted; the finite values are scaled by
   a power of two close to the tile's max ``|x|`` (exact: a power of two only
   moves the exponent), so the tile's sum, ``|x|`` sum and centred squares
   stay near 1 and can neither overflow nor underflow in float32, whatever
   the magnitude (``1e-30`` and ``1e30`` alike); the tile's spread is taken
   around its mean with the corrected two-pass formula (no cancellation).
   Tiles are merged into the program's float64 accumulators with Chan et
   al.'s parallel update. With a single program (``numel <= BLOCK``) the
   program writes the final vector itself: one launch.
2. ``_merge_kernel`` (one small program): the per-program partials
   (``(programs, 9)`` float64) are merged in float64: counts, sums, extremes
   add up or reduce, and the spread is ``sum(m2_i) + sum(n_i (mean_i - c)^2)``
   around the finite mean ``c`` (Chan et al., in the vectorised form).

float16 and bfloat16 are read as such and computed in float32, float32 in
float32 (scaled, see above), float64 in float64; partials and the result are
float64 (:func:`netviz.capture.stats.buffer_dtype` on CUDA).

Selection, like the CPU kernel's (:mod:`netviz.capture._fused`):
:func:`maybe_triton_moments` returns ``None`` (use the torch-op kernel)
unless Triton is importable, ``NETVIZ_KERNEL`` is not ``eager``, the tensor is
a plain CUDA tensor of a supported dtype (or a CPU tensor while Triton's
interpreter, ``TRITON_INTERPRET=1``, is on: that is how CI tests the kernel
without a GPU), and a self-test against a float64 reference passed on that
device and dtype (run once, in a clean context: no autograd, no inference
mode, no autocast, no active dispatch mode). ``import netviz`` does not
import Triton: it is imported at the first call that may use it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings

import torch

from netviz._compat import disable_current_modes

__all__ = ["maybe_triton_moments", "moments", "triton_moments_available"]

#: Elements per tile (a power of two).
BLOCK = 2048
#: Most programs of the first launch; the merge reads this many rows at most.
MAX_PROGRAMS = 1024
_SUPPORTED = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_PART = 9  # partial row: n_f, nonfinite, sum, mean, m2, min, max, l1, nonzero

# Set by _kernels() on first use (Triton resolves a kernel's names in its module).
triton = None
tl = None


def _partials_kernel(
    x_ptr, part_ptr, n, BLOCK: tl.constexpr, F64: tl.constexpr, FINAL: tl.constexpr
):
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    ntiles = tl.cdiv(n, BLOCK)
    zero = tl.zeros((), dtype=tl.float64)
    n_a = zero
    k_a = zero
    s_a = zero
    mean_a = zero
    m2_a = zero
    l1_a = zero
    nz_a = zero
    mn_a = zero + float("inf")
    mx_a = zero - float("inf")
    for t in range(pid, ntiles, nprog):
        offs = tl.cast(t, tl.int64) * BLOCK + tl.arange(0, BLOCK)
        valid = offs < n
        if F64:
            v = tl.load(x_ptr + offs, mask=valid, other=0.0).to(tl.float64)
        else:
            v = tl.load(x_ptr + offs, mask=valid, other=0.0).to(tl.float32)
        fin = valid & (tl.abs(v) < float("inf"))  # False for NaN, +-Inf, padding
        vz = tl.where(fin, v, 0.0)
        amax = tl.max(tl.abs(vz), axis=0)
        # scale = 2**floor(log2(amax)) clamped to normal numbers, inv = 1 / scale:
        # both exact powers of two built from the exponent bits
        if F64:
            e = (amax.to(tl.int64, bitcast=True) >> 52) & 0x7FF
            e = tl.minimum(tl.maximum(e, 1), 2045)
            scale = (e << 52).to(tl.float64, bitcast=True)
            inv = ((2046 - e) << 52).to(tl.float64, bitcast=True)
        else:
            e = (amax.to(tl.int32, bitcast=True) >> 23) & 0xFF
            e = tl.minimum(tl.maximum(e, 1), 253)
            scale = (e << 23).to(tl.float32, bitcast=True)
            inv = ((254 - e) << 23).to(tl.float32, bitcast=True)
        y = vz * inv  # |y| < 4
        nb = tl.sum(fin.to(tl.int32), axis=0)
        nzb = tl.sum((fin & (v != 0)).to(tl.int32), axis=0)
        kb = tl.sum((valid & (fin == 0)).to(tl.int32), axis=0)
        sy = tl.sum(y, axis=0)
        my = sy / tl.maximum(nb, 1).to(y.dtype)
        d = tl.where(fin, y - my, 0.0)
        ed = tl.sum(d, axis=0).to(tl.float64)  # rounding of my (corrected two-pass)
        qd = tl.sum(d * d, axis=0).to(tl.float64)
        l1y = tl.sum(tl.abs(y), axis=0)
        mnb = tl.min(tl.where(fin, v, float("inf")), axis=0).to(tl.float64)
        mxb = tl.max(tl.where(fin, v, -float("inf")), axis=0).to(tl.float64)
        sc = scale.to(tl.float64)
        n_b = nb.to(tl.float64)
        n_safe = tl.maximum(n_b, 1.0)
        mean_b = (my.to(tl.float64) + ed / n_safe) * sc
        m2_b = tl.maximum(qd - ed * (ed / n_safe), 0.0) * sc * sc
        # Chan et al.: merge the tile into the program's accumulators
        n_ab = n_a + n_b
        delta = mean_b - mean_a
        w = n_b / tl.maximum(n_ab, 1.0)
        mean_a = mean_a + delta * w
        m2_a = m2_a + m2_b + (delta * (n_a * w)) * delta  # 0 (not inf * 0) when n_a = 0
        n_a = n_ab
        k_a = k_a + kb.to(tl.float64)
        s_a = s_a + sy.to(tl.float64) * sc
        l1_a = l1_a + l1y.to(tl.float64) * sc
        nz_a = nz_a + nzb.to(tl.float64)
        mn_a = tl.minimum(mn_a, mnb)
        mx_a = tl.maximum(mx_a, mxb)
    if FINAL:  # one program: part_ptr is the output, laid out as MOMENT_FIELDS
        tl.store(part_ptr + 0, n_a + k_a)
        tl.store(part_ptr + 1, k_a)
        tl.store(part_ptr + 2, s_a)
        tl.store(part_ptr + 3, mean_a)
        tl.store(part_ptr + 4, tl.sqrt(m2_a))
        tl.store(part_ptr + 5, mn_a)
        tl.store(part_ptr + 6, mx_a)
        tl.store(part_ptr + 7, l1_a)
        tl.store(part_ptr + 8, nz_a)
    else:
        row = part_ptr + pid * 9
        tl.store(row + 0, n_a)
        tl.store(row + 1, k_a)
        tl.store(row + 2, s_a)
        tl.store(row + 3, mean_a)
        tl.store(row + 4, m2_a)
        tl.store(row + 5, mn_a)
        tl.store(row + 6, mx_a)
        tl.store(row + 7, l1_a)
        tl.store(row + 8, nz_a)


def _merge_kernel(part_ptr, out_ptr, rows, ROWS: tl.constexpr):
    i = tl.arange(0, ROWS)
    live = i < rows
    base = part_ptr + i * 9
    n_i = tl.load(base + 0, mask=live, other=0.0)
    k_i = tl.load(base + 1, mask=live, other=0.0)
    s_i = tl.load(base + 2, mask=live, other=0.0)
    mean_i = tl.load(base + 3, mask=live, other=0.0)
    m2_i = tl.load(base + 4, mask=live, other=0.0)
    mn_i = tl.load(base + 5, mask=live, other=float("inf"))
    mx_i = tl.load(base + 6, mask=live, other=-float("inf"))
    l1_i = tl.load(base + 7, mask=live, other=0.0)
    nz_i = tl.load(base + 8, mask=live, other=0.0)
    n = tl.sum(n_i, axis=0)
    k = tl.sum(k_i, axis=0)
    total = tl.sum(s_i, axis=0)
    c = total / tl.maximum(n, 1.0)
    dm = mean_i - c
    m2 = tl.sum(m2_i, axis=0) + tl.sum((n_i * dm) * dm, axis=0)  # rows with n_i = 0 add 0
    tl.store(out_ptr + 0, n + k)
    tl.store(out_ptr + 1, k)
    tl.store(out_ptr + 2, total)
    tl.store(out_ptr + 3, c)
    tl.store(out_ptr + 4, tl.sqrt(m2))
    tl.store(out_ptr + 5, tl.min(mn_i, axis=0))
    tl.store(out_ptr + 6, tl.max(mx_i, axis=0))
    tl.store(out_ptr + 7, tl.sum(l1_i, axis=0))
    tl.store(out_ptr + 8, tl.sum(nz_i, axis=0))


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


@functools.cache
def _kernels(interpret: bool):
    """``(partials, merge)`` decorated with ``triton.jit`` (interpreted or compiled), or ``None``."""
    global triton, tl
    try:
        import triton as _triton
        import triton.language as _tl
    except Exception:  # not installed, or broken (no driver, wrong version)
        return None
    triton, tl = _triton, _tl
    # triton.jit reads TRITON_INTERPRET when it decorates, Triton's own library
    # (tl.sum, ...) was decorated when triton was imported: both must agree
    kernels = (triton.jit(_partials_kernel), triton.jit(_merge_kernel))
    compiled = triton.runtime.JITFunction
    if isinstance(kernels[0], compiled) == interpret or isinstance(tl.sum, compiled) == interpret:
        return None  # TRITON_INTERPRET changed after triton was imported: do not mix modes
    return kernels


def _launch(kernels, x: torch.Tensor, out: torch.Tensor, block: int, max_programs: int) -> None:
    partials, merge = kernels
    n = x.numel()
    programs = max(1, min(-(-n // block), max_programs))
    f64 = x.dtype == torch.float64
    if programs == 1:
        partials[(1,)](
            x, out, n, BLOCK=block, F64=f64, FINAL=True, num_warps=4, enable_fp_fusion=False
        )
        return
    part = torch.empty((programs, _PART), dtype=torch.float64, device=x.device)
    partials[(programs,)](
        x, part, n, BLOCK=block, F64=f64, FINAL=False, num_warps=4, enable_fp_fusion=False
    )
    # one merge variant for every size (each ROWS is a compilation on first use)
    rows = max(MAX_PROGRAMS, 1 << (programs - 1).bit_length())
    merge[(1,)](part, out, programs, ROWS=rows, num_warps=4, enable_fp_fusion=False)


def _dense(x: torch.Tensor) -> torch.Tensor:
    """``x`` as a contiguous tensor over the same memory where it is dense, else a copy."""
    if x.is_contiguous():
        return x
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return x.permute(0, 2, 3, 1)  # statistics do not depend on element order
    if x.dim() == 5 and x.is_contiguous(memory_format=torch.channels_last_3d):
        return x.permute(0, 2, 3, 4, 1)
    return x.contiguous()


def moments(
    x: torch.Tensor,
    out: torch.Tensor | None = None,
    *,
    block: int = BLOCK,
    max_programs: int = MAX_PROGRAMS,
) -> torch.Tensor:
    """Raw moments of ``x`` (float16/bfloat16/float32/float64) laid out as ``MOMENT_FIELDS``.

    Launches the Triton kernels on ``x``'s device without synchronising; the
    result (float64, 9 elements) goes into ``out`` when given (a contiguous
    float64 tensor of 9 elements on ``x``'s device, e.g. a row of a step's
    buffer), else into a new tensor. A non-contiguous ``x`` is read in memory
    order where it is dense (channels-last) and copied otherwise. No
    availability check or self-test here: see :func:`maybe_triton_moments`.
    ``block`` (a power of two) and ``max_programs`` exist for tests.

    Raises ``RuntimeError`` where Triton cannot run on ``x`` (not importable;
    a CPU tensor without ``TRITON_INTERPRET=1``, or a CUDA tensor with it).
    """
    if x.dtype not in _SUPPORTED:
        raise TypeError(
            f"Triton moments take float16, bfloat16, float32 or float64 tensors, got {x.dtype}"
        )
    if block < 16 or block & (block - 1) or max_programs < 1:
        raise ValueError(
            f"`block` must be a power of two >= 16 and `max_programs` >= 1, "
            f"got {block} and {max_programs}"
        )
    interpret = _interpreting()
    if (x.device.type == "cpu") != interpret or x.device.type not in ("cpu", "cuda"):
        raise RuntimeError(
            f"Triton moments run on CUDA tensors, or on CPU tensors under TRITON_INTERPRET=1; "
            f"got a {x.device.type} tensor with TRITON_INTERPRET={'1' if interpret else 'unset'}"
        )
    kernels = _kernels(interpret)
    if kernels is None:
        raise RuntimeError(
            "Triton is not importable here (install netviz[cuda]), or TRITON_INTERPRET "
            "was changed after triton was imported"
        )
    return _run(kernels, x.detach(), _check_out(out, x), block, max_programs)


def _check_out(out: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    if out is None:
        return torch.empty(9, dtype=torch.float64, device=x.device)
    if out.dtype is not torch.float64 or out.numel() != 9 or not out.is_contiguous():
        raise ValueError(
            f"`out` must be a contiguous float64 tensor of 9 elements, got "
            f"{out.dtype} of shape {tuple(out.shape)}"
        )
    if out.device != x.device:
        raise ValueError(f"`out` must be on {x.device}, got {out.device}")
    return out


def _run(kernels, x: torch.Tensor, out: torch.Tensor, block: int, max_programs: int):
    """Launch on a detached tensor ``x`` of a supported dtype (checked by the callers)."""
    if x.is_neg():
        x = x.resolve_neg()
    x = _dense(x)
    if x.is_cuda and x.device.index != torch.cuda.current_device():
        with torch.cuda.device(x.device):  # Triton launches on the current device
            _launch(kernels, x, out, block, max_programs)
    else:
        _launch(kernels, x, out, block, max_programs)
    return out


def maybe_triton_moments(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor | None:
    """Raw moments of ``x`` from the Triton kernel, or ``None`` where it must not be used.

    The entry point for :func:`netviz.capture.stats.tensor_moments` on CUDA:
    ``None`` means "use the torch-op kernel". It is ``None`` unless ``x``
    (after ``detach``) is a plain strided tensor (no subclass, not traced by
    ``torch.compile``) of dtype float16, bfloat16, float32 or float64 on CUDA
    (on CPU only while ``TRITON_INTERPRET=1``), ``NETVIZ_KERNEL`` is not
    ``eager``, Triton is importable and the kernel passed its self-test on
    that device and dtype (run at the first such call; a failure warns once).
    Otherwise the moments are launched without a host synchronisation (see
    :func:`moments`, also for ``out``). Empty tensors give
    ``[0, 0, 0, 0, 0, inf, -inf, 0, 0]`` like the torch-op kernel.
    """
    if x.requires_grad or type(x) is not torch.Tensor:
        x = x.detach()  # (a Parameter detaches to a plain tensor)
    if type(x) is not torch.Tensor or x.dtype not in _SUPPORTED or x.layout != torch.strided:
        return None
    device = x.device
    if device.type == "cuda":
        interpret = False  # (a process interpreting Triton fails the check in _kernels)
    elif device.type == "cpu" and _interpreting():
        interpret = True
    else:
        return None
    if torch.compiler.is_compiling():
        return None
    ok = _VERDICTS.get((device, x.dtype, interpret))
    if ok is None:
        if interpret is False and torch.cuda.is_current_stream_capturing():
            return None  # the self-test reads its result on the host: not inside a CUDA graph
        ok = _ready(device, x.dtype, interpret)
    if not ok:
        return None
    return _run(_kernels(interpret), x, _check_out(out, x), BLOCK, MAX_PROGRAMS)


def triton_moments_available(
    device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> bool:
    """Whether :func:`maybe_triton_moments` uses the Triton kernel for ``dtype`` on ``device``.

    ``device`` defaults to the current CUDA device (the CPU while
    ``TRITON_INTERPRET=1``). The first call for a device and dtype imports
    Triton, compiles the kernels and runs the self-test; later calls are a
    cache lookup. Call it at attach time to pay that cost there.
    """
    interpret = _interpreting()
    if device is None:
        if not interpret and not torch.cuda.is_available():
            return False
        device = "cpu" if interpret else f"cuda:{torch.cuda.current_device()}"
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        if not torch.cuda.is_available():
            return False
        device = torch.device("cuda", torch.cuda.current_device())
    if device.type != ("cpu" if interpret else "cuda") or dtype not in _SUPPORTED:
        return False
    return _ready(device, dtype, interpret)


# (device, dtype, interpreted) -> whether the kernel passed its self-test there;
# filled once per process like the CPU kernel's loader (tests clear it)
_VERDICTS: dict[tuple[torch.device, torch.dtype, bool], bool] = {}


def _ready(device: torch.device, dtype: torch.dtype, interpret: bool) -> bool:
    key = (device, dtype, interpret)
    if key not in _VERDICTS:
        _VERDICTS[key] = _check(device, dtype, interpret)
    return _VERDICTS[key]


def _check(device: torch.device, dtype: torch.dtype, interpret: bool) -> bool:
    if os.environ.get("NETVIZ_KERNEL", "").lower() == "eager":
        return False
    if _kernels(interpret) is None:
        return False
    with _clean_context(device.type):
        try:
            ok = _self_test(device, dtype)
        except Exception as err:  # a compiler or driver failure: fall back
            warnings.warn(
                f"netviz: the Triton moments kernel failed to run on {device} for {dtype} "
                f"({type(err).__name__}: {err}); using the torch-op kernel",
                RuntimeWarning,
                stacklevel=4,
            )
            return False
    if not ok:
        warnings.warn(
            f"netviz: the Triton moments kernel failed its self-test on {device} for {dtype}; "
            "using the torch-op kernel (please report this)",
            RuntimeWarning,
            stacklevel=4,
        )
    return ok


@contextlib.contextmanager
def _clean_context(device_type: str):
    """No autograd, no inference mode, no autocast and no active dispatch mode."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.inference_mode(False))
        stack.enter_context(torch.no_grad())
        stack.enter_context(torch.autocast(device_type, enabled=False))
        stack.enter_context(disable_current_modes())
        yield


def _self_test(device: torch.device, dtype: torch.dtype) -> bool:
    """The kernel against float64 on NaN, infinities, zeros, an all-equal run, wide magnitudes.

    Covers one program (one launch), and several programs each looping over
    several tiles (two launches).
    """
    g = torch.Generator().manual_seed(0)
    n = 3 * BLOCK + 17
    mag = 10.0 ** torch.empty(n, dtype=torch.float64).uniform_(-3, 3, generator=g)
    x64 = torch.randn(n, generator=g, dtype=torch.float64) * mag + 1
    x64[::97] = 0.0
    x64[5], x64[77], x64[1500] = float("nan"), float("inf"), -float("inf")
    x64[2048:2100] = 171.18637084960938  # an all-equal run
    for values, programs in ((x64, 2), (x64[:5], MAX_PROGRAMS)):
        x = values.to(dtype)
        got = moments(x.to(device), max_programs=programs).cpu()
        if not _agrees(got, x.double(), dtype):
            return False
    return True


def _agrees(got: torch.Tensor, x: torch.Tensor, dtype: torch.dtype) -> bool:
    """Raw moments ``got`` of ``x`` (float64 now, ``dtype`` when reduced) against float64.

    Counts and extremes exact; sums within float32's (or float64's) rounding.
    """
    fin = x[torch.isfinite(x)]
    exact = torch.tensor(
        [x.numel(), x.numel() - fin.numel(), fin.min(), fin.max(), (fin != 0).sum()],
        dtype=torch.float64,
    )
    if not torch.equal(got[[0, 1, 5, 6, 8]], exact):
        return False
    l1 = fin.abs().sum()
    rel = 1e-12 if dtype == torch.float64 else 1e-5
    centre = got[3]
    dev = (fin - centre).norm()
    return bool(
        abs(got[2] - fin.sum()) <= rel * l1
        and abs(got[7] - l1) <= rel * l1
        and abs(centre - fin.mean()) <= rel * fin.abs().max()
        and abs(got[4] - dev) <= 10 * rel * dev + rel * rel * fin.abs().max()
    )
