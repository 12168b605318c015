"""``netviz.diagnose``: run a model on a batch (or read records) and say what is wrong."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pandas as pd
import torch
from torch import nn

from netviz.analysis.analyze import analyze, empty_error
from netviz.analysis.checks import depth_layers, gradient_magnitudes, gradient_series
from netviz.analysis.findings import Finding, Thresholds
from netviz.analysis.order import as_records, module_order
from netviz.capture.selection import ModuleSelector, unwrap
from netviz.diagnosis.passes import ModelError, default_loss, run_passes
from netviz.diagnosis.report import Report
from netviz.errors import NetvizTypeError, NetvizValueError
from netviz.records.selection import select_names

__all__ = ["INPUTS", "ModelError", "default_loss", "diagnose", "weight_layers"]

#: ``Finding.module`` of a finding about the inputs rather than a module.
INPUTS = "<inputs>"


def weight_layers(model: nn.Module) -> list[str]:
    """Modules of a live model that can count for depth: those owning a trainable parameter.

    The layers that count for depth are the modules whose own parameters
    (``recurse=False``) receive a gradient that ``grad_stats``/``grad_norm``
    record (:func:`netviz.analysis.checks.depth_layers`), for a model and for
    its ``watch`` records alike: weight layers, normalisation layers with
    affine parameters, embeddings. This is the list before the pass, in
    registration order; a module whose parameters get no gradient in the pass
    drops out.
    """
    return [
        name
        for name, m in unwrap(model).named_modules()
        if any(p.requires_grad for p in m.parameters(recurse=False))
    ]


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


def _record_modules(modules: ModuleSelector, records: pd.DataFrame) -> list[str] | None:
    """The recorded modules a ``modules=`` selector picks in a record table (names only).

    A record table carries module names, not modules: globs and lists of globs
    apply to those names as in ``watch`` (:func:`netviz.records.selection.select_names`);
    a type or a predicate needs the model: ``diagnose(model, inputs, modules=...)``.
    """
    if modules is None:
        return None
    return select_names(sorted(set(records.module)), modules, what="the records")  # type: ignore[arg-type]  # types/predicates are refused there with the remedy


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


def _healthy_flow(records: pd.DataFrame, layers: list[str], stat: str) -> str | None:
    """The flow of the last step, said when the flow check found nothing."""
    if not len(records):
        return None
    order = module_order(records)
    series = gradient_series(records[records.step == records.step.max()], order, layers)
    if len(series) < 2 or not series[-1][1] > 0:
        return None
    r = series[0][1] / series[-1][1]
    return (
        f"the {stat} changes by a factor {r:.2g} from `{series[0][0]}` (input side) to "
        f"`{series[-1][0]}` (output side) over {len(series)} layers"
    )


def _summary(records: pd.DataFrame, facts: dict[str, Any], **kw: Any) -> dict[str, Any]:
    layers = facts["layers"]
    _, stat = gradient_magnitudes(records)
    out = dict(kw)
    out.update(
        steps=facts["steps"],
        layers=len(layers),
        depth_layers=list(layers),
        statistic=stat,
        healthy_flow=_healthy_flow(records, layers, stat),
    )
    return out


def _records_report(records: Any, th: Thresholds, modules: ModuleSelector) -> Report:
    table = as_records(records, name="records")
    if not len(table):
        raise empty_error(f"`records` ({type(records).__name__})")
    selected = _record_modules(modules, table)
    chosen = None
    if selected is not None:  # the selected modules among those that count for depth
        chosen = [m for m in depth_layers(table, module_order(table)) if m in set(selected)]
    findings, checks, facts = analyze(table, th, layers=chosen, source="records")
    summary = _summary(table, facts, model="records", source="records")
    return Report(findings, table, th, summary, checks)


def _not_a_model(model: Any) -> NetvizTypeError:
    if _as_table(model):
        return NetvizTypeError(
            f"`model` is a {type(model).__name__}, not a torch.nn.Module: diagnose a record "
            "table with diagnose(records=table) (netviz.watch(...).to_pandas(), "
            "netviz.load(path), a netviz.Monitor or a netviz.Report)"
        )
    return NetvizTypeError(
        f"`model` must be a torch.nn.Module, got {type(model).__name__}; a record table is "
        "diagnosed with diagnose(records=table)"
    )


def _as_table(data: Any) -> bool:
    """True for what :func:`diagnose` reads as records: a DataFrame, a Monitor, a Report, a path."""

    return (
        isinstance(data, (pd.DataFrame, str, os.PathLike))
        or isinstance(getattr(data, "records", None), pd.DataFrame)
        or (callable(getattr(data, "to_pandas", None)) and hasattr(data, "step_index"))
    )


def diagnose(
    model: nn.Module | None = None,
    inputs: Any = None,
    target: Any = None,
    loss_fn: Callable[..., torch.Tensor] | None = None,
    *,
    records: Any = None,
    thresholds: Thresholds | None = None,
    train: bool = True,
    modules: ModuleSelector = None,
    max_batches: int | None = None,
) -> Report:
    """Look for vanishing/exploding gradients, dead or saturated units, NaN/Inf, and
    (from records of a training run) trends, spikes, update ratios and train/eval drift.

    Two ways to call it:

    - ``diagnose(model, inputs, target=None, loss_fn=None)`` runs one forward and
      backward pass per batch with :func:`netviz.watch` probes (those the
      per-step checks read, :func:`netviz.analysis.specs.probes_for`:
      ``activation_stats``, ``grad_stats``, ``grad_norm``, ``timestep_grad``,
      ``unit_activity``) and diagnoses the records.
      Activation *functions* called inside ``forward`` (``F.relu``,
      ``torch.sigmoid``, ``x.tanh()``, ``F.gelu`` ..., see
      :mod:`netviz.diagnosis.functional`) are checked too, named like
      ``"fc1 -> relu"``. The model is left exactly as it was: parameters,
      ``.grad`` (``None`` included: the original gradient tensors are put
      back), the training mode of every module, buffers (batch-norm running
      statistics), hooks and the torch random state (CPU and the CUDA devices
      the model uses).
    - ``diagnose(records=table)`` reads a record table from ``netviz.watch`` over
      many steps and also runs the checks over training (update ratios,
      gradient trends and spikes, train vs eval drift); a finding seen in
      several steps says in how many and since when. (The checks alone, records
      in and findings out, are :func:`netviz.analysis.analyze`.)

    Both ways use one definition of the layers that count for depth (modules
    whose own parameters got a recorded gradient, see
    :func:`netviz.analysis.checks.depth_layers`), so a network and its records
    get the same answer. The report lists every check: found, clear (on what)
    or not run (why).

    Parameters
    ----------
    model
        A :class:`torch.nn.Module` (DDP, DataParallel and ``torch.compile``
        wrappers are unwrapped). Not with ``records``.
    inputs
        One batch: a tensor (``model(x)``), a tuple (``model(*x)``) or a dict
        (``model(**x)``); or an iterable (list, DataLoader, generator) of
        ``(inputs, target)`` pairs, one pass each. Only with a model.
    target
        The target of a single batch, or ``None``.
    loss_fn
        ``loss_fn(output, target)`` (``loss_fn(output)`` when ``target`` is
        ``None``) returning a scalar. Default: see :func:`default_loss`
        (cross-entropy for integer targets, MSE for floating targets,
        ``output.sum() / N`` without a target). For recurrent models, use a
        loss of the last step(s) to see gradients vanish through time.
    records
        Instead of a model: a record table (pandas DataFrame from
        ``netviz.watch(...).to_pandas()`` or ``netviz.load(path)``), a
        :class:`netviz.Monitor` or a :class:`Report`.
    thresholds
        A :class:`~netviz.Thresholds`; the defaults are documented there.
    train
        Run in training mode (default: dropout and batch statistics act as in
        training) or, with ``False``, in eval mode. Only with a model.
    modules
        Which modules to diagnose, with the selectors of :func:`netviz.watch`:
        a glob or list of globs over qualified names, a module type or tuple of
        types, or a predicate ``(name, module) -> bool``; default every leaf
        module and every module owning parameters. With a model they select
        the modules watched; with ``records`` (names only) globs select the
        recorded modules the gradient-flow, trend and spike checks compare.
    max_batches
        Use at most this many batches of an iterable ``inputs``.

    Returns
    -------
    Report
        ``report.findings``, ``report.checks``; ``print(report)`` reads as
        advice and lists what was checked; ``report.plot()`` draws the
        gradient statistic the report quotes.

    Raises
    ------
    NetvizTypeError, NetvizValueError
        Bad ``model``, ``records``, ``inputs``, ``target``, ``modules`` or
        ``loss_fn`` (a record table passed as ``model``: use ``records=``); a
        loss that is not a scalar or has no gradient; a record table without
        rows (nothing recorded is not an all-clear). They derive from
        :class:`TypeError` and :class:`ValueError`.
    ModelError
        The model's forward (the message names the module reached), ``loss_fn``
        or the backward pass raised.

    Examples
    --------
    >>> import torch
    >>> import netviz
    >>> _ = torch.manual_seed(0)
    >>> layers = []
    >>> for _ in range(10):
    ...     layers += [torch.nn.Linear(16, 16), torch.nn.Sigmoid()]
    >>> net = torch.nn.Sequential(*layers, torch.nn.Linear(16, 2))
    >>> report = netviz.diagnose(net, torch.randn(64, 16), torch.randint(0, 2, (64,)))
    >>> report.kinds()
    ['vanishing_gradients']
    >>> report.findings[0].module  # the input-side end of the range
    '0'
    >>> report.check("saturation").status, report.check("update_ratio").status
    ('clear', 'not_run')
    >>> netviz.diagnose(records=report).check("flow").status  # the same records again
    'found'
    """
    th = thresholds if thresholds is not None else Thresholds()
    if not isinstance(th, Thresholds):
        raise NetvizTypeError(f"`thresholds` must be a netviz.Thresholds, got {type(th).__name__}")
    if records is not None:
        if model is not None or inputs is not None or target is not None or loss_fn is not None:
            raise NetvizTypeError(
                "diagnose(records=...) reads a record table alone: `model`, `inputs`, `target` "
                "and `loss_fn` are for diagnosing a model, diagnose(model, inputs, ...)"
            )
        return _records_report(records, th, modules)
    if model is None:
        raise NetvizTypeError(
            "diagnose needs a model, diagnose(model, inputs[, target, loss_fn]), or a record "
            "table, diagnose(records=table)"
        )
    if not isinstance(model, nn.Module):
        raise _not_a_model(model)
    if not isinstance(train, bool):
        raise NetvizTypeError(f"`train` must be True or False, got {train!r}")
    if inputs is None:
        raise NetvizTypeError(
            "`inputs` is required to diagnose a model (a batch the model accepts)"
        )
    if max_batches is not None and (
        isinstance(max_batches, bool) or not isinstance(max_batches, int) or max_batches < 1
    ):
        raise NetvizValueError(f"`max_batches` must be a positive int or None, got {max_batches!r}")
    if loss_fn is not None and not callable(loss_fn):
        raise NetvizTypeError(f"`loss_fn` must be callable, got {type(loss_fn).__name__}")
    table, seen, loss_name, _ = run_passes(
        model, inputs, target, loss_fn, train, modules, max_batches
    )
    if not len(table):
        raise empty_error("the passes over the model")
    findings, checks, facts = analyze(table, th, extra=_rnn_evidence(model), source="model")
    findings = _blame_inputs(findings, seen)
    summary = _summary(
        table,
        facts,
        model=type(unwrap(model)).__name__,
        source="model",
        loss=loss_name,
        mode="train" if train else "eval",
    )
    return Report(findings, table, th, summary, checks)
