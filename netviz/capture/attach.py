"""``watch``: validate the arguments, select modules, attach a :class:`Monitor`."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from netviz._compat import unwrap_optimizer
from netviz.capture.distributed import make_gather
from netviz.capture.monitor import Gather, Monitor
from netviz.capture.probe import Probe
from netviz.capture.probes import BUILTIN_PROBES
from netviz.capture.selection import ModuleSelector, select_modules
from netviz.sinks.base import as_sink_list  # issue #15

__all__ = ["DEFAULT_PROBES", "resolve_probes", "watch"]

DEFAULT_PROBES = ("grad_norm", "activation_stats")


def resolve_probes(probes: str | Probe | Iterable[str | Probe]) -> list[Probe]:
    """Probe names or objects -> fresh probe objects, validated."""
    if isinstance(probes, (str, Probe)):
        probes = [probes]
    try:
        items = list(probes)
    except TypeError:
        raise TypeError(
            f"`probes` must be a probe name, a Probe object or a list of them, got {type(probes).__name__}"
        ) from None
    if not items:
        raise ValueError(f"`probes` is empty; known probes: {', '.join(sorted(BUILTIN_PROBES))}")
    out: list[Probe] = []
    for item in items:
        if isinstance(item, Probe):
            out.append(item)
        elif isinstance(item, str):
            cls = BUILTIN_PROBES.get(item)
            if cls is None:
                raise ValueError(
                    f"unknown probe {item!r}; known probes: {', '.join(sorted(BUILTIN_PROBES))} "
                    "(or pass a netviz.Probe object)"
                )
            out.append(cls())
        else:
            raise TypeError(
                f"`probes` entries must be names (str) or Probe objects, got {type(item).__name__}"
            )
    names = [p.name for p in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"probe(s) {dupes} given more than once")
    return out


def watch(
    model: nn.Module,
    probes: str | Probe | Iterable[str | Probe] = DEFAULT_PROBES,
    modules: ModuleSelector = None,
    every: int = 1,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    scaler: Any = None,
    eval: bool = True,
    distributed: bool | str | None = "auto",
    per_rank: bool = False,
    process_group: Any = None,
    all_ranks: bool = False,
    sinks: Any = None,
    keep: bool = True,
) -> Monitor:
    """Attach probes to ``model`` and return a :class:`Monitor`.

    What a step, a phase, a micro-batch, a call and ``order`` are is defined
    in ``docs/watch.md`` ("What a step is").

    Parameters
    ----------
    model
        Any :class:`torch.nn.Module` (also wrapped in DDP or ``torch.compile``;
        names are reported relative to the inner model).
    probes
        Names or :class:`~netviz.Probe` objects: ``"grad_norm"``,
        ``"grad_stats"``, ``"activation_stats"``, ``"weight_stats"``,
        ``"timestep_grad"`` (||dL/dh_t|| of recurrent modules, ``call`` = t),
        and the snapshot probes ``"attention"`` and ``"feature_maps"`` (see
        ``netviz.capture.probes.BUILTIN_PROBES``).
    modules
        ``None`` (every leaf module and every module owning parameters
        directly), a glob or list of globs over qualified names
        (``"encoder.layers.*.linear1"``), a module type or tuple of types, or
        a predicate ``(name, module) -> bool``.
    every
        Record every N-th step (``step % every == 0``); other steps cost one
        attribute check per hook.
    optimizer
        If given, the step closes automatically after each ``optimizer.step()``
        (a step is one optimizer update; forwards before it are its
        micro-batches). Wrappers holding the optimizer as ``.optimizer``
        (accelerate's ``AcceleratedOptimizer``, Lightning's) are unwrapped.
    scaler
        A ``torch.amp.GradScaler``: the step closes at each
        ``scaler.step(optimizer)``, also when the scaler skips the update
        because of inf/NaN gradients; such steps are recorded with
        ``skipped=True`` and the statistics of the unscaled gradients (also
        with fused optimizers). Use instead of ``optimizer=`` in AMP loops.
    eval
        Record forwards that run without gradients (``no_grad``,
        ``inference_mode``: validation) as ``phase="eval"`` rows of the step
        during which they ran (default ``True``); ``False`` ignores them.
    distributed
        ``"auto"`` (default; also ``None``): when ``torch.distributed`` is
        initialised with more than one rank, every rank must call ``watch``
        with the same arguments; each recorded step is gathered with one
        collective and rank 0 keeps the statistics of the global batch and of
        the full (synchronised, unsharded) gradients. ``True`` requires an
        initialised process group; ``False`` records each rank's local
        statistics without communicating. See ``docs/distributed.md``.
    per_rank
        Distributed runs only: keep every rank's own statistics (an extra
        ``rank`` column) instead of merging them.
    process_group
        Distributed runs only: the group to gather over (default: a gloo
        group created for the monitor over all ranks).
    all_ranks
        Distributed runs only: keep the records on every rank (for example
        to take the same decision everywhere); by default only rank 0 keeps
        them and :meth:`Monitor.save` writes nothing on the other ranks.
    sinks
        Where each recorded step also goes once it is on the host: a
        :mod:`netviz.sinks` object (``TensorBoard``, ``Wandb``, ``MLflow``,
        ``Parquet``), any callable ``(step, table)``, or a list of them. See
        ``docs/integrations.md``.
    keep
        ``False`` keeps no records in memory (they only go to ``sinks``, for
        example a :class:`netviz.sinks.Parquet` folder, so a long run's memory
        stays flat); :meth:`Monitor.to_pandas` then raises.

    Returns
    -------
    Monitor
        A context manager; leaving it detaches every hook.

    Statistics
    ----------
    ``activation_stats`` (each selected module's output, first tensor of a
    tuple/list/dict output, taken when the module returns): ``mean``, ``std``
    (population), ``min``, ``max``, ``abs_mean`` over finite elements;
    ``zero_frac``, ``nonfinite_frac``, ``numel``.

    ``grad_norm``: ``l2`` over the gradients of a module's own parameters
    (``recurse=False``) as they are when the step closes; frozen parameters and
    parameters without ``.grad`` give no rows.

    ``grad_stats``: ``mean``, ``std``, ``abs_mean``, ``abs_max`` (finite
    entries), ``l2``, ``zero_frac``, ``nonfinite_frac`` of the same gradients.

    ``weight_stats``: ``l2`` of a module's own parameters and
    ``update_ratio`` = ||w_now - w_prev|| / ||w_prev|| against the previous
    recorded step (from the second recorded step on).

    ``attention`` keeps per-head attention probabilities and ``feature_maps``
    the first batch item (16 channels) of each selected module's output as
    snapshots at recorded steps, read with :meth:`Monitor.snapshots`.

    Half-precision tensors are reduced in float32. Hooks never synchronise
    with the host; each recorded step is moved to the host in one transfer.

    Raises
    ------
    TypeError
        ``model`` is not an ``nn.Module``, or ``probes``/``modules`` have the wrong type.
    ValueError
        Unknown probe name, ``every`` < 1, or a selection matching no module.

    Examples
    --------
    >>> import torch, netviz
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> with netviz.watch(net, optimizer=opt) as mon:
    ...     for _ in range(3):
    ...         opt.zero_grad()
    ...         net(torch.randn(16, 4)).pow(2).mean().backward()
    ...         opt.step()
    >>> df = mon.to_pandas()
    >>> sorted(df.probe.unique()), sorted(df.step.unique().tolist())
    (['activation_stats', 'grad_norm'], [0, 1, 2])
    """
    return _watch(
        model,
        probes,
        modules,
        every,
        optimizer,
        scaler=scaler,
        record_eval=eval,
        distributed=distributed,
        per_rank=per_rank,
        process_group=process_group,
        all_ranks=all_ranks,
        sinks=sinks,
        keep=keep,
    )


def _watch(
    model: nn.Module,
    probes: Any,
    modules: ModuleSelector,
    every: int,
    optimizer: torch.optim.Optimizer | None,
    gather: Gather | None = None,
    *,
    scaler: Any = None,
    record_eval: bool = True,
    distributed: bool | str | None = False,
    per_rank: bool = False,
    process_group: Any = None,
    all_ranks: bool = False,
    sinks: Any = None,
    keep: bool = True,
) -> Monitor:
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"`model` must be a torch.nn.Module, got {type(model).__name__}: {model!r:.60}"
        )
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"`every` must be an int >= 1, got {every!r}")
    if isinstance(model, torch.jit.ScriptModule):
        raise TypeError(
            f"`model` is a TorchScript module ({type(model).__name__}, from torch.jit.trace or "
            "torch.jit.script): its compiled code calls no Python hooks, so netviz would record "
            "nothing. Watch the eager model (and script or trace it after the run)."
        )
    if optimizer is not None and unwrap_optimizer(optimizer) is None:
        raise TypeError(
            "`optimizer` must be a torch.optim.Optimizer (or a wrapper holding one as "
            f"`.optimizer`) or None, got {type(optimizer).__name__}"
        )
    if scaler is not None and not all(
        callable(getattr(scaler, a, None)) for a in ("step", "update", "is_enabled")
    ):
        raise TypeError(
            f"`scaler` must be a torch.amp.GradScaler or None, got {type(scaler).__name__}"
        )
    if not isinstance(record_eval, bool):
        raise TypeError(f"`eval` must be a bool, got {type(record_eval).__name__}")
    sink_list = as_sink_list(sinks)  # issue #15
    if not isinstance(keep, bool):
        raise TypeError(f"`keep` must be True or False, got {keep!r}")
    if not keep and not sink_list:
        raise ValueError(
            "watch(..., keep=False) keeps no records in memory, so it needs a sink to send them "
            "to, e.g. sinks=[netviz.sinks.Parquet('run.parquet')]"
        )
    resolved = resolve_probes(probes)
    selected = select_modules(model, modules)
    if gather is None:
        gather = make_gather(model, distributed, per_rank, process_group, all_ranks)
    scripted = [n or "<root>" for n, m in selected if isinstance(m, torch.jit.ScriptModule)]
    if scripted:
        warnings.warn(
            f"netviz: watched module(s) {scripted[:5]} are TorchScript modules; their "
            "submodules run compiled code that calls no hooks and get no forward records",
            UserWarning,
            stacklevel=3,
        )
    return Monitor(
        model,
        resolved,
        selected,
        every,
        optimizer,
        gather,
        scaler=scaler,
        record_eval=record_eval,
        sinks=sink_list,  # issue #15
        keep=keep,
    )
