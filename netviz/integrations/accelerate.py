"""accelerate: watch a prepared model and write into the Accelerator's trackers.

Recipe (gradient accumulation with ``accumulate()``)::

    accelerator = Accelerator(gradient_accumulation_steps=2, log_with="tensorboard",
                              project_dir="runs")
    accelerator.init_trackers("demo")
    model, opt, loader = accelerator.prepare(model, opt, loader)
    mon = netviz.integrations.accelerate.watch(accelerator, model, opt, every=10)
    for x, y in loader:
        with accelerator.accumulate(model):
            accelerator.backward(loss_fn(model(x), y))
            opt.step()          # a real step only when gradients sync
            opt.zero_grad()
    mon.detach()
    accelerator.end_training()

netviz hooks the torch optimizer inside the ``AcceleratedOptimizer``: it
steps only at the end of an accumulation cycle, so one netviz step is one
real optimizer step with all its micro-batches. netviz is not an accelerate
tracker (trackers take scalars only); it writes into the trackers' own
writer/run. Do not log dicts with ``accelerator.log``: the TensorBoard
tracker turns them into ``add_scalars``, one TensorBoard run per key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from torch import nn

from netviz.capture.monitor import Monitor
from netviz.capture.selection import ModuleSelector
from netviz.errors import NetvizValueError
from netviz.integrations._common import DEFAULT_PROBES, Probes, SinksOption, attach
from netviz.sinks.base import Sink, SinkLike
from netviz.sinks.series import SeriesSpec

if TYPE_CHECKING:
    from accelerate import Accelerator

__all__ = ["sinks_from", "watch"]

_KNOWN = ("tensorboard", "wandb", "mlflow")


def sinks_from(
    accelerator: Accelerator,
    names: Iterable[str] | None = None,
    series: SeriesSpec = "compact",
    step_offset: int = 0,
) -> list[Sink]:
    """Sinks for the Accelerator's TensorBoard, wandb and MLflow trackers (main process only).

    Built from ``accelerator.get_tracker(name, unwrap=True)``: the
    ``SummaryWriter``, the wandb run, the active MLflow run. ``names``
    restricts which trackers (default: every one of those three that is
    initialised); other trackers are skipped. On other processes: ``[]``.
    """
    from netviz import sinks

    if not accelerator.is_main_process:
        return []
    present = [t.name for t in accelerator.trackers]
    wanted = [n for n in present if n in _KNOWN] if names is None else list(names)
    unknown = [n for n in wanted if n not in _KNOWN]
    if unknown:
        raise NetvizValueError(
            f"netviz writes to the trackers {list(_KNOWN)}, not {unknown}; pass names from those"
        )
    missing = [n for n in wanted if n not in present]
    if missing:
        raise NetvizValueError(
            f"tracker(s) {missing} are not initialised in this Accelerator (it has {present}); "
            "pass log_with=... and call accelerator.init_trackers(...) first"
        )
    out: list[Sink] = []
    for name in wanted:
        inner: Any = accelerator.get_tracker(name, unwrap=True)  # the tracker's own object
        if name == "tensorboard":
            out.append(sinks.TensorBoard(inner, series, step_offset=step_offset))
        elif name == "wandb":
            out.append(sinks.Wandb(inner, series, step_offset=step_offset))
        else:
            out.append(sinks.MLflow(inner.info.run_id, series, step_offset=step_offset))
    return out


def watch(
    accelerator: Accelerator,
    model: nn.Module,
    optimizer: Any,  # accelerate's AcceleratedOptimizer (or the torch optimizer inside it)
    probes: Probes = DEFAULT_PROBES,
    modules: ModuleSelector = None,
    every: int = 1,
    *,
    sinks: SinksOption = "auto",
    series: SeriesSpec = "compact",
    **watch_kwargs: Any,
) -> Monitor:
    """:func:`netviz.watch` on ``accelerator.unwrap_model(model)``, closing steps on the
    optimizer inside the prepared one; ``sinks="auto"`` writes into the trackers
    (:func:`sinks_from`). Call on every process.
    """
    chosen: list[SinkLike] = (
        list(sinks_from(accelerator, series=series)) if sinks == "auto" else list(sinks or [])
    )
    return attach(
        accelerator.unwrap_model(model),
        optimizer,
        0,
        probes=probes,
        modules=modules,
        every=every,
        sinks=chosen,
        **watch_kwargs,
    )
