"""netviz: see inside PyTorch networks.

Capture (:func:`watch`, probes, :func:`capture_attention`, ...) -> records
(:func:`load`, tidy DataFrames) -> analysis (:func:`diagnose`) -> plotting
(:mod:`netviz.plot`); layer math stands alone (:mod:`netviz.layermath`,
:func:`summary`); the ``netviz`` command line sits on top.

The core (``watch``, records) is imported eagerly; the rest of the public
API is listed here and imported on first use, so that ``import netviz`` stays
light and never imports matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

from netviz import sinks  # light: tracker sinks import their tracker on first use
from netviz._version import __version__
from netviz.capture import Monitor, Probe, ProbeContext, watch
from netviz.errors import (
    LayerConfigError,
    NetvizError,
    NetvizRuntimeError,
    NetvizTypeError,
    NetvizValueError,
    NetvizWarning,
    NothingRecordedWarning,
    RecordError,
    TorchCompatError,
)
from netviz.records import load

# public name -> (module, attribute); attribute None means the module itself
_LAZY: dict[str, tuple[str, str | None]] = {
    "Attribution": ("netviz.capture.attribution", "Attribution"),
    "DistributedRecordError": ("netviz.capture.distributed", "DistributedRecordError"),
    "Finding": ("netviz.analysis", "Finding"),
    "HistogramGrid": ("netviz.capture.histogram", "HistogramGrid"),
    "Report": ("netviz.diagnosis", "Report"),
    "Thresholds": ("netviz.analysis", "Thresholds"),
    "attribution": ("netviz.capture.attribution", "attribution"),
    "capture_activations": ("netviz.capture.activations", "capture_activations"),
    "capture_attention": ("netviz.capture.attention", "capture_attention"),
    "conv_filter_weights": ("netviz.capture.filters", "conv_filter_weights"),
    "diagnose": ("netviz.diagnosis", "diagnose"),
    "layermath": ("netviz.layermath", None),
    "integrations": ("netviz.integrations", None),
    "load_histograms": ("netviz.records.histograms", "load_histograms"),
    "load_tensors": ("netviz.capture.tensorfile", "load_tensors"),
    "plot": ("netviz.plot", None),
    "positional_encoding_weights": ("netviz.capture.positional", "positional_encoding_weights"),
    "record_attention": ("netviz.capture.attention", "record_attention"),
    "report": ("netviz.reporting", "report"),
    "save_tensors": ("netviz.capture.tensorfile", "save_tensors"),
    "sinusoidal_encoding": ("netviz.layermath.positional", "sinusoidal_encoding"),
    "snapshot_tensors": ("netviz.capture.probes.snapshots", "snapshot_tensors"),
    "summary": ("netviz.model_summary", "summary"),
}

__all__ = [
    "Attribution",
    "DistributedRecordError",
    "Finding",
    "HistogramGrid",
    "LayerConfigError",
    "Monitor",
    "NetvizError",
    "NetvizRuntimeError",
    "NetvizTypeError",
    "NetvizValueError",
    "NetvizWarning",
    "NothingRecordedWarning",
    "Probe",
    "ProbeContext",
    "RecordError",
    "Report",
    "Thresholds",
    "TorchCompatError",
    "__version__",
    "attribution",
    "capture_activations",
    "capture_attention",
    "conv_filter_weights",
    "diagnose",
    "integrations",
    "layermath",
    "load",
    "load_histograms",
    "load_tensors",
    "plot",
    "positional_encoding_weights",
    "record_attention",
    "report",
    "save_tensors",
    "sinks",
    "sinusoidal_encoding",
    "snapshot_tensors",
    "summary",
    "watch",
]


assert sorted(_LAZY) == sorted(set(__all__) - set(globals()))  # keep the two lists in step


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'netviz' has no attribute {name!r}")
    module = importlib.import_module(target[0])
    value = module if target[1] is None else getattr(module, target[1])
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
