"""``netviz.diagnose``: run a model on a batch (or read records) and say what is wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import torch
from torch import nn

from netviz.analysis.analyze import analyze, empty_error
from netviz.analysis.checks import gradient_series
from netviz.analysis.findings import Finding, Thresholds
from netviz.analysis.order import as_records, module_order
from netviz.analysis.passes import ModelError, default_loss, run_passes
from netviz.analysis.report import Report
from netviz.capture.selection import ModuleSelector, unwrap

__all__ = ["INPUTS", "ModelError", "analyze", "default_loss", "diagnose", "weight_layers"]

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
    from netviz.analysis.checks import gradient_magnitudes

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


def diagnose(
    model_or_records: nn.Module | pd.DataFrame,
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
    """Look for vanishing/exploding gradients, dead or saturated units, NaN/Inf, and
    (from records of a training run) trends, spikes, update ratios and train/eval drift.

    Two ways to call it:

    - ``diagnose(model, inputs, target=None, loss_fn=None)`` runs one forward and
      backward pass per batch with :func:`netviz.watch` probes
      (``grad_norm``, ``grad_stats``, ``activation_stats``, ``timestep_grad`` and
      :class:`~netviz.capture.probes.units.UnitActivity`) and diagnoses the records.
      Activation *functions* called inside ``forward`` (``F.relu``,
      ``torch.sigmoid``, ``x.tanh()``, ``F.gelu`` ..., see
      :mod:`netviz.analysis.functional`) are checked too, named like
      ``"fc1 -> relu"``. The model is left exactly as it was: parameters,
      ``.grad`` (``None`` included: the original gradient tensors are put
      back), the training mode of every module, buffers (batch-norm running
      statistics), hooks and the torch random state (CPU and the CUDA devices
      the model uses).
    - ``diagnose(records)`` reads a record table from ``netviz.watch`` over many
      steps and also runs the checks over training (update ratios, gradient
      trends and spikes, train vs eval drift); a finding seen in several steps
      says in how many and since when.

    Both ways use one definition of the layers that count for depth (modules
    whose own parameters got a recorded gradient, see
    :func:`netviz.analysis.checks.depth_layers`), so a network and its records
    get the same answer. The report lists every check: found, clear (on what)
    or not run (why).

    Parameters
    ----------
    model_or_records
        A :class:`torch.nn.Module`, or a record table (pandas DataFrame from
        ``netviz.watch(...).to_pandas()`` or ``netviz.load(path)``, a
        :class:`netviz.Monitor` or a :class:`Report`).
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
        Qualified names of the modules the gradient-flow, trend and spike
        checks compare, input side first. Default: every module with gradient
        records (the same for a model and for records).

    Returns
    -------
    Report
        ``report.findings``, ``report.checks``; ``print(report)`` reads as
        advice and lists what was checked; ``report.plot()`` draws the
        gradient statistic the report quotes.

    Raises
    ------
    TypeError, ValueError
        Bad ``model_or_records``, ``inputs``, ``target`` or ``loss_fn``; a loss
        that is not a scalar or has no gradient; a record table without rows
        (nothing recorded is not an all-clear).
    ModelError
        The model's forward (the message names the module reached), ``loss_fn``
        or the backward pass raised.

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
    >>> report.check("saturation").status, report.check("update_ratio").status
    ('clear', 'not_run')
    """
    th = thresholds if thresholds is not None else Thresholds()
    if not isinstance(th, Thresholds):
        raise TypeError(f"`thresholds` must be a netviz.Thresholds, got {type(th).__name__}")
    if not isinstance(model_or_records, nn.Module):
        if inputs is not None or target is not None or loss_fn is not None:
            raise TypeError(
                "`inputs`, `target` and `loss_fn` are for diagnosing a model (a torch.nn.Module); "
                f"`model_or_records` is a {type(model_or_records).__name__}: a record table is "
                "diagnosed alone, diagnose(records)"
            )
        records = as_records(model_or_records, name="model_or_records")
        if not len(records):
            raise empty_error(f"`model_or_records` ({type(model_or_records).__name__})")
        chosen = _check_layers(layers, records)
        findings, checks, facts = analyze(records, th, layers=chosen, source="records")
        summary = _summary(records, facts, model="records", source="records")
        return Report(findings, records, th, summary, checks)
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
    model = model_or_records
    records, seen, loss_name, _ = run_passes(
        model, inputs, target, loss_fn, train, modules, max_batches
    )
    if not len(records):
        raise empty_error("the passes over the model")
    chosen = _check_layers(layers, records)
    findings, checks, facts = analyze(
        records, th, layers=chosen, extra=_rnn_evidence(model), source="model"
    )
    findings = _blame_inputs(findings, seen)
    summary = _summary(
        records,
        facts,
        model=type(unwrap(model)).__name__,
        source="model",
        loss=loss_name,
        mode="train" if train else "eval",
    )
    return Report(findings, records, th, summary, checks)
