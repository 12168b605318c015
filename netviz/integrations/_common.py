"""What the framework callbacks share (no framework imports here)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TypeAlias

from torch import nn

from netviz.capture.attach import DEFAULT_PROBES, watch
from netviz.capture.monitor import Monitor
from netviz.capture.probe import Probe
from netviz.capture.selection import ModuleSelector
from netviz.errors import NetvizValueError
from netviz.sinks.base import SinkLike
from netviz.sinks.series import SeriesSpec

__all__ = [
    "DEFAULT_PROBES",
    "CallbackOptions",
    "Probes",
    "SinksOption",
    "attach",
    "check_every",
    "save_path",
]

#: ``probes=``, as :func:`netviz.watch` takes it.
Probes: TypeAlias = str | Probe | Iterable[str | Probe]

#: ``sinks=`` of the integrations: ``"auto"`` (the framework's trackers), none, or sinks.
SinksOption: TypeAlias = Literal["auto"] | Iterable[SinkLike] | None


def check_every(every: object, default: object, source: str) -> int:
    """``every`` or, if None, the framework's logging interval (an int >= 1)."""
    value = default if every is None else every
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise NetvizValueError(
            f"NetvizCallback(every=...) must be an int >= 1 (None: {source}), got {value!r}"
        )
    return value


def attach(
    model: nn.Module,
    optimizer: Any,  # a torch optimizer or a framework's wrapper of one (LightningOptimizer)
    step: int,
    **kwargs: Any,
) -> Monitor:
    """``watch`` closing steps on ``optimizer``, numbered from ``step``.

    ``watch`` hooks the real torch optimizer inside framework wrappers:
    Lightning's ``LightningOptimizer`` (``._optimizer``) and accelerate's
    ``AcceleratedOptimizer`` (``.optimizer``; its own ``register_step_post_hook``
    raises, as it never runs ``Optimizer.__init__``).
    """
    monitor = watch(model, optimizer=optimizer, **kwargs)
    monitor._start_at(step)
    return monitor


def warn_deepspeed(framework: str) -> None:
    warnings.warn(
        f"{framework} runs DeepSpeed: ZeRO keeps gradients in its own partitioned buffers and "
        "leaves each parameter's .grad empty, so netviz's gradient probes (grad_norm, "
        "grad_stats) record nothing; activation and weight statistics still work",
        RuntimeWarning,
        stacklevel=3,
    )


def fsdp1_error(framework: str, instead: str) -> NetvizValueError:
    return NetvizValueError(
        f"netviz cannot record under FSDP1 ({framework}): its flat parameters cannot be mapped "
        f"back to modules. Use FSDP2 instead ({instead}); netviz merges FSDP2's sharded "
        "gradients into full per-module norms"
    )


def save_path(save: str | os.PathLike | None, base: str | os.PathLike | None) -> Path | None:
    """Where records are saved: ``save`` relative to ``base`` (None: not saved)."""
    if save is None:
        return None
    path = Path(save)
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path


class CallbackOptions:
    """The options both framework callbacks take (see their docstrings)."""

    def __init__(
        self,
        probes: Probes = DEFAULT_PROBES,
        modules: ModuleSelector = None,
        every: int | None = None,
        sinks: SinksOption = "auto",
        save: str | os.PathLike[str] | None = "netviz.parquet",
        series: SeriesSpec = "compact",
        watch_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(sinks, str) and sinks != "auto":
            raise NetvizValueError(
                f"`sinks` must be 'auto', None or a list of sinks, got {sinks!r}"
            )
        self.probes, self.modules, self.every = probes, modules, every
        self.sinks, self.save, self.series = sinks, save, series
        self.watch_kwargs = dict(watch_kwargs or {})
        self.monitor: Monitor | None = None
        self.saved_to: os.PathLike[str] | None = None

    def records_path(self, base: str | os.PathLike | None) -> Path | None:
        """Where :meth:`Monitor.save` writes at the end (None: not saved, also with keep=False)."""
        if self.watch_kwargs.get("keep", True) is False:
            return None  # the records are in the sinks, not in memory
        return save_path(self.save, base)
