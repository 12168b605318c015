"""Activation functions called inside ``forward`` (``F.relu``, ``torch.sigmoid``, ``x.tanh()``).

:func:`netviz.diagnose` runs the model's forward inside a :class:`ForwardTracker`:
forward pre/post hooks on every module keep the stack of modules being run
(so an exception names the module reached), and a
:class:`~torch.overrides.TorchFunctionMode` sees every call of an activation
function. Each call gets the ``unit_activity`` statistics of
:class:`~netviz.capture.probes.units.UnitActivity` (the same code, so the
numbers equal the probe's), attributed to the module that produced its input:

- inside an activation module (``nn.GELU``, ``nn.LeakyReLU`` ...: a leaf without
  parameters) the call is named after that module (``"act"``);
- elsewhere after the last sub-module that finished in the calling module's
  forward, as ``"fc1 -> relu"``; or after the calling module itself when none
  finished yet (``"block -> relu"``, ``"(model) -> relu"`` at the root).

A unit is an index along dimension 1, as for the probe, except for >= 3-D
outputs of an ``nn.Linear`` (``(batch, tokens, features)`` in a transformer's
feed-forward block), whose units are the features on the last dimension.

Calls made by netviz itself (probes replaying a recurrent layer) are ignored.
The mode costs a Python call per torch operation, which is why
``netviz.watch`` does not use it: its ``unit_activity`` probe sees activation
modules only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from netviz._leaf import first_tensor
from netviz.capture.probes.units import BOUNDED, RELU_FAMILY, UnitActivity

__all__ = ["ACTIVATIONS", "ForwardTracker"]

_RELU, _SIGMOID, _TANH = nn.ReLU(), nn.Sigmoid(), nn.Tanh()


def _functions() -> dict[Callable[..., Any], tuple[str, nn.Module | None]]:
    """``{function: (label, stand-in module for UnitActivity, or None: judged by slope)}``."""
    exact: dict[
        str, list[Callable[..., Any]]
    ] = {  # zero output and zero slope exactly where the input is <= 0
        "relu": [F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_],
        "relu6": [F.relu6],
    }
    sloped: dict[
        str, list[Callable[..., Any]]
    ] = {  # a nonzero slope below zero: a unit is dead where the slope is ~0
        "leaky_relu": [F.leaky_relu, F.leaky_relu_],
        "gelu": [F.gelu],
        "silu": [F.silu],
        "elu": [F.elu, F.elu_],
        "selu": [F.selu, torch.selu, torch.selu_],
        "celu": [F.celu],
        "mish": [F.mish],
        "hardswish": [F.hardswish],
    }
    bounded: dict[str, tuple[list[Callable[..., Any]], nn.Module]] = {
        "sigmoid": (
            [
                F.sigmoid,
                torch.sigmoid,
                torch.sigmoid_,
                torch.Tensor.sigmoid,
                torch.Tensor.sigmoid_,
                F.hardsigmoid,
            ],
            _SIGMOID,
        ),
        "tanh": (
            [F.tanh, torch.tanh, torch.tanh_, torch.Tensor.tanh, torch.Tensor.tanh_],
            _TANH,
        ),
    }
    out: dict[Callable[..., Any], tuple[str, nn.Module | None]] = {}
    for label, fns in exact.items():
        out.update({fn: (label, _RELU) for fn in fns})
    for label, fns in sloped.items():
        out.update({fn: (label, None) for fn in fns})
    for label, (fns, standin) in bounded.items():
        out.update({fn: (label, standin) for fn in fns})
    return out


#: Largest slope :math:`|f'(x)|` of a sloped activation (leaky ReLU, GELU, SiLU, ELU
#: ...) at which a position counts as inactive: a unit inactive for all but
#: ``dead_tol`` of the batch is dead, as a ReLU unit that is never positive.
FLAT_SLOPE = 0.01
_DELTA = 1e-2  # half-width of the central difference that measures the slope


def _slope_raw(
    func: Callable[..., Any], x: torch.Tensor, args: tuple, kwargs: dict, dead_tol: float
) -> torch.Tensor | None:
    """UnitActivity's raw layout ``[units, dead, nan, numel, 1]`` from the slope at ``x``."""
    if not x.is_floating_point() or x.numel() == 0:
        return None
    kw = {k: v for k, v in kwargs.items() if k != "inplace"}
    with torch.no_grad():
        x = x.detach().float()
        up = func(x + _DELTA, *args[1:], **kw)
        down = func(x - _DELTA, *args[1:], **kw)
        # 5% above FLAT_SLOPE: the default leaky-ReLU slope 0.01 is flat despite rounding
        active = (up - down).abs() > 2 * _DELTA * FLAT_SLOPE * 1.05
        if x.dim() >= 2:
            counts = active.sum(dim=[d for d in range(x.dim()) if d != 1])
            units, positions = x.shape[1], x.numel() // x.shape[1]
        else:
            counts, units, positions = active.to(torch.int64), x.numel(), 1
        dead = (counts <= dead_tol * positions).sum().double()
    nan = float("nan")
    return torch.tensor([float(units), float(dead), nan, float(x.numel()), 1.0])


#: Activation functions seen inside ``forward``: ``{function: (label, family module)}``;
#: ``None``: a sloped activation, judged by :data:`FLAT_SLOPE`.
ACTIVATIONS: dict[Callable[..., Any], tuple[str, nn.Module | None]] = _functions()
_HARDTANH = (F.hardtanh, F.hardtanh_)
_OWN = ("netviz.capture", "netviz.analysis", "netviz.diagnosis")


def _called_by_netviz() -> bool:
    """True when the first caller outside torch is netviz's own capture, analysis or diagnosis code."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        mod = frame.f_globals.get("__name__", "")
        if not (mod == "torch" or mod.startswith("torch.")):
            return mod.startswith(_OWN)
        frame = frame.f_back
    return False


class _Collector:
    """The two ``ProbeContext`` methods :meth:`UnitActivity.on_forward` uses."""

    def __init__(self) -> None:
        self.raw: list[tuple[str, int, torch.Tensor]] = []
        self.calls: dict[str, int] = {}
        self._call = 0

    def call_index(self, name: str) -> int:
        return self._call

    def emit(self, name: str, raw: torch.Tensor, call: int = 0, sharded: bool = False) -> None:
        self.raw.append((name, call, raw))


class _Mode(TorchFunctionMode):
    def __init__(self, tracker: ForwardTracker):
        super().__init__()
        self.tracker = tracker

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        info = ACTIVATIONS.get(func)
        pre = None
        if info is not None and info[1] is None and args and isinstance(args[0], torch.Tensor):
            pre = args[0].detach().clone()  # the pre-activation (in-place variants overwrite it)
        out = func(*args, **kwargs)
        if info is None and func in _HARDTANH:
            lo = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
            hi = args[2] if len(args) > 2 else kwargs.get("max_val", 1.0)
            info = ("hardtanh", _TANH) if (lo, hi) == (-1.0, 1.0) else None
        if info is not None and self.tracker.stack and not _called_by_netviz():
            if info[1] is None:
                if pre is not None:
                    if self.tracker.features_last(pre):
                        pre = pre.movedim(-1, 1)
                    raw = _slope_raw(func, pre, args, kwargs, self.tracker.probe.dead_tol)
                    if raw is not None:
                        self.tracker.record(info[0], None, raw)
            else:
                self.tracker.record(info[0], info[1], out)
        return out


class ForwardTracker:
    """Module stack, execution order and functional ``unit_activity`` of a model's forwards.

    Use as a context manager around forward passes; hooks are removed and the
    mode is left on exit, also when the forward raises.

    Parameters
    ----------
    model
        The model; every module gets a forward pre-hook and a forward hook.
    skip
        Names of modules whose activation calls are recorded elsewhere (the
        activation modules that the ``unit_activity`` probe already watches).
    probe
        The :class:`UnitActivity` whose statistics to compute.
    """

    def __init__(self, model: nn.Module, skip: set[str], probe: UnitActivity):
        self.model = model
        self.skip = skip
        self.probe = probe
        self.names = {id(m): n for n, m in model.named_modules()}
        self.by_name = dict(model.named_modules())
        self.stack: list[list[Any]] = []  # [module, name, last finished child]
        self.seq: dict[str, int] = {}
        self._collector = _Collector()
        self._handles: list[Any] = []
        self._mode: _Mode | None = None

    # ------------------------------------------------------------ hooks
    def _pre(self, module: nn.Module, args: tuple) -> None:
        name = self.names.get(id(module), "?")
        self.seq.setdefault(name, len(self.seq))
        self.stack.append([module, name, None])

    def _post(self, module: nn.Module, args: tuple, output: Any) -> None:
        while self.stack:  # an exception caught inside forward may have skipped some pops
            frame = self.stack.pop()
            if frame[0] is module:
                break
        if self.stack:
            self.stack[-1][2] = self.names.get(id(module), "?")

    def __enter__(self) -> ForwardTracker:
        try:
            for m in {id(m): m for m in self.model.modules()}.values():
                self._handles.append(m.register_forward_pre_hook(self._pre))
                self._handles.append(m.register_forward_hook(self._post))
            self._mode = _Mode(self)
            self._mode.__enter__()
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self._mode is not None:
                self._mode.__exit__(*exc)
        finally:
            self._mode = None
            self._remove()

    def _remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    # ------------------------------------------------------------ records
    def where(self) -> str | None:
        """``"name (Type)"`` of the innermost module running, or ``None`` outside any."""
        if not self.stack:
            return None
        module, name = self.stack[-1][0], self.stack[-1][1]
        return f"`{name or '(model)'}` ({type(module).__name__})"

    def features_last(self, x: Any) -> bool:
        """True when the units of ``x`` lie on its last dimension: a >= 3-D output of an
        ``nn.Linear`` (a transformer's feed-forward ``(batch, tokens, features)``)."""
        if not self.stack or not isinstance(x, torch.Tensor) or x.dim() < 3:
            return False
        last = self.stack[-1][2]
        return isinstance(self.by_name.get(last) if last is not None else None, nn.Linear)

    def record(self, label: str, standin: nn.Module | None, output: Any) -> None:
        """Statistics of one activation call: ``output`` through the stand-in module's
        :class:`UnitActivity` code, or (``standin`` None) ready raw slope counts."""
        module, name, last = self.stack[-1]
        if name in self.skip:
            return  # the unit_activity probe records this activation module
        is_activation = next(module.children(), None) is None and not any(
            True for _ in module.parameters(recurse=False)
        )
        if is_activation and name:
            where = name
        else:
            where = f"{last if last is not None else (name or '(model)')} -> {label}"
        x = first_tensor(output)
        if x is None:
            return
        c = self._collector
        c._call = c.calls.get(where, 0)
        c.calls[where] = c._call + 1
        self.seq.setdefault(where, len(self.seq))
        if standin is None:
            c.emit(where, x, call=c._call)
            return
        if self.features_last(x):
            x = x.movedim(-1, 1)
        with torch.no_grad():
            self.probe.on_forward(c, where, standin, (), x)  # type: ignore[arg-type]

    def take(self, group: Any = None) -> tuple[list[tuple[str, int, str, float]], dict[str, int]]:
        """The rows ``(module, call, stat, value)`` and first-call order since the last take.

        With a process ``group``, the raw counts of every rank are merged as the
        probe merges its own (so every rank gets the same rows); a collective.
        """
        c, seq = self._collector, self.seq
        self._collector, self.seq = _Collector(), {}
        keys = [(name, call) for name, call, _ in c.raw]
        width = len(self.probe.raw_fields)
        raw = (
            torch.stack([r.detach().double().cpu() for _, _, r in c.raw]).numpy()
            if c.raw
            else np.zeros((0, width))
        )
        if group is not None:
            keys, raw = _merge_ranks(_all_gather((keys, raw), group), self.probe, width)
        if not keys:
            return [], seq
        values = self.probe.finalize(raw)
        rows = []
        for (name, call), vals in zip(keys, values):
            for stat, v in zip(self.probe.stats, vals):
                if np.isfinite(v):
                    rows.append((name, call, stat, float(v)))
        return rows, seq


def _all_gather(obj: Any, group: Any) -> list[Any]:
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(out, obj, group=group)
    return out


def _merge_ranks(
    gathered: list[tuple[list[tuple[str, int]], np.ndarray]], probe: UnitActivity, width: int
) -> tuple[list[tuple[str, int]], np.ndarray]:
    """Union of the ranks' ``(name, call)`` entries, each merged by ``probe.merge``."""
    per_rank = [dict(zip(keys, raw)) for keys, raw in gathered]
    union = list(dict.fromkeys(k for keys, _ in gathered for k in keys))
    merged = []
    for key in union:
        have = np.stack([rows[key] for rows in per_rank if key in rows])[:, None, :]
        merged.append(probe.merge(have, np.ones(1, dtype=bool))[0])
    return union, np.stack(merged) if merged else np.zeros((0, width))


def covered_by_probe(module: nn.Module) -> bool:
    """True for the activation modules that the ``unit_activity`` probe watches itself."""
    return isinstance(module, RELU_FAMILY) or any(isinstance(module, t) for t, _, _ in BOUNDED)


def iter_covered(model: nn.Module, watched: set[str]) -> Iterator[str]:
    """Names of watched modules whose activations the probe records."""
    for name, m in model.named_modules():
        if name in watched and covered_by_probe(m):
            yield name
