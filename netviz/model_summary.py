"""``netviz.summary``: a per-layer table of a model, measured and predicted side by side.

One forward pass with temporary hooks measures every module call's input and
output shapes; :mod:`netviz.layermath` predicts the output shape, MACs and
receptive field from the module's attributes. A prediction that disagrees
with the measurement is flagged in the ``check`` column, never hidden.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import nn

from netviz._compat import fastpath_disabled
from netviz.errors import NetvizRuntimeError, NetvizTypeError, NetvizValueError
from netviz.layermath import macs as _macs
from netviz.layermath import output_shape as _output_shape
from netviz.layermath.receptive import receptive_field

__all__ = ["COLUMNS", "Summary", "summary"]

#: Columns of :meth:`Summary.to_pandas`, in order.
COLUMNS = [
    "module",
    "type",
    "depth",
    "call",
    "input_shape",
    "output_shape",
    "output_shapes",
    "predicted_shape",
    "check",
    "params",
    "macs",
    "receptive_field",
    "jump",
]

_MODES = ("eval", "train", "same")


def _tensors(obj) -> list[torch.Tensor]:
    """All tensors in a (nested) tuple/list/dict output, depth first."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, Mapping):
        return [t for v in obj.values() for t in _tensors(v)]
    if isinstance(obj, (tuple, list)):
        return [t for v in obj for t in _tensors(v)]
    return []


def _as_inputs(input_size, dtypes, device) -> list[torch.Tensor]:
    """Example tensors made from shapes on ``device``; given tensors are used as they are."""
    if isinstance(input_size, torch.Tensor):
        return [input_size]
    if not isinstance(input_size, Sequence) or isinstance(input_size, str) or not input_size:
        raise NetvizTypeError(
            "`input_size` must be a shape tuple, a list of shape tuples, a tensor or a list of "
            f"tensors, got {input_size!r}"
        )
    if all(isinstance(t, torch.Tensor) for t in input_size):
        return list(input_size)
    if all(isinstance(s, int) and not isinstance(s, bool) for s in input_size):
        shapes = [tuple(input_size)]
    elif all(isinstance(s, Sequence) and not isinstance(s, str) for s in input_size):
        shapes = [tuple(s) for s in input_size]
    else:
        raise NetvizTypeError(
            f"`input_size` mixes shapes, ints or tensors: {input_size!r}; give one shape tuple, "
            "a list of shape tuples or tensors"
        )
    if dtypes is None:
        dtypes = [torch.get_default_dtype()] * len(shapes)
    elif isinstance(dtypes, torch.dtype):
        dtypes = [dtypes] * len(shapes)
    if len(dtypes) != len(shapes):
        raise NetvizValueError(f"`dtypes` has {len(dtypes)} entries for {len(shapes)} inputs")
    gen = torch.Generator(device=device).manual_seed(0)  # local: the global RNG is untouched
    out = []
    for shape, dtype in zip(shapes, dtypes):
        if dtype.is_floating_point or dtype.is_complex:
            out.append(torch.randn(shape, generator=gen, device=device, dtype=dtype))
        else:  # integer inputs (token ids, class indices): zeros are always valid
            out.append(torch.zeros(shape, device=device, dtype=dtype))
    return out


@dataclass
class _Row:
    module: str
    type: str
    depth: int
    call: int
    obj: nn.Module
    input_shapes: list[tuple[int, ...]]
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)
    receptive_field: Any = None
    jump: Any = None


def _predict(module, row) -> tuple[Any, Any]:
    """(predicted shape or 'n/a' / 'error: ...', check 'ok' / 'MISMATCH' / 'n/a')."""
    if not row.input_shapes or not row.output_shapes:
        return "n/a", "n/a"
    try:
        predicted = _output_shape(module, row.input_shapes[0])
    except NotImplementedError:
        return "n/a", "n/a"
    except ValueError as exc:  # we would have refused what PyTorch ran
        return f"error: {exc}", "MISMATCH"
    return predicted, "ok" if predicted == row.output_shapes[0] else "MISMATCH"


def _row_macs(module, row):
    if next(module.children(), None) is not None and not isinstance(
        module, (nn.MultiheadAttention, nn.RNNBase)
    ):
        return pd.NA  # containers: their leaves carry the MACs (no double counting)
    if not row.input_shapes:
        return pd.NA
    try:
        if isinstance(module, nn.MultiheadAttention):
            return _macs(module, tuple(row.input_shapes[:2]))
        return _macs(module, row.input_shapes[0])
    except (NotImplementedError, ValueError):
        return pd.NA


class Summary:
    """Result of :func:`summary`: a per-call table plus totals.

    Attributes
    ----------
    total_params, trainable_params : int
        Unique parameters of the model (tied weights counted once).
    total_macs : int
        Sum of the ``macs`` column (leaf calls with a formula).
    leaves_without_macs : list of str
        Leaf calls that have no MAC formula (so ``total_macs`` excludes them).
    """

    def __init__(self, frame: pd.DataFrame, model: nn.Module, inputs: list[torch.Tensor]):
        self._frame = frame
        self.total_params = sum(p.numel() for p in model.parameters())
        self.trainable_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.input_shapes = [tuple(t.shape) for t in inputs]
        leaf = frame["leaf"]
        self.total_macs = int(frame.loc[leaf, "macs"].dropna().sum())
        self.leaves_without_macs = list(frame.loc[leaf & frame["macs"].isna(), "module"])

    def to_pandas(self) -> pd.DataFrame:
        """A copy of the table: one row per module call, columns :data:`COLUMNS`."""
        return self._frame[COLUMNS].copy()

    @property
    def mismatches(self) -> pd.DataFrame:
        """Rows whose predicted output shape differs from the measured one."""
        frame = self.to_pandas()
        return frame[frame["check"] == "MISMATCH"]

    def __len__(self) -> int:
        return len(self._frame)

    def __repr__(self) -> str:
        return self.__str__()

    def __str__(self) -> str:
        def fmt(v):
            if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
                return "-"
            if isinstance(v, tuple):
                return "(" + ", ".join(map(str, v)) + ")" if len(v) != 1 else f"({v[0]},)"
            if isinstance(v, numbers.Integral):
                return f"{int(v):,}"
            return str(v)

        header = ["Layer", "Type", "Input", "Output", "Predicted", "Check", "Params", "MACs", "RF"]
        lines = []
        for r in self._frame.itertuples(index=False):
            name = "  " * r.depth + (r.module or "(model)")
            if r.call:
                name += f" [call {r.call}]"
            out = fmt(r.output_shape)
            if len(r.output_shapes) > 1:
                out += f" +{len(r.output_shapes) - 1}"
            pred = r.predicted_shape
            pred = "error" if isinstance(pred, str) and pred.startswith("error") else fmt(pred)
            lines.append(
                [
                    name,
                    r.type,
                    fmt(r.input_shape),
                    out,
                    pred,
                    r.check,
                    fmt(r.params),
                    fmt(r.macs),
                    fmt(r.receptive_field),
                ]
            )
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
        right = {6, 7}

        def join(cells):
            return "  ".join(
                c.rjust(w) if i in right else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths))
            ).rstrip()

        rule = "-" * len(join(header))
        text = [rule, join(header), rule, *(join(line) for line in lines), rule]
        text.append(f"Total params: {self.total_params:,} (trainable {self.trainable_params:,})")
        macs_line = (
            f"Total MACs: {self.total_macs:,} (FLOPs as counted by FlopCounterMode: 2 x MACs)"
        )
        if self.leaves_without_macs:
            macs_line += f"; no formula for: {', '.join(self.leaves_without_macs)}"
        text.append(macs_line)
        n_bad = int((self._frame["check"] == "MISMATCH").sum())
        if n_bad:
            text.append(f"WARNING: {n_bad} predicted shape(s) differ from the measured ones")
        text.append(rule)
        return "\n".join(text)


def summary(
    model: nn.Module, input_size, *, dtypes=None, device=None, mode="eval", forward_kwargs=None
) -> Summary:
    r"""Per-layer table of ``model``: measured shapes next to layer-math predictions.

    Runs one forward pass under ``torch.no_grad()`` with a forward pre-hook and
    a forward hook on every module (removed in ``finally``, also when the
    forward pass raises; every module's ``training`` flag is restored).

    Parameters
    ----------
    model : nn.Module
    input_size : tuple, list of tuples, Tensor or list of Tensors
        Input shape(s), batch dimension included, or example input tensor(s)
        passed positionally to ``model``.
    dtypes : torch.dtype or list of torch.dtype, optional
        dtypes of the generated inputs (default: the default float dtype).
        Floating inputs are standard normal (a local generator seeded with 0);
        integer inputs (token ids) are zeros.
    device : torch.device or str, optional
        Where generated inputs go; default: the device of the model's first
        parameter or buffer (CPU for a model without any).
    mode : {"eval", "train", "same"}
        Mode of the forward pass. ``"eval"`` (default) keeps batch-norm
        statistics untouched. The fused "fast path" of ``nn.TransformerEncoderLayer``
        (which would bypass the hooks of its sub-modules) is switched off for the pass.
    forward_kwargs : dict, optional
        Extra keyword arguments for ``model(...)``.

    Returns
    -------
    Summary
        ``str(result)`` is a readable table; ``result.to_pandas()`` a DataFrame
        with one row per module *call* (a module called twice has two rows,
        ``call`` 0 and 1) and the columns :data:`COLUMNS`:

        - ``input_shape``, ``output_shape``: measured, first tensor in/out;
          ``output_shapes`` lists every output tensor (LSTM: output, h, c).
        - ``predicted_shape``: :func:`netviz.layermath.output_shape` from the
          module's attributes, ``"n/a"`` for unsupported types.
        - ``check``: ``"ok"``, ``"MISMATCH"`` or ``"n/a"``.
        - ``params``: parameters of the module, sub-modules included.
        - ``macs``: :func:`netviz.layermath.macs` for leaf modules with a
          formula (containers: NA, their leaves carry the count).
        - ``receptive_field``, ``jump``: defined while the leaf calls form one
          chain of conv / pool / element-wise layers from the model's input
          (each consuming the previous one's output tensor); NA afterwards.

    Examples
    --------
    >>> import torch.nn as nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2))
    >>> table = summary(net, (1, 1, 6, 6)).to_pandas()
    >>> table[["module", "output_shape", "check", "params", "macs", "receptive_field"]]
    ... # doctest: +NORMALIZE_WHITESPACE
      module output_shape check  params  macs receptive_field
    0         (1, 2)    ok     170  <NA>            <NA>
    1      0  (1, 4, 4, 4)    ok      40   576          (3, 3)
    2      1  (1, 4, 4, 4)    ok       0     0          (3, 3)
    3      2      (1, 64)    ok       0     0            <NA>
    4      3       (1, 2)    ok     130   128            <NA>
    """
    if not isinstance(model, nn.Module):
        raise NetvizTypeError(f"`model` must be an nn.Module, got {type(model).__name__}")
    if mode not in _MODES:
        raise NetvizValueError(f"`mode` must be one of {_MODES}, got {mode!r}")
    if device is None:
        first: torch.Tensor | None = next(iter(model.parameters()), None)
        if first is None:
            first = next(iter(model.buffers()), None)
        device = first.device if first is not None else torch.device("cpu")
    inputs = _as_inputs(input_size, dtypes, device)
    names = {id(m): n for n, m in model.named_modules()}
    rows: list[_Row] = []
    stack: list[_Row] = []
    calls: dict[int, int] = {}
    chain: dict[str, Any] = {"tensor": inputs[0] if len(inputs) == 1 else None, "layers": []}

    def pre_hook(module, args, kwargs):
        key = id(module)
        name = names.get(key, "?")
        row = _Row(
            module=name,
            type=type(module).__name__,
            depth=len(stack),  # call nesting, so rows indent under the call that made them
            call=calls.get(key, 0),
            obj=module,
            input_shapes=[tuple(t.shape) for t in _tensors((args, kwargs))],
        )
        calls[key] = row.call + 1
        rows.append(row)
        stack.append(row)

    def hook(module, args, kwargs, output):
        row = stack.pop()
        outs = _tensors(output)
        row.output_shapes = [tuple(t.shape) for t in outs]
        if next(module.children(), None) is None:  # leaf: extend or break the chain
            first_in = args[0] if args else None
            if chain["tensor"] is not None and first_in is chain["tensor"] and outs:
                try:
                    rf = receptive_field([*chain["layers"], module])[-1]
                except (NotImplementedError, TypeError, ValueError):
                    chain["tensor"] = None
                else:
                    chain["layers"].append(module)
                    chain["tensor"] = outs[0]
                    row.receptive_field, row.jump = rf.size, rf.jump
            else:
                chain["tensor"] = None

    training = {m: m.training for m in model.modules()}
    handles = []
    try:
        for module in {id(m): m for m in model.modules()}.values():
            handles.append(module.register_forward_pre_hook(pre_hook, with_kwargs=True))
            handles.append(module.register_forward_hook(hook, with_kwargs=True))
        if mode != "same":
            model.train(mode == "train")
        with fastpath_disabled(), torch.no_grad():
            try:
                model(*inputs, **(forward_kwargs or {}))
            except Exception as exc:
                where = stack[-1] if stack else None
                at = (
                    f" in {where.module or '(model)'} ({where.type}) with input shapes {where.input_shapes}"
                    if where
                    else ""
                )
                raise NetvizRuntimeError(
                    f"netviz.summary: the forward pass failed{at}: {exc}"
                ) from exc
    finally:
        for handle in handles:
            handle.remove()
        for module, flag in training.items():
            module.training = flag
        chain.clear()

    records = []
    for row in rows:
        predicted, check = _predict(row.obj, row)
        records.append(
            {
                "module": row.module,
                "type": row.type,
                "depth": row.depth,
                "call": row.call,
                "input_shape": row.input_shapes[0] if row.input_shapes else None,
                "output_shape": row.output_shapes[0] if row.output_shapes else None,
                "output_shapes": tuple(row.output_shapes),
                "predicted_shape": predicted,
                "check": check,
                "params": sum(p.numel() for p in row.obj.parameters()),
                "macs": _row_macs(row.obj, row),
                "receptive_field": pd.NA if row.receptive_field is None else row.receptive_field,
                "jump": pd.NA if row.jump is None else row.jump,
                "leaf": next(row.obj.children(), None) is None
                or isinstance(row.obj, (nn.MultiheadAttention, nn.RNNBase)),
            }
        )
    frame = pd.DataFrame.from_records(records, columns=[*COLUMNS, "leaf"])
    frame["macs"] = frame["macs"].astype("Int64")
    return Summary(frame, model, inputs)
