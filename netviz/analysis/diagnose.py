"""``netviz.diagnose``: run a model on a batch (or read records) and say what is wrong."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from netviz.analysis.checks import (
    check_gradient_flow,
    check_nonfinite,
    check_timesteps,
    check_units,
    check_update_ratio,
    gradient_series,
    merge_steps,
    sort_findings,
)
from netviz.analysis.findings import Finding, Report, Thresholds
from netviz.analysis.order import as_records, module_order
from netviz.capture.attach import watch
from netviz.capture.probes.activation import first_tensor
from netviz.capture.probes.units import UnitActivity
from netviz.capture.selection import ModuleSelector, unwrap
from netviz.errors import NothingRecordedWarning

__all__ = ["INPUTS", "analyze", "default_loss", "diagnose", "weight_layers"]

#: ``Finding.module`` of a finding about the inputs rather than a module.
INPUTS = "<inputs>"

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


def weight_layers(model: nn.Module) -> list[str]:
    """Modules compared by the gradient-flow check: those owning a weight matrix or kernel.

    Normalisation layers (their gradients live on another scale) and
    embeddings (sparse gradients) are left out.
    """
    out = []
    for name, m in unwrap(model).named_modules():
        if isinstance(m, (*_NORMS, nn.Embedding, nn.EmbeddingBag)):
            continue
        if any(p.dim() >= 2 and p.requires_grad for p in m.parameters(recurse=False)):
            out.append(name)
    return out


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
        raise TypeError(
            f"the model returned {type(output).__name__} without a tensor; pass `loss_fn`"
        )
    if target is None:
        n = out.shape[0] if out.dim() else 1
        return out.float().sum() / n, "output.sum() / batch size (no target)"
    if not isinstance(target, torch.Tensor):
        raise TypeError(
            f"`target` must be a torch.Tensor (class labels or regression targets), "
            f"got {type(target).__name__}; or pass `loss_fn`"
        )
    try:
        if not target.is_floating_point() and not target.is_complex():
            return F.cross_entropy(out, target), "cross_entropy (integer target)"
        if target.shape != out.shape:  # mse_loss would broadcast silently
            raise ValueError("for mse_loss, output and target must have the same shape")
        return F.mse_loss(out, target), "mse_loss (floating target)"
    except (RuntimeError, ValueError) as err:
        raise ValueError(
            f"the default loss failed for output of shape {tuple(out.shape)} and target of shape "
            f"{tuple(target.shape)} ({target.dtype}): {err}; pass `loss_fn(output, target)`"
        ) from err


def _is_single(inputs: Any) -> bool:
    return isinstance(inputs, (torch.Tensor, tuple, Mapping))


def _batches(inputs: Any, target: Any, max_batches: int | None) -> Iterator[tuple[Any, Any]]:
    if _is_single(inputs):
        yield inputs, target
        return
    if target is not None:
        raise TypeError(
            "`target` must be None when `inputs` is an iterable of (inputs, target) batches "
            f"(got inputs of type {type(inputs).__name__}); a single batch is a tensor, a tuple "
            "of positional inputs or a dict of keyword inputs"
        )
    try:
        it = iter(inputs)
    except TypeError:
        raise TypeError(
            "`inputs` must be a tensor, a tuple of positional inputs, a dict of keyword inputs, "
            f"or an iterable of (inputs, target) batches; got {type(inputs).__name__}"
        ) from None
    n = 0
    for item in it:
        if max_batches is not None and n >= max_batches:
            return
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(
                "each batch of `inputs` must be an (inputs, target) pair, got "
                f"{type(item).__name__}"
                + (f" of length {len(item)}" if hasattr(item, "__len__") else "")
            )
        n += 1
        yield item[0], item[1]
    if n == 0:
        raise ValueError("`inputs` gave no batches")


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


def _rnn_evidence(model: nn.Module) -> dict[str, dict[str, float]]:
    """Per recurrent module: ``gated`` (LSTM/GRU: 1) and, for vanilla RNNs, the
    largest singular value of the last layer's ``W_hh``."""
    out: dict[str, dict[str, float]] = {}
    for name, m in unwrap(model).named_modules():
        if isinstance(m, (nn.LSTM, nn.LSTMCell, nn.GRU, nn.GRUCell)):
            # the gates, not W_hh alone, decide how far gradients travel
            out[name] = {"gated": 1.0}
        elif isinstance(m, (nn.RNN, nn.RNNCell)):
            w = (
                m.weight_hh
                if isinstance(m, nn.RNNCell)
                else getattr(m, f"weight_hh_l{m.num_layers - 1}")
            )
            sigma = torch.linalg.matrix_norm(w.detach().float(), ord=2)
            out[name] = {"gated": 0.0, "sigma_max_w_hh": float(sigma)}
    return out


def _check_layers(layers: Any, records: pd.DataFrame) -> list[str] | None:
    if layers is None:
        return None
    if isinstance(layers, str) or not all(isinstance(m, str) for m in layers):
        raise TypeError(f"`layers` must be a list of qualified module names, got {layers!r:.80}")
    known = set(records.module)
    missing = [m for m in layers if m not in known]
    if missing:
        raise ValueError(
            f"`layers` {missing} have no records; recorded modules: {sorted(known)[:20]}"
        )
    return list(layers)


def _nonfinite_count(inputs: Any) -> tuple[int, int]:
    """``(non-finite elements, elements)`` over the floating tensors of a batch (host sync)."""
    if isinstance(inputs, torch.Tensor):
        tensors = [inputs]
    elif isinstance(inputs, Mapping):
        tensors = [v for v in inputs.values() if isinstance(v, torch.Tensor)]
    else:
        tensors = [v for v in inputs if isinstance(v, torch.Tensor)]
    tensors = [t for t in tensors if t.is_floating_point()]
    bad = sum(int((~torch.isfinite(t)).sum()) for t in tensors)
    return bad, sum(t.numel() for t in tensors)


def _blame_inputs(findings: list[Finding], seen: list[tuple[int, int]]) -> list[Finding]:
    """Replace a forward NaN/Inf finding by one about the inputs when they were not finite."""
    bad = sum(b for b, _ in seen)
    if not bad:
        return findings
    total = sum(n for _, n in seen)
    msg = (
        f"The inputs already contain NaN or Inf: {bad} of {total} elements over {len(seen)} "
        "batch(es), so every module's output inherits them and nothing can be said about the "
        "network. Clean or impute the data (torch.nan_to_num, dropping rows), and check the "
        "preprocessing (division by a zero standard deviation, log of 0)."
    )
    kept = [f for f in findings if f.kind != "nonfinite"]
    ev = {"nonfinite_inputs": float(bad), "inputs": float(total)}
    return [Finding("nonfinite", INPUTS, "error", msg, ev), *kept]


def analyze(
    records: pd.DataFrame,
    thresholds: Thresholds | None = None,
    *,
    layers: list[str] | None = None,
    extra: dict[str, dict[str, float]] | None = None,
) -> list[Finding]:
    """Findings of a record table: per-step checks merged over steps, plus update ratios."""
    th = thresholds or Thresholds()
    order = module_order(records)
    per_step = []
    steps = sorted(records.step.unique())
    for step, rows in records.groupby("step", sort=True):
        found = check_nonfinite(rows, order)
        if not found:  # flow and unit statistics of a non-finite step mean nothing
            found += check_gradient_flow(gradient_series(rows, order, layers), th)
            found += check_timesteps(rows, th, extra)
            found += check_units(rows, th)
        per_step.append((int(step), found))
    findings = merge_steps(per_step, len(steps))
    findings += check_update_ratio(records, th)
    return sort_findings(findings, order)


def _healthy_line(records: pd.DataFrame, layers: list[str] | None) -> str:
    order = module_order(records)
    last = records[records.step == records.step.max()] if len(records) else records
    series = gradient_series(last, order, layers)
    if len(series) >= 2 and series[-1][1] > 0:
        r = series[0][1] / series[-1][1]
        return (
            f"The gradient RMS changes by a factor {r:.2g} from `{series[0][0]}` (input side) to "
            f"`{series[-1][0]}` (output side) over {len(series)} layers; no dead or saturated "
            "units; every value is finite."
        )
    return "Every recorded value is finite and within the thresholds."


def diagnose(
    model: nn.Module | pd.DataFrame,
    inputs: Any = None,
    target: Any = None,
    loss_fn: Callable[..., torch.Tensor] | None = None,
    *,
    thresholds: Thresholds | None = None,
    train: bool = True,
    modules: ModuleSelector = None,
    max_batches: int | None = None,
    layers: list[str] | None = None,
) -> Report:
    """Look for vanishing/exploding gradients, dead or saturated units and NaN/Inf.

    Two ways to call it:

    - ``diagnose(model, inputs, target=None, loss_fn=None)`` runs one forward and
      backward pass per batch with :func:`netviz.watch` probes
      (``grad_norm``, ``grad_stats``, ``activation_stats``, ``timestep_grad`` and
      :class:`~netviz.capture.probes.units.UnitActivity`) and diagnoses the records.
      The model is left exactly as it was: parameters, ``.grad`` (``None``
      included: the original gradient tensors are put back), the training mode
      of every module, buffers (batch-norm running statistics), hooks and the
      torch random state (CPU and the CUDA devices the model uses).
    - ``diagnose(records)`` reads a record table from ``netviz.watch`` over many
      steps (columns ``step, module, call, probe, stat, value``) and also
      checks ``weight_stats`` update ratios; a finding seen in several steps
      says in how many and since when.

    Parameters
    ----------
    model
        A :class:`torch.nn.Module`, or a record table (pandas DataFrame or
        :class:`netviz.Monitor`).
    inputs
        One batch: a tensor (``model(x)``), a tuple (``model(*x)``) or a dict
        (``model(**x)``); or an iterable (list, DataLoader, generator) of
        ``(inputs, target)`` pairs, one pass each.
    target
        The target of a single batch, or ``None``.
    loss_fn
        ``loss_fn(output, target)`` (``loss_fn(output)`` when ``target`` is
        ``None``) returning a scalar. Default: see :func:`default_loss`
        (cross-entropy for integer targets, MSE for floating targets,
        ``output.sum() / N`` without a target). For recurrent models, use a
        loss of the last step(s) to see gradients vanish through time.
    thresholds
        A :class:`Thresholds`; the defaults are documented there.
    train
        Run in training mode (default: dropout and batch statistics act as in
        training) or, with ``False``, in eval mode.
    modules
        Which modules to watch (``netviz.watch`` selector); default all leaves.
    max_batches
        Use at most this many batches of an iterable ``inputs``.
    layers
        Qualified names of the modules the gradient-flow check compares, input
        side first. Default: :func:`weight_layers` of the model; for a record
        table, every module with gradient records (pass ``layers`` to leave out
        normalisation layers or embeddings at either end).

    Returns
    -------
    Report
        ``report.findings``; ``print(report)`` reads as advice;
        ``report.plot()`` draws the gradient flow.

    Raises
    ------
    TypeError, ValueError
        Bad ``model``, ``inputs``, ``target`` or ``loss_fn``; a loss that is not
        a scalar or has no gradient.

    Examples
    --------
    >>> import torch
    >>> from netviz.analysis import diagnose
    >>> _ = torch.manual_seed(0)
    >>> layers = []
    >>> for _ in range(10):
    ...     layers += [torch.nn.Linear(16, 16), torch.nn.Sigmoid()]
    >>> net = torch.nn.Sequential(*layers, torch.nn.Linear(16, 2))
    >>> report = diagnose(net, torch.randn(64, 16), torch.randint(0, 2, (64,)))
    >>> report.kinds()
    ['vanishing_gradients']
    >>> report.findings[0].module  # the input-side end of the range
    '0'
    """
    th = thresholds if thresholds is not None else Thresholds()
    if not isinstance(th, Thresholds):
        raise TypeError(f"`thresholds` must be a netviz.Thresholds, got {type(th).__name__}")
    if not isinstance(model, nn.Module):
        if inputs is not None or target is not None or loss_fn is not None:
            raise TypeError(
                "`model` must be a torch.nn.Module when `inputs` are given; "
                f"got {type(model).__name__}"
            )
        records = as_records(model, name="model")
        chosen = _check_layers(layers, records)
        findings = analyze(records, th, layers=chosen)
        summary = {
            "model": "records",
            "source": "records",
            "steps": int(records.step.nunique()),
            "healthy": _healthy_line(records, chosen),
        }
        return Report(findings, records, th, summary)
    if not isinstance(train, bool):
        raise TypeError(f"`train` must be True or False, got {train!r}")
    if inputs is None:
        raise TypeError("`inputs` is required to diagnose a model (a batch the model accepts)")
    if max_batches is not None and (
        isinstance(max_batches, bool) or not isinstance(max_batches, int) or max_batches < 1
    ):
        raise ValueError(f"`max_batches` must be a positive int or None, got {max_batches!r}")
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"`loss_fn` must be callable, got {type(loss_fn).__name__}")
    probes = ["grad_norm", "grad_stats", "activation_stats", "timestep_grad", UnitActivity()]
    loss_name = getattr(loss_fn, "__name__", type(loss_fn).__name__) if loss_fn else None
    n = 0
    seen_inputs: list[tuple[int, int]] = []
    # enable_grad: a diagnosis called inside torch.no_grad() still needs a backward
    with (
        torch.enable_grad(),
        warnings.catch_warnings(),  # diagnose reports what ran; no "recorded nothing" noise
        _preserved(model, train),
        # all_ranks: in a distributed job every rank gets the same (global) report
        watch(model, probes=probes, modules=modules, all_ranks=True) as mon,
    ):
        warnings.simplefilter("ignore", NothingRecordedWarning)
        for x, y in _batches(inputs, target, max_batches):
            out = _call(model, x)
            if loss_fn is not None:
                loss = loss_fn(out, y) if y is not None else loss_fn(out)
            else:
                loss, loss_name = default_loss(out, y)
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise ValueError(
                    f"the loss must be a scalar tensor, got {type(loss).__name__}"
                    + (f" of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else "")
                )
            if not loss.requires_grad:
                raise ValueError(
                    "the loss does not require grad: no parameter of the model takes part "
                    "(frozen model, or a forward under torch.no_grad())"
                )
            loss.reshape(()).backward()
            mon.step()
            seen_inputs.append(_nonfinite_count(x))
            for p in model.parameters():
                p.grad = None
            n += 1
    records = mon.to_pandas()
    layers = weight_layers(model) if layers is None else _check_layers(layers, records)
    findings = analyze(records, th, layers=layers, extra=_rnn_evidence(model))
    findings = _blame_inputs(findings, seen_inputs)
    summary = {
        "model": type(unwrap(model)).__name__,
        "source": "model",
        "steps": n,
        "loss": loss_name,
        "mode": "train" if train else "eval",
        "layers": len(layers),
        "healthy": _healthy_line(records, layers),
    }
    return Report(findings, records, th, summary)
