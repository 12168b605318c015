"""Attention maps and feature maps of a report, from snapshot probes (``Monitor.snapshots()``).

Each head (or channel) is a small PNG with one pixel per value, scaled to its
own range; maps larger than :data:`MAX_SIDE` are block-averaged down to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from netviz.reporting.figures import array_png
from netviz.reporting.page import choice_group, e

__all__ = ["MAX_HEADS", "MAX_SIDE", "attention_body", "feature_map_body", "snapshot_steps"]

#: Largest side of a head / channel image in pixels (bigger maps are block-averaged).
MAX_SIDE = 96
#: At most this many heads or channels per layer and step.
MAX_HEADS = 16
#: At most this many steps per layer (first, middle, last of the steps with snapshots).
MAX_STEPS = 3


def _reduce(a: np.ndarray) -> np.ndarray:
    for axis in (0, 1):
        n = a.shape[axis]
        if n > MAX_SIDE:
            k = -(-n // MAX_SIDE)
            pad = (-n) % k
            widths = [(0, 0), (0, 0)]
            widths[axis] = (0, pad)
            a = np.pad(a, widths, constant_values=np.nan)
            shape = list(a.shape)
            shape[axis : axis + 1] = [shape[axis] // k, k]
            with np.errstate(invalid="ignore"):
                a = np.nanmean(a.reshape(shape), axis=axis + 1)
    return a


def snapshot_steps(snapshots: Mapping[int, Mapping[tuple, Any]], probe: str) -> list[int]:
    """Steps holding snapshots of ``probe``: at most :data:`MAX_STEPS` (first, middle, last)."""
    steps = sorted(s for s, kept in snapshots.items() if any(k[0] == probe for k in kept))
    if len(steps) <= MAX_STEPS:
        return steps
    picks = np.linspace(0, len(steps) - 1, MAX_STEPS).round().astype(int)
    return [steps[i] for i in dict.fromkeys(picks.tolist())]


def _per_layer(snapshots: Mapping, probe: str) -> dict[str, list[tuple[int, np.ndarray]]]:
    """``{module: [(step, array)]}`` of each module's first call in the step (call 0)."""
    from netviz.plot.images import to_numpy

    layers: dict[str, list[tuple[int, np.ndarray]]] = {}
    for step in snapshot_steps(snapshots, probe):
        for (p, module, call), tensor in snapshots[step].items():
            if p == probe and call == 0:
                layers.setdefault(module, []).append((step, to_numpy(tensor)))
    return layers


def _tiles(maps: np.ndarray, label: str, cmap: str, vmin: float | None) -> str:
    tiles = []
    for i, m in enumerate(maps[:MAX_HEADS]):
        m = _reduce(np.atleast_2d(m))
        finite = m[np.isfinite(m)]
        hi = f"{finite.max():.3g}" if finite.size else "nan"
        uri = array_png(m, cmap=cmap, vmin=vmin)
        tiles.append(
            f'<div class="head" title="{label} {i}: max {hi}">'
            f'<img src="{uri}" alt="{label} {i}">{label} {i}</div>'
        )
    more = (
        f'<p class="muted">{len(maps) - MAX_HEADS} more not shown.</p>'
        if len(maps) > MAX_HEADS
        else ""
    )
    return f'<div class="heads">{"".join(tiles)}</div>{more}'


def attention_body(snapshots: Mapping) -> tuple[str, int]:
    """HTML of the attention maps (a layer selector over the layers) and the layer count."""
    layers = _per_layer(snapshots, "attention")
    items = []
    for name, per_step in layers.items():
        body: list[tuple[str, str]] = []
        for step, probs in per_step:
            if probs.ndim == 3:  # (batch, L, S): averaged over heads upstream
                probs = probs[:, None]
            heads = probs[0]  # first batch item: (heads, L, S)
            shape = f"{heads.shape[1]} queries × {heads.shape[2]} keys"
            tiles = _tiles(heads, "head", "viridis", 0.0)
            body.append((f"step {step}", f"<p>{heads.shape[0]} heads · {shape}</p>{tiles}"))
        items.append((name, choice_group("Step", body, "attention-step")))
    intro = (
        "<p>Attention probabilities of the first batch item, one map per head: rows are "
        "queries, columns keys, colour from 0 (dark) to the head's largest weight (yellow; "
        "hover for the value). Click a head to enlarge it.</p>"
    )
    return intro + choice_group("Layer", items, "attention"), len(items)


def feature_map_body(snapshots: Mapping) -> tuple[str, int]:
    """HTML of the feature maps (one block per layer, last steps) and the layer count."""
    layers = _per_layer(snapshots, "feature_maps")
    items = []
    for name, per_step in layers.items():
        step, maps = per_step[-1]
        if maps.ndim < 3:
            continue  # (N, F) outputs have no map to draw
        channels = maps[0].reshape(maps.shape[1], maps.shape[2], -1)
        size = " × ".join(str(s) for s in maps.shape[2:])
        head = f"<p><b>step {step}</b> · {maps.shape[1]} channels kept · {e(size)}</p>"
        items.append((name, head + _tiles(channels, "channel", "magma", None)))
    intro = (
        "<p>Each module's output for the first batch item at the last recorded step, one "
        "map per channel, each scaled to its own range (dark: low, light: high).</p>"
    )
    return intro + choice_group("Layer", items, "feature_maps"), len(items)
