"""One forward pass, every selected module's output: :func:`capture_activations`.

Captured tensors are keyed by the module's qualified name (the root module is
``""``). A module called more than once in the pass gets one key per call,
``"name#0"``, ``"name#1"``, ... in call order (see :func:`call_keys`); a module
called once keeps its plain name. The same scheme names attention captures.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from netviz._compat import fastpath_disabled
from netviz._leaf import call_keys, first_tensor  # call_keys re-exported
from netviz.capture.selection import ModuleSelector, named_modules, select_modules
from netviz.errors import NetvizTypeError, NetvizValueError

__all__ = ["call_keys", "capture_activations", "fastpath_bypassed"]


def _has_fastpath_modules(model: nn.Module) -> bool:
    kinds = (nn.TransformerEncoder, nn.TransformerEncoderLayer)
    return any(isinstance(m, kinds) for _, m in named_modules(model))


@contextlib.contextmanager
def fastpath_bypassed(model: nn.Module) -> Iterator[bool]:
    """Turn PyTorch's fused transformer fast path off while inside, if ``model`` needs it.

    In eval mode without gradients, :class:`torch.nn.TransformerEncoder` and
    :class:`torch.nn.TransformerEncoderLayer` run one fused kernel that skips
    their submodules, so hooks on ``self_attn``, ``linear1``, ... never fire.
    Inside this context ``torch.backends.mha.get_fastpath_enabled()`` is
    ``False`` (only if the model holds such a module); the previous setting
    is restored on exit, also after an exception. Yields whether it changed
    the setting. The setting is process-wide in PyTorch: other threads
    running transformers meanwhile take the unfused path too.
    """
    with fastpath_disabled(_has_fastpath_modules(model)) as changed:
        yield changed


def _trim(x: torch.Tensor, max_batch: int | None, max_channels: int | None) -> torch.Tensor:
    if max_batch is not None and x.dim() >= 1:
        x = x[:max_batch]
    if max_channels is not None and x.dim() >= 2:
        x = x[:, :max_channels]
    return x


def _check_limit(value: int | None, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise NetvizValueError(f"`{name}` must be None or an int >= 1, got {value!r}")


def capture_activations(
    model: nn.Module,
    *args: Any,
    modules: ModuleSelector = None,
    max_batch: int | None = None,
    max_channels: int | None = None,
    **kwargs: Any,
) -> dict[str, torch.Tensor]:
    """Run ``model(*args, **kwargs)`` once and return each selected module's output.

    Parameters
    ----------
    model
        Any :class:`torch.nn.Module`.
    *args, **kwargs
        Passed to ``model`` unchanged (the pass runs in the caller's grad
        mode and train/eval mode).
    modules
        Module selector as in :func:`netviz.watch`: ``None`` (every leaf
        module and every module owning parameters directly), glob(s) over
        qualified names, module type(s), or a predicate ``(name, module)``.
    max_batch
        Keep only the first ``max_batch`` items along dim 0.
    max_channels
        Keep only the first ``max_channels`` entries along dim 1 (channels of
        ``(N, C, ...)`` feature maps).

    Returns
    -------
    dict[str, torch.Tensor]
        In call order. The output (its first tensor, depth-first, for tuple,
        list or dict outputs) of each call, detached and cloned when the
        module returns (later in-place operations cannot change it), on the
        device it was computed on. Key scheme: the qualified name, or
        ``name#i`` for the ``i``-th call of a module called several times.
        Modules whose output holds no tensor are left out. In eval mode
        under ``torch.no_grad()``, transformer encoders run unfused during
        the pass so that their submodules are seen
        (:func:`fastpath_bypassed`).

    Raises
    ------
    TypeError, ValueError
        Bad ``model``, ``modules``, ``max_batch`` or ``max_channels``.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(inplace=True), nn.Linear(4, 2))
    >>> acts = capture_activations(net, torch.randn(5, 3), max_batch=2)
    >>> {k: tuple(v.shape) for k, v in acts.items()}
    {'0': (2, 4), '1': (2, 4), '2': (2, 2)}
    >>> bool((acts["0"] < 0).any())  # the in-place ReLU did not change it
    True
    """
    if not isinstance(model, nn.Module):
        raise NetvizTypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    _check_limit(max_batch, "max_batch")
    _check_limit(max_channels, "max_channels")
    selected = select_modules(model, modules)
    pairs: list[tuple[str, torch.Tensor]] = []

    def make_hook(name: str) -> Any:
        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            x = first_tensor(output)
            if x is not None:
                pairs.append((name, _trim(x.detach(), max_batch, max_channels).clone()))

        return hook

    handles = []
    try:
        for name, module in selected:
            handles.append(module.register_forward_hook(make_hook(name)))
        with fastpath_bypassed(model):
            model(*args, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return call_keys(pairs)
