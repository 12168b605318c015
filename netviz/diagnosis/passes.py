"""The passes of ``diagnose(model, inputs)``: one forward and backward per batch under probes.

The model's state is preserved (:func:`_preserved`), the forward runs inside a
:class:`~netviz.diagnosis.functional.ForwardTracker` (functional activations,
the module reached when it raises), and the records come back with the
functional ``unit_activity`` rows and the execution ``order`` of the pass.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from netviz._leaf import first_tensor
from netviz._progress import Progress, progress
from netviz.analysis.order import as_records
from netviz.analysis.specs import probes_for
from netviz.capture.attach import watch
from netviz.capture.probe import Probe
from netviz.capture.probes.units import UnitActivity
from netviz.capture.selection import ModuleSelector, unwrap
from netviz.diagnosis.functional import ForwardTracker, iter_covered
from netviz.errors import (
    NetvizRuntimeError,
    NetvizTypeError,
    NetvizValueError,
    NothingRecordedWarning,
)

__all__ = ["ModelError", "default_loss", "run_passes"]


class ModelError(NetvizRuntimeError):
    """The user's model raised during :func:`netviz.diagnose`: in its forward (the message
    names the module reached), in ``loss_fn`` or in the backward pass.

    The original exception is chained as ``__cause__``.
    """


def default_loss(output: Any, target: Any) -> tuple[torch.Tensor, str]:
    """The loss :func:`diagnose` uses without ``loss_fn``, and its description.

    - ``target is None``: ``output.sum() / N`` (``N`` = size of the first
      dimension): every output element gets the same gradient ``1/N``, so the
      gradient flow depends on the network alone;
    - integer ``target``: ``cross_entropy(output, target)`` (class labels);
    - floating ``target``: ``mse_loss(output, target)``.

    The output is the model's output, or its first tensor for tuples/dicts.
    """
    out = first_tensor(output)
    if out is None:
        raise NetvizTypeError(
            f"the model returned {type(output).__name__} without a tensor; pass `loss_fn`"
        )
    if target is None:
        n = out.shape[0] if out.dim() else 1
        return out.float().sum() / n, "output.sum() / batch size (no target)"
    if not isinstance(target, torch.Tensor):
        raise NetvizTypeError(
            f"`target` must be a torch.Tensor (class labels or regression targets), "
            f"got {type(target).__name__}; or pass `loss_fn`"
        )
    try:
        if not target.is_floating_point() and not target.is_complex():
            return F.cross_entropy(out, target), "cross_entropy (integer target)"
        if target.shape != out.shape:  # mse_loss would broadcast silently
            raise NetvizValueError("for mse_loss, output and target must have the same shape")
        return F.mse_loss(out, target), "mse_loss (floating target)"
    except (RuntimeError, ValueError) as err:
        raise NetvizValueError(
            f"the default loss failed for output of shape {tuple(out.shape)} and target of shape "
            f"{tuple(target.shape)} ({target.dtype}): {err}; pass `loss_fn(output, target)`"
        ) from err


def _is_single(inputs: Any) -> bool:
    return isinstance(inputs, (torch.Tensor, tuple, Mapping))


def _batch_progress(inputs: Any, max_batches: int | None) -> Progress:
    """A progress bar over the batches of a multi-batch diagnosis (none for one batch)."""
    if _is_single(inputs):
        return progress(1, "netviz diagnose", enabled=False)
    try:
        total: int | None = len(inputs)
    except TypeError:
        total = None
    if max_batches is not None:
        total = max_batches if total is None else min(total, max_batches)
    return progress(total, "netviz diagnose: batches")  # type: ignore[arg-type]


def _batches(inputs: Any, target: Any, max_batches: int | None) -> Iterator[tuple[Any, Any]]:
    if _is_single(inputs):
        yield inputs, target
        return
    if target is not None:
        raise NetvizTypeError(
            "`target` must be None when `inputs` is an iterable of (inputs, target) batches "
            f"(got inputs of type {type(inputs).__name__}); a single batch is a tensor, a tuple "
            "of positional inputs or a dict of keyword inputs"
        )
    try:
        it = iter(inputs)
    except TypeError:
        raise NetvizTypeError(
            "`inputs` must be a tensor, a tuple of positional inputs, a dict of keyword inputs, "
            f"or an iterable of (inputs, target) batches; got {type(inputs).__name__}"
        ) from None
    n = 0
    for item in it:
        if max_batches is not None and n >= max_batches:
            return
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise NetvizTypeError(
                "each batch of `inputs` must be an (inputs, target) pair, got "
                f"{type(item).__name__}"
                + (f" of length {len(item)}" if hasattr(item, "__len__") else "")
            )
        n += 1
        yield item[0], item[1]
    if n == 0:
        raise NetvizValueError("`inputs` gave no batches")


def _call(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, tuple):
        return model(*inputs)
    return model(inputs)


@contextlib.contextmanager
def _preserved(model: nn.Module, train: bool) -> Iterator[None]:
    """Run with grads cleared and ``model.train(train)``; restore grads, modes, buffers, RNG."""
    params = list(model.parameters())
    grads = [p.grad for p in params]
    modes = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    devices = sorted({p.device.index or 0 for p in params if p.device.type == "cuda"})
    try:
        with torch.random.fork_rng(devices=devices):
            for p in params:
                p.grad = None
            model.train(train)
            yield
    finally:
        for p, g in zip(params, grads):
            p.grad = g
        for m, mode in modes:
            m.training = mode
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)


def _nonfinite_count(inputs: Any) -> tuple[int, int]:
    """``(non-finite elements, elements)`` over the floating tensors of a batch (host sync)."""
    tensors = [t for t in _tensors(inputs) if t.is_floating_point()]
    bad = sum(int((~torch.isfinite(t)).sum()) for t in tensors)
    return bad, sum(t.numel() for t in tensors)


def _where(tracker: ForwardTracker, x: Any) -> str:
    at = tracker.where()
    shapes = [tuple(t.shape) for t in _tensors(x)]
    return (f" in {at}" if at else "") + f" (batch input shapes {shapes})"


def _tensors(x: Any) -> list[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, Mapping):
        return [v for v in x.values() if isinstance(v, torch.Tensor)]
    if isinstance(x, (tuple, list)):
        return [v for v in x if isinstance(v, torch.Tensor)]
    return []


def _loss(out: Any, y: Any, loss_fn: Callable[..., torch.Tensor] | None) -> tuple[Any, str | None]:
    if loss_fn is None:
        return default_loss(out, y)
    try:
        loss = loss_fn(out, y) if y is not None else loss_fn(out)
    except Exception as exc:
        raise ModelError(f"netviz.diagnose: `loss_fn` raised {type(exc).__name__}: {exc}") from exc
    return loss, None


def _check_loss(loss: Any) -> None:
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise NetvizValueError(
            f"the loss must be a scalar tensor, got {type(loss).__name__}"
            + (f" of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else "")
        )
    if not loss.requires_grad:
        raise NetvizValueError(
            "the loss does not require grad: no parameter of the model takes part "
            "(frozen model, or a forward under torch.no_grad())"
        )


def _with_functional(
    records: pd.DataFrame, extra: list[tuple[int, list[tuple[str, int, str, float]], dict]]
) -> pd.DataFrame:
    """Records plus the functional ``unit_activity`` rows, ``order`` renumbered per step
    from the execution order the tracker saw (modules not called keep coming after)."""
    records = as_records(records)
    rows = [
        {"step": step, "module": m, "call": c, "probe": "unit_activity", "stat": st, "value": v}
        for step, found, _ in extra
        for m, c, st, v in found
    ]
    if rows:
        add = pd.DataFrame(rows).assign(skipped=False, phase="train", micro=0, order=0)
        records = as_records(pd.concat([records, add[records.columns]], ignore_index=True))
    seqs = {step: seq for step, _, seq in extra}
    order = records.order.to_numpy().copy()
    for step, idx in records.groupby("step", sort=False).indices.items():
        seq = seqs.get(int(step), {})
        part = records.iloc[idx]
        first = part.groupby("module", sort=True).order.min()
        keys = sorted(
            first.index,
            key=lambda m: (0, seq[m], "") if m in seq else (1, int(first[m]), str(m)),
        )
        rank = {m: i for i, m in enumerate(keys)}
        order[idx] = part.module.map(rank).to_numpy()
    records["order"] = order
    return records


def _rank_group() -> Any:
    """A gloo group over all ranks when torch.distributed runs with several, else None.

    The functional activations are seen on each rank's part of the batch; their
    counts are merged over this group so that every rank gets the same report.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return dist.new_group(backend="gloo")


@contextlib.contextmanager
def _destroyed(group: Any) -> Iterator[None]:
    try:
        yield
    finally:
        if group is not None:
            import torch.distributed as dist

            dist.destroy_process_group(group)


def run_passes(
    model: nn.Module,
    inputs: Any,
    target: Any,
    loss_fn: Callable[..., torch.Tensor] | None,
    train: bool,
    modules: ModuleSelector,
    max_batches: int | None,
) -> tuple[pd.DataFrame, list[tuple[int, int]], str | None, int]:
    """One forward and backward per batch under probes: ``(records, inputs seen, loss, n)``."""
    # the probes the per-step checks read, from their specs (netviz.analysis.specs)
    probes: list[str | Probe] = list(probes_for(["step"]))
    loss_name = getattr(loss_fn, "__name__", type(loss_fn).__name__) if loss_fn else None
    seen: list[tuple[int, int]] = []
    extra: list[tuple[int, list[tuple[str, int, str, float]], dict]] = []
    inner = unwrap(model)
    group = _rank_group()
    # enable_grad: a diagnosis called inside torch.no_grad() still needs a backward
    with (
        _destroyed(group),
        torch.enable_grad(),
        warnings.catch_warnings(),  # diagnose reports what ran; no "recorded nothing" noise
        _preserved(model, train),
        # all_ranks: in a distributed job every rank gets the same (global) report
        watch(model, probes=probes, modules=modules, all_ranks=True) as mon,
    ):
        warnings.simplefilter("ignore", NothingRecordedWarning)
        skip = set(iter_covered(inner, set(mon.module_names)))
        with (
            ForwardTracker(inner, skip, UnitActivity()) as tracker,
            _batch_progress(inputs, max_batches) as bar,
        ):
            for x, y in _batches(inputs, target, max_batches):
                bar.update(1)
                try:
                    out = _call(model, x)
                except Exception as exc:
                    raise ModelError(
                        f"netviz.diagnose: the model's forward raised {type(exc).__name__}"
                        f"{_where(tracker, x)}: {exc}"
                    ) from exc
                tracker.stack.clear()
                loss, name = _loss(out, y, loss_fn)
                loss_name = name or loss_name
                _check_loss(loss)
                try:
                    loss.reshape(()).backward()
                except Exception as exc:
                    raise ModelError(
                        f"netviz.diagnose: the backward pass raised {type(exc).__name__}: {exc}"
                    ) from exc
                step = mon.step_index
                mon.step()
                extra.append((step, *tracker.take(group)))
                seen.append(_nonfinite_count(x))
                for p in model.parameters():
                    p.grad = None
    return _with_functional(mon.to_pandas(), extra), seen, loss_name, len(seen)
