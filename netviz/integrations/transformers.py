"""Hugging Face ``Trainer``: ``NetvizCallback`` records the model while ``train()`` runs.

Pass it in ``Trainer(callbacks=[NetvizCallback()])``: ``report_to`` only
knows transformers' own integrations. The optimizer the Trainer hands to
callbacks is accelerate's ``AcceleratedOptimizer``, whose
``register_step_post_hook`` raises; netviz hooks the real optimizer inside
it, which steps only at the end of each gradient-accumulation cycle.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from netviz.capture.selection import ModuleSelector
from netviz.errors import NetvizRuntimeError, NetvizValueError
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
from netviz.sinks.base import Sink
from netviz.sinks.series import SeriesSpec

__all__ = ["NetvizCallback", "sinks_for_report_to"]


def _tensorboard_dir(args: TrainingArguments) -> Path:
    """The run folder of the Trainer's own ``TensorBoardCallback`` (same run in TensorBoard)."""
    env = os.environ.get("TENSORBOARD_LOGGING_DIR")
    if env:
        return Path(env).expanduser()
    # TrainingArguments.__post_init__ turns output_dir=None into "trainer_output"
    runs = Path(args.output_dir or "trainer_output") / "runs"
    made = [p for p in runs.iterdir() if p.is_dir()] if runs.is_dir() else []
    if made:  # TensorBoardCallback.on_train_begin ran before ours and created its folder
        return max(made, key=lambda p: p.stat().st_mtime)
    return runs / "netviz"


def sinks_for_report_to(args: TrainingArguments, series: SeriesSpec = "compact") -> list[Sink]:
    """Sinks for the trackers in ``args.report_to`` (tensorboard, wandb, mlflow), at x = k + 1."""
    from netviz import sinks

    report_to = args.report_to or []
    if isinstance(report_to, str):
        report_to = [report_to]
    if "all" in report_to:
        report_to = ["tensorboard", "wandb", "mlflow"]
    out: list[Sink] = []
    if "tensorboard" in report_to:
        out.append(sinks.TensorBoard(_tensorboard_dir(args), series, step_offset=1))
    if "wandb" in report_to:
        import wandb

        if wandb.run is not None:
            out.append(
                sinks.Wandb(wandb.run, series, step_metric="train/global_step", step_offset=1)
            )
    if "mlflow" in report_to:
        import mlflow

        if mlflow.active_run() is not None:
            out.append(sinks.MLflow(None, series, step_offset=1))
    return out


class NetvizCallback(TrainerCallback, CallbackOptions):
    """Record a model trained by the Hugging Face ``Trainer``.

    Parameters
    ----------
    probes, modules
        As in :func:`netviz.watch`.
    every
        Record every N-th optimizer step; ``None``: the Trainer's logging interval
        (``args.logging_steps``).
    sinks
        ``"auto"``: the trackers in ``args.report_to`` (see
        :func:`sinks_for_report_to`); ``None``/``[]``: none; or a list of sinks.
        Written in ``on_log`` on the world's process zero.
    save
        Where the records go at the end of ``train()``, relative to
        ``args.output_dir``; ``None``: only in :attr:`monitor`.
    series
        What the tracker sinks show (``"compact"`` or ``"all"``).
    **watch_kwargs
        Passed to :func:`netviz.watch`.

    Steps: netviz step k is the optimizer step the Trainer counts as
    ``global_step`` k + 1 (its counter moves after the step), so trackers get
    netviz step k at x = k + 1, next to the Trainer's own metrics of that
    step. The Trainer's ``grad_norm`` is the total norm *before* clipping;
    netviz's per-layer ``grad_norm.l2`` is read after the step, so *after*
    clipping.
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
        **watch_kwargs: Any,
    ) -> None:
        CallbackOptions.__init__(self, probes, modules, every, sinks, save, series, watch_kwargs)
        self._trackers: list[Any] = []  # netviz sinks or user sinks with write/flush/close
        self._queue: list[tuple[int, pd.DataFrame]] = []

    def _take(
        self, step: int, table: pd.DataFrame
    ) -> None:  # the monitor's sink: queue until on_log
        if self._trackers:
            self._queue.append((step, table))

    def _drain(self) -> None:
        queue, self._queue = self._queue, []
        for step, table in queue:
            for sink in self._trackers:
                try:
                    sink.write(step, table)
                except Exception as err:  # a tracker failing must not stop training
                    warnings.warn(
                        f"netviz could not write step {step} to {type(sink).__name__}: "
                        f"{type(err).__name__}: {err} (the records stay in the monitor)",
                        RuntimeWarning,
                        stacklevel=2,
                    )
        for sink in self._trackers:
            sink.flush()

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        fsdp = getattr(args, "fsdp_config", None) or {}
        if getattr(args, "fsdp", None) and int(fsdp.get("version", 2)) == 1:
            raise fsdp1_error("fsdp_config version 1", 'fsdp_config={"version": 2}')
        if getattr(args, "deepspeed", None):
            warn_deepspeed("The Trainer")
        model, optimizer = kwargs.get("model"), kwargs.get("optimizer")
        if model is None or optimizer is None:
            raise NetvizRuntimeError(
                "NetvizCallback.on_train_begin needs the Trainer's model and optimizer"
            )
        logging_steps = getattr(state, "logging_steps", None) or args.logging_steps
        every = check_every(self.every, logging_steps, "args.logging_steps")
        if state.is_world_process_zero:
            if self.sinks == "auto":
                self._trackers = sinks_for_report_to(args, self.series)
            elif self.sinks:
                self._trackers = list(self.sinks)
            if self.watch_kwargs.get("keep", True) is False and not self._trackers:
                raise NetvizValueError(
                    "NetvizCallback(keep=False) keeps no records in memory, so it needs a sink "
                    "for them, e.g. sinks=[netviz.sinks.Parquet('run.parquet')]"
                )
        self.monitor = attach(
            model,
            optimizer,
            state.global_step,
            probes=self.probes,
            modules=self.modules,
            every=every,
            sinks=[self._take],
            **self.watch_kwargs,
        )

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if self.monitor is not None and self._trackers:
            self.monitor.flush()  # hand the steps recorded so far to the queue
            self._drain()

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.monitor is None:
            return
        self.monitor.detach()
        self._drain()
        for sink in self._trackers:
            sink.close()
        path = self.records_path(args.output_dir)
        if path is not None and state.is_world_process_zero:
            self.saved_to = self.monitor.save(path)
