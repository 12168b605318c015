"""PyTorch Lightning: ``NetvizCallback`` records a ``LightningModule`` during ``fit``.

Steps close with netviz's optimizer post-step hook on the real torch
optimizer, which is right across gradient accumulation (one netviz step per
optimizer step), AMP (gradients are read after unscaling) and fused
optimizers; gradients are never read in ``on_before_optimizer_step`` (scaled
with fused optimizers, and before clipping).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import lightning.pytorch as pl
import pandas as pd
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger

from netviz.capture.selection import ModuleSelector
from netviz.errors import NetvizRuntimeError
from netviz.integrations._common import (
    DEFAULT_PROBES,
    CallbackOptions,
    Probes,
    SinksOption,
    attach,
    check_every,
    fsdp1_error,
    warn_deepspeed,
)
from netviz.sinks.base import SinkLike, TrackerSink
from netviz.sinks.series import SeriesSpec

__all__ = ["LoggerSink", "NetvizCallback", "sinks_for_loggers"]


class LoggerSink(TrackerSink):
    """Scalars through any Lightning logger's ``log_metrics`` (flat floats, never dicts)."""

    def __init__(self, logger: Logger, series: SeriesSpec = "compact") -> None:
        super().__init__(series)
        self.logger = logger

    def write(self, step: int, table: pd.DataFrame) -> None:
        scalars = self.scalars(table)
        if scalars:
            self.logger.log_metrics(scalars, step=step + self.step_offset)

    def flush(self) -> None:
        save = getattr(self.logger, "save", None)
        if callable(save):
            save()


def _is(obj: object, class_name: str) -> bool:
    return any(c.__name__ == class_name for c in type(obj).__mro__)


def sinks_for_loggers(loggers: Iterable[Logger], series: SeriesSpec = "compact") -> list[SinkLike]:
    """Sinks writing into the trainer's loggers, mapped by type.

    ``TensorBoardLogger`` -> :class:`netviz.sinks.TensorBoard` on its writer;
    ``WandbLogger`` -> :class:`netviz.sinks.Wandb` on its run, x axis
    ``trainer/global_step``; ``MLFlowLogger`` -> :class:`netviz.sinks.MLflow`
    on its client and run; any other logger -> :class:`LoggerSink`.
    """
    from netviz import sinks

    out: list[SinkLike] = []
    for logger in loggers:
        known: Any = logger  # matched by class name: the logger classes import their trackers
        if _is(logger, "TensorBoardLogger"):
            out.append(sinks.TensorBoard(known.experiment, series))
        elif _is(logger, "WandbLogger"):
            out.append(sinks.Wandb(known.experiment, series, step_metric="trainer/global_step"))
        elif _is(logger, "MLFlowLogger"):
            out.append(sinks.MLflow(known.run_id, series, client=known.experiment))
        else:
            out.append(LoggerSink(logger, series))
    return out


class NetvizCallback(Callback, CallbackOptions):
    """Record a ``LightningModule`` while ``Trainer.fit`` runs.

    Parameters
    ----------
    probes, modules
        As in :func:`netviz.watch`.
    every
        Record every N-th optimizer step; ``None``: ``trainer.log_every_n_steps``.
    sinks
        ``"auto"``: write into ``trainer.loggers`` (see :func:`sinks_for_loggers`);
        ``None``/``[]``: no tracker; or a list of sinks. Written on global rank 0.
    save
        Where the records go at the end of ``fit`` (rank 0), relative to
        ``trainer.log_dir``; ``None`` keeps them only in :attr:`monitor`.
    series
        What the tracker sinks show (``"compact"`` or ``"all"``).
    optimizer_idx
        Which of ``trainer.optimizers`` closes netviz's step (default: the last).
    **watch_kwargs
        Passed to :func:`netviz.watch` (``distributed=``, ``per_rank=``, ...).

    Steps: netviz step k is the k-th optimizer step, numbered like
    ``trainer.global_step`` (also after a resume) and logged at x = k, where
    Lightning logs that step's metrics. Validation forwards land in the open
    step (the next optimizer step's) with ``phase="eval"``; the sanity check
    is not recorded.
    """

    def __init__(
        self,
        probes: Probes = DEFAULT_PROBES,
        modules: ModuleSelector = None,
        every: int | None = None,
        sinks: SinksOption = "auto",
        save: str | os.PathLike[str] | None = "netviz.parquet",
        *,
        series: SeriesSpec = "compact",
        optimizer_idx: int = -1,
        **watch_kwargs: Any,
    ) -> None:
        CallbackOptions.__init__(self, probes, modules, every, sinks, save, series, watch_kwargs)
        self.optimizer_idx = optimizer_idx

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        strategy = trainer.strategy
        if _is(strategy, "FSDPStrategy"):
            raise fsdp1_error(
                'Lightning strategy="fsdp"',
                "lightning.pytorch.strategies.ModelParallelStrategy with fully_shard",
            )
        if _is(strategy, "DeepSpeedStrategy"):
            warn_deepspeed("Lightning")
        if not trainer.optimizers:
            raise NetvizRuntimeError(
                "NetvizCallback found no optimizer in trainer.optimizers; "
                "configure_optimizers() must return one"
            )
        # set on the Trainer by its logger connector, so not in Trainer's declared attributes
        logging_every = getattr(trainer, "log_every_n_steps")  # noqa: B009
        every = check_every(self.every, logging_every, "trainer.log_every_n_steps")
        sinks: list[SinkLike] = []
        kwargs = dict(self.watch_kwargs)
        if trainer.is_global_zero:  # every rank attaches (the gather is collective)
            if self.sinks == "auto":
                sinks = sinks_for_loggers(trainer.loggers, self.series)
            elif self.sinks:
                sinks = list(self.sinks)
        else:
            kwargs.pop("keep", None)  # other ranks keep nothing anyway, and have no sinks
        self.monitor = attach(
            pl_module,
            trainer.optimizers[self.optimizer_idx],
            trainer.global_step,
            probes=self.probes,
            modules=self.modules,
            every=every,
            sinks=sinks,
            **kwargs,
        )

    def on_sanity_check_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.monitor is not None:
            self.monitor._set_record_eval(False)

    def on_sanity_check_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.monitor is not None:
            self.monitor._set_record_eval(self.watch_kwargs.get("eval", True))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        path = self.records_path(trainer.log_dir)  # log_dir is collective: all ranks
        self._finish(flush=True)
        if path is not None and self.monitor is not None and trainer.is_global_zero:
            self.saved_to = self.monitor.save(path)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        # another rank may never reach a collective flush: drop the open step there
        self._finish(flush=trainer.world_size == 1)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._finish(flush=trainer.world_size == 1)

    def _finish(self, flush: bool) -> None:
        if self.monitor is not None and self.monitor.attached:
            self.monitor.detach(flush=flush)
