"""Every private PyTorch internal netviz relies on, and every patch it installs, in one place.

A leaf package: it imports only :mod:`torch` and :mod:`netviz.errors`. Each
accessor has a fallback through public API or raises
:class:`~netviz.errors.TorchCompatError` naming the PyTorch version and what
moved, so that a moved internal fails loudly here rather than silently in a
hook. ``tests/capture/test_compat.py`` checks every one against the installed
PyTorch; ``tests/capture/test_compat_scan.py`` checks that no module outside
this package touches a private torch name.

Hot-path entries (``is_functorch_wrapped_tensor``, ``is_functional_tensor``,
``foreach_norm``...) are the torch functions themselves, bound once at import,
so that routing through this module costs no extra call. The SDPA patch
(:mod:`netviz._compat.sdpa`) and PyTorch's convolution kernel choice
(:mod:`netviz._compat.kernels`) sit in submodules; every name is importable
from ``netviz._compat``.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import torch
from torch import nn

from netviz._compat.kernels import conv_transpose_accepts_empty
from netviz._compat.sdpa import SDPA_BUILTIN, SdpaPatch
from netviz.errors import TorchCompatError

__all__ = [
    "HOOK_DICTS",
    "SDPA_BUILTIN",
    "SdpaPatch",
    "compiled_original",
    "conv_transpose_accepts_empty",
    "disable_current_modes",
    "disable_func_torch",
    "fastpath_disabled",
    "foreach_copy_",
    "foreach_norm",
    "foreach_sub",
    "functorch_unwrap",
    "grad_scaler_found_inf",
    "grad_scaler_scale",
    "grad_scaler_stage_unscaled",
    "in_backward",
    "is_fake",
    "is_functional_tensor",
    "is_functorch_wrapped_tensor",
    "is_shard_placement",
    "is_summary_writer",
    "jagged_has_lengths",
    "mha_packed_in_proj",
    "module_hook_dicts",
    "optimizer_unscales_itself",
    "own_parameters",
    "process_group_timeout",
    "tensor_version",
    "tensorboard_file_writer",
    "unwrap_optimizer",
]


def _moved(what: str, needed_by: str) -> TorchCompatError:
    return TorchCompatError(
        f"netviz cannot find {what} in PyTorch {torch.__version__}; {needed_by} needs it "
        "(the internal moved in this release: please report this)"
    )


# --- autograd -----------------------------------------------------------------------------

_GRAPH_TASK_ID: Callable[[], int] | None = getattr(torch._C, "_current_graph_task_id", None)


def in_backward() -> bool:
    """Whether the calling thread is inside the autograd engine's backward pass.

    True while activation checkpointing recomputes a forward during backward
    (both ``use_reentrant`` modes). Uses ``torch._C._current_graph_task_id``
    (``-1`` outside backward); without it (a PyTorch that removed it) this
    returns ``False`` and recomputed forwards are only recognised by running
    outside the root model's forward.
    """
    if _GRAPH_TASK_ID is None:  # pragma: no cover - depends on the PyTorch build
        return False
    return _GRAPH_TASK_ID() != -1


# --- torch.amp.GradScaler and optimizers ----------------------------------------------------


def _scaler_state(scaler: Any, optimizer: torch.optim.Optimizer) -> dict:
    states = getattr(scaler, "_per_optimizer_states", None)
    if states is None:  # pragma: no cover - depends on the PyTorch version
        raise _moved("torch.amp.GradScaler's `_per_optimizer_states`", "watch(..., scaler=)")
    return states[id(optimizer)]


def grad_scaler_stage_unscaled(scaler: Any, optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``scaler.unscale_(optimizer)`` already ran in this iteration."""
    from torch.amp.grad_scaler import OptState

    return _scaler_state(scaler, optimizer)["stage"] is OptState.UNSCALED


def grad_scaler_found_inf(scaler: Any, optimizer: torch.optim.Optimizer) -> torch.Tensor | None:
    """Device tensor > 0 where the scaler found inf/NaN gradients for ``optimizer``.

    Read after ``scaler.step(optimizer)``; ``None`` if the scaler did not check
    (disabled scaler). No host synchronisation.
    """
    found = list(_scaler_state(scaler, optimizer).get("found_inf_per_device", {}).values())
    if not found:
        return None
    total = found[0].to(torch.float32)
    for f in found[1:]:
        total = total + f.to(device=total.device, dtype=torch.float32)
    return total.reshape(1)


def grad_scaler_scale(scaler: Any) -> torch.Tensor | None:
    """The scaler's current scale as a device tensor (``None`` when disabled)."""
    scale = getattr(scaler, "_scale", None)
    return scale if isinstance(scale, torch.Tensor) else None


def optimizer_unscales_itself(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``GradScaler.step`` hands ``optimizer`` the scale instead of unscaling.

    Fused optimizers (``Adam(fused=True)``) set ``_step_supports_amp_scaling``;
    they unscale the gradients in place only when no inf/NaN was found, so a
    skipped step leaves them scaled.
    """
    return bool(getattr(optimizer, "_step_supports_amp_scaling", False))


def unwrap_optimizer(optimizer: Any) -> torch.optim.Optimizer | None:
    """The torch optimizer itself or inside framework wrappers, else ``None``.

    Wrappers hold it as ``.optimizer`` (accelerate) or as Lightning's private
    ``._optimizer`` (``LightningOptimizer``), nested up to four deep.
    """
    for _ in range(4):
        inner = None
        for attr in ("optimizer", "_optimizer"):  # wrappers may subclass Optimizer themselves
            candidate = getattr(optimizer, attr, None)
            if isinstance(candidate, torch.optim.Optimizer) and candidate is not optimizer:
                inner = candidate
                break
        if inner is None:
            break
        optimizer = inner
    return optimizer if isinstance(optimizer, torch.optim.Optimizer) else None


# --- nn.Module internals -------------------------------------------------------------------


def own_parameters(module: nn.Module) -> list[nn.Parameter]:
    """``module.parameters(recurse=False)``, read from ``module._parameters`` (several times
    cheaper per module: the step close reads it for every watched module)."""
    params = getattr(module, "_parameters", None)
    if not isinstance(params, dict):  # pragma: no cover - depends on the PyTorch version
        return list(module.parameters(recurse=False))
    return [p for p in params.values() if p is not None]


#: The hook tables of an ``nn.Module`` (private attributes; a missing one is skipped).
HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_pre_hooks_with_kwargs",
    "_forward_hooks_always_called",
)


def module_hook_dicts(module: nn.Module) -> dict[str, dict]:
    """``{name: table}`` of the module's hook tables that exist in this PyTorch."""
    out = {}
    for name in HOOK_DICTS:
        table = getattr(module, name, None)
        if isinstance(table, dict):
            out[name] = table
    return out


def compiled_original(model: object) -> nn.Module | None:
    """The eager module inside ``torch.compile``'s ``OptimizedModule``, else ``None``.

    Reads ``OptimizedModule._orig_mod`` (the only way to reach it). An
    ``OptimizedModule`` without it raises :class:`TorchCompatError` (module
    names would silently gain an ``_orig_mod.`` prefix otherwise).
    """
    try:
        inner = getattr(model, "_orig_mod", None)
    except KeyError:  # OptimizedModule.__getattr__ looks it up in `_modules`
        inner = None
    if isinstance(inner, nn.Module):
        return inner
    eval_frame = sys.modules.get("torch._dynamo.eval_frame")  # loaded by any torch.compile
    optimized = getattr(eval_frame, "OptimizedModule", None)
    if isinstance(optimized, type) and isinstance(model, optimized):
        raise _moved("OptimizedModule._orig_mod (torch.compile)", "watching a compiled model")
    return None


def mha_packed_in_proj(module: nn.MultiheadAttention) -> bool:
    """Whether ``module`` projects q, k, v with one packed ``in_proj_weight``.

    ``MultiheadAttention._qkv_same_embed_dim``; without it, whether
    ``in_proj_weight`` is set (the same thing, by construction).
    """
    flag = getattr(module, "_qkv_same_embed_dim", None)
    if isinstance(flag, bool):
        return flag
    return module.in_proj_weight is not None  # pragma: no cover - depends on the PyTorch version


@contextlib.contextmanager
def fastpath_disabled(disable: bool = True) -> Iterator[bool]:
    """PyTorch's fused transformer fast path off while inside (if ``disable``).

    ``torch.backends.mha.set_fastpath_enabled`` is process-wide; the previous
    setting is restored on every exit path (exceptions included). Yields
    whether the setting changed (``False`` where it was already off, or on a
    PyTorch without the switch).
    """
    mha = getattr(torch.backends, "mha", None)
    getter = getattr(mha, "get_fastpath_enabled", None)
    setter = getattr(mha, "set_fastpath_enabled", None)
    if not disable or getter is None or setter is None or not getter():
        yield False
        return
    setter(False)
    try:
        yield True
    finally:
        setter(True)


# --- foreach kernels (one fused launch for a list of tensors) --------------------------------


def _norm_loop(
    tensors: list[torch.Tensor], ord: float = 2, dtype: Any = None
) -> list[torch.Tensor]:
    return [torch.linalg.vector_norm(t, ord, dtype=dtype) for t in tensors]  # pragma: no cover


def _sub_loop(a: list[torch.Tensor], b: list[torch.Tensor]) -> list[torch.Tensor]:
    return [x - y for x, y in zip(a, b)]  # pragma: no cover


def _copy_loop(dst: list[torch.Tensor], src: list[torch.Tensor]) -> None:
    for d, s in zip(dst, src):  # pragma: no cover
        d.copy_(s)


#: ``torch._foreach_norm(tensors, ord=2, dtype=None)``, or a per-tensor loop.
foreach_norm: Callable[..., Any] = getattr(torch, "_foreach_norm", _norm_loop)
#: ``torch._foreach_sub(a, b)`` (new tensors), or a per-tensor loop.
foreach_sub: Callable[..., Any] = getattr(torch, "_foreach_sub", _sub_loop)
#: ``torch._foreach_copy_(dst, src)`` (in place), or a per-tensor loop.
foreach_copy_: Callable[..., Any] = getattr(torch, "_foreach_copy_", _copy_loop)


# --- functorch, functionalization and dispatch modes -----------------------------------------

_FUNCTORCH = getattr(torch._C, "_functorch", None)


def _never(x: torch.Tensor) -> bool:
    return False  # pragma: no cover - depends on the PyTorch build


#: ``torch._C._functorch.is_functorch_wrapped_tensor`` (a ``torch.func`` wrapper?).
is_functorch_wrapped_tensor: Callable[[torch.Tensor], bool] = getattr(
    _FUNCTORCH, "is_functorch_wrapped_tensor", _never
)
#: ``torch._is_functional_tensor`` (a ``torch.func.functionalize`` tensor?).
is_functional_tensor: Callable[[torch.Tensor], bool] = getattr(
    torch, "_is_functional_tensor", _never
)


def functorch_unwrap(x: torch.Tensor) -> torch.Tensor:
    """The plain tensor under ``torch.func`` wrappers (grad, vmap: the whole batch), exact."""
    get_unwrapped = getattr(_FUNCTORCH, "get_unwrapped", None)
    while is_functorch_wrapped_tensor(x):
        if get_unwrapped is None:  # pragma: no cover - depends on the PyTorch build
            raise _moved("torch._C._functorch.get_unwrapped", "reading torch.func tensors")
        x = get_unwrapped(x)
    return x


def is_fake(x: torch.Tensor) -> bool:
    """Whether ``x`` is a ``FakeTensor`` (``torch._subclasses.fake_tensor.is_fake``)."""
    try:
        from torch._subclasses.fake_tensor import is_fake as _is_fake
    except ImportError:  # pragma: no cover - depends on the PyTorch version
        return False
    return bool(_is_fake(x))


def disable_func_torch() -> contextlib.AbstractContextManager:
    """``torch._C._DisableFuncTorch()``: no ``torch.func`` transform of the caller inside."""
    cls = getattr(torch._C, "_DisableFuncTorch", None)
    if cls is None:  # pragma: no cover - depends on the PyTorch build
        raise _moved("torch._C._DisableFuncTorch", "reading tensors under torch.func")
    return cls()


def disable_current_modes() -> contextlib.AbstractContextManager:
    """``torch.utils._python_dispatch._disable_current_modes()``: no active dispatch mode."""
    try:
        from torch.utils._python_dispatch import _disable_current_modes
    except ImportError as exc:  # pragma: no cover - depends on the PyTorch version
        raise _moved(
            "torch.utils._python_dispatch._disable_current_modes", "netviz's kernels"
        ) from exc
    return _disable_current_modes()


def jagged_has_lengths(x: torch.Tensor) -> bool:
    """Whether a jagged nested tensor may have holes (``_lengths`` set: a narrowed view).

    Without the private ``_lengths`` (a PyTorch that renamed it), any
    non-contiguous tensor counts: callers then read it element by element,
    which is exact either way.
    """
    lengths = getattr(x, "_lengths", _MISSING)
    if lengths is _MISSING:  # pragma: no cover - depends on the PyTorch version
        return not x.is_contiguous()
    return lengths is not None


_MISSING = object()


def tensor_version(x: torch.Tensor) -> int:
    """The in-place version counter of ``x`` (``x._version``): it changes whenever
    ``x`` is modified in place, so two hooks can tell whether they saw the same values."""
    version = getattr(x, "_version", _MISSING)
    if version is _MISSING:  # pragma: no cover - depends on the PyTorch version
        raise _moved("Tensor._version (the in-place version counter)", "activation_hist")
    return int(version)  # type: ignore[call-overload]


# --- torch.distributed -----------------------------------------------------------------------


def process_group_timeout(group: Any = None) -> timedelta | None:
    """Timeout of a process group (default: WORLD; ``init_process_group(timeout=...)``).

    Reads the backend's private ``options._timeout``; ``None`` if it cannot be
    read (callers then fall back to torch's default timeout).
    """
    import torch.distributed as dist

    group = dist.group.WORLD if group is None else group
    for device in ("cpu", "cuda"):
        try:
            timeout = group._get_backend(torch.device(device)).options._timeout
        except Exception:
            continue
        if isinstance(timeout, timedelta):
            return timeout
    return None


@functools.cache
def _shard_types() -> tuple[type, ...]:
    try:
        from torch.distributed.tensor import placement_types as pt
    except ImportError:  # pragma: no cover - a build without torch.distributed
        return ()
    strided = getattr(pt, "_StridedShard", None)  # not a Shard subclass, is_shard() is False
    return (pt.Shard,) + ((strided,) if isinstance(strided, type) else ())


def is_shard_placement(placement: object) -> bool:
    """Whether a DTensor placement splits the tensor (``Shard`` or ``_StridedShard``)."""
    return isinstance(placement, _shard_types())


# --- torch.utils.tensorboard -----------------------------------------------------------------


def tensorboard_file_writer(writer: Any) -> Any:
    """The event-file writer of a ``SummaryWriter`` (torch.utils.tensorboard or tensorboardX).

    Both expose it only as the private ``_get_file_writer()``; raises
    :class:`TorchCompatError` if it is gone.
    """
    get = getattr(writer, "_get_file_writer", None)
    if get is None:
        raise _moved("SummaryWriter._get_file_writer()", "netviz.sinks.TensorBoard")
    return get()


def is_summary_writer(obj: object) -> bool:
    """Whether ``obj`` looks like a ``SummaryWriter`` netviz can write raw summaries to."""
    return hasattr(obj, "_get_file_writer") and hasattr(obj, "add_histogram_raw")
