"""Snapshot probes: tensors kept at recorded steps, read from :meth:`Monitor.snapshots`.

``attention``: the attention probabilities of every attention the model
computes (as :func:`netviz.capture_attention` returns them). ``feature_maps``:
the first batch item(s) and channels of each selected module's output.

Snapshots are keyed ``(probe, module, call)`` per step;
:func:`snapshot_tensors` turns one step into the ``{key: tensor}`` dict that
the capture functions return and the plot functions take.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from netviz._leaf import call_keys, first_tensor
from netviz.capture.probe import Probe, ProbeContext

__all__ = ["AttentionSnapshots", "FeatureMapSnapshots", "snapshot_tensors"]


class _Detach:
    """A handle whose ``remove()`` detaches an attention capture."""

    def __init__(self, capture: Any):
        self._capture = capture

    def remove(self) -> None:
        self._capture.detach()


class AttentionSnapshots(Probe):
    """``attention``: per-head attention probabilities at recorded steps.

    While the monitor is attached the model carries the hooks of an
    :class:`~netviz.capture.attention.AttentionCapture`. The process-wide
    parts, the ``scaled_dot_product_attention`` patch and PyTorch's
    transformer fast path turned off (if the model holds a
    ``TransformerEncoder``), are applied only around forwards of the watched
    model on recorded steps and undone when each forward returns or raises:
    other models and threads of the process are not affected. On other steps
    the hooks return at once.

    An attention is kept when the module it is attributed to is a selected
    module, lies inside one, or contains one (with the default selection:
    every attention). Each snapshot is ``(batch, heads, L, S)`` on the CPU,
    under ``(\"attention\", module, call)`` where ``call`` counts that
    module's attentions within one forward pass. A step keeps the snapshots
    of its first training forward (micro-batch 0); a step without one keeps
    its first eval forward's.

    Examples
    --------
    >>> import netviz
    >>> layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
    >>> enc = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    >>> with netviz.watch(enc, probes=["attention"]) as mon:
    ...     enc(torch.randn(3, 5, 8)).sum().backward()
    ...     mon.step()
    >>> {k: tuple(v.shape) for k, v in snapshot_tensors(mon, step=0).items()}
    {'layers.0.self_attn': (3, 2, 5, 5), 'layers.1.self_attn': (3, 2, 5, 5)}
    """

    name = "attention"
    empty_hint = (
        "netviz saw no attention it can recompute: it records nn.MultiheadAttention and "
        "scaled_dot_product_attention; a hand-written softmax attention (or a Hugging Face "
        'model with attn_implementation="eager") can call netviz.record_attention(probs), or '
        "use the model's own output_attentions=True"
    )

    def __init__(self) -> None:
        self._step_counts: tuple[Any, dict[str, int]] = (None, {})
        self._capture: Any = None

    def forward_context(self, ctx: ProbeContext) -> Any:
        return self._capture.patched() if self._capture is not None else None

    def setup(self, ctx: ProbeContext) -> None:
        from netviz.capture.attention import AttentionCapture

        model = ctx.model
        if model is None:
            raise RuntimeError("the `attention` probe needs the watched model (ctx.model)")
        selected = {n for n, _ in ctx.modules}
        ancestors = {n.rsplit(".", i)[0] for n in selected for i in range(1, n.count(".") + 1)}
        ancestors |= {""} if selected - {""} else set()

        def keep(name: str) -> bool:
            if name in selected or name in ancestors:
                return True
            return any(name.startswith(s + ".") for s in selected if s)

        def on_record(name: str, probs: torch.Tensor) -> None:
            # calls count per forward pass, as for the other probes
            where, counts = self._step_counts
            now = (ctx.step, *ctx.forward_index)
            if where != now:
                counts = {}
                self._step_counts = (now, counts)
            call = counts.get(name, 0)
            counts[name] = call + 1
            ctx.snapshot(name, probs, call=call)

        capture = AttentionCapture(
            model, on_record=on_record, enabled=lambda: ctx.capturing, keep=keep
        )
        capture.attach(patches=False)
        self._capture = capture
        ctx.add_handle(_Detach(capture))


class FeatureMapSnapshots(Probe):
    """``feature_maps``: each selected module's output at recorded steps.

    Keeps the first ``max_batch`` items and ``max_channels`` channels (dim 1)
    of outputs with at least ``min_dim`` dims (``(N, C, H, W)`` maps by
    default; ``min_dim=2`` also keeps ``(N, F)`` outputs), taken when the
    module returns, under ``("feature_maps", module, call)``.

    Examples
    --------
    >>> import netviz
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    >>> with netviz.watch(net, probes=["feature_maps"]) as mon:
    ...     _ = net(torch.randn(8, 1, 6, 6))
    ...     mon.step()
    >>> {k: tuple(v.shape) for k, v in snapshot_tensors(mon, probe="feature_maps").items()}
    {'0': (1, 4, 4, 4), '1': (1, 4, 4, 4)}
    """

    name = "feature_maps"
    needs_forward = True

    def __init__(self, max_batch: int = 1, max_channels: int = 16, min_dim: int = 3) -> None:
        for value, label in ((max_batch, "max_batch"), (max_channels, "max_channels")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{label}` must be an int >= 1, got {value!r}")
        if isinstance(min_dim, bool) or not isinstance(min_dim, int) or min_dim < 1:
            raise ValueError(f"`min_dim` must be an int >= 1, got {min_dim!r}")
        self.max_batch, self.max_channels, self.min_dim = max_batch, max_channels, min_dim

    def on_forward(
        self, ctx: ProbeContext, name: str, module: nn.Module, args: tuple, output: Any
    ) -> None:
        x = first_tensor(output)
        if x is None or x.dim() < max(self.min_dim, 1):
            return
        x = x.detach()[: self.max_batch]
        if x.dim() >= 2:
            x = x[:, : self.max_channels]
        ctx.snapshot(name, x, call=ctx.call_index(name))

    def __repr__(self) -> str:
        return (
            f"FeatureMapSnapshots(max_batch={self.max_batch}, "
            f"max_channels={self.max_channels}, min_dim={self.min_dim})"
        )


def snapshot_tensors(
    snapshots: Any, step: int | None = None, probe: str = "attention"
) -> dict[str, torch.Tensor]:
    """One step of a monitor's snapshots as ``{key: tensor}`` (the capture functions' scheme).

    Parameters
    ----------
    snapshots
        A :class:`~netviz.Monitor` or its ``snapshots()`` dict.
    step
        The step (default: the last step holding snapshots of ``probe``).
    probe
        ``"attention"``, ``"feature_maps"`` or another snapshot probe's name.

    Returns
    -------
    dict[str, torch.Tensor]
        Keys are module names, ``name#i`` where a module has several calls.

    Raises
    ------
    ValueError
        No snapshot of ``probe`` (at ``step``).
    """
    if hasattr(snapshots, "snapshots") and callable(snapshots.snapshots):
        snapshots = snapshots.snapshots()
    if not isinstance(snapshots, Mapping):
        raise TypeError(f"`snapshots` must be a Monitor or a dict, got {type(snapshots).__name__}")
    steps = sorted(s for s, kept in snapshots.items() if any(k[0] == probe for k in kept))
    if not steps:
        raise ValueError(f"no snapshots of probe {probe!r}; was it passed to watch(probes=...)?")
    if step is None:
        step = steps[-1]
    elif step not in steps:
        raise ValueError(f"no {probe!r} snapshots at step {step}; steps with snapshots: {steps}")
    kept = snapshots[step]
    # Insertion order is call order, so each module's calls come in order.
    return call_keys([(m, t) for (p, m, _), t in kept.items() if p == probe])
