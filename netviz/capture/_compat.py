"""Private PyTorch internals the capture layer relies on, in one place.

Each accessor has a fallback or raises an error that names the PyTorch
version, so that a moved internal fails loudly here rather than silently in a
hook. ``tests/capture/test_compat.py`` checks every one against the installed
PyTorch.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = [
    "grad_scaler_found_inf",
    "grad_scaler_scale",
    "grad_scaler_stage_unscaled",
    "in_backward",
    "optimizer_unscales_itself",
    "own_parameters",
]


def _current_graph_task_id() -> Any:
    return getattr(torch._C, "_current_graph_task_id", None)


_GRAPH_TASK_ID = _current_graph_task_id()


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


def _scaler_state(scaler: Any, optimizer: torch.optim.Optimizer) -> dict:
    states = getattr(scaler, "_per_optimizer_states", None)
    if states is None:  # pragma: no cover - depends on the PyTorch version
        raise RuntimeError(
            "netviz cannot read torch.amp.GradScaler's per-optimizer state "
            f"(`_per_optimizer_states`) on PyTorch {torch.__version__}; "
            "watch(..., scaler=) needs it: please report this"
        )
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


def own_parameters(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    """``module.parameters(recurse=False)``, read from ``module._parameters`` (several times
    cheaper per module: the step close reads it for every watched module)."""
    params = getattr(module, "_parameters", None)
    if not isinstance(params, dict):  # pragma: no cover - depends on the PyTorch version
        return list(module.parameters(recurse=False))
    return [p for p in params.values() if p is not None]
