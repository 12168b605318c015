"""Built-in probes. Each is a :class:`~netviz.capture.probe.Probe` subclass.

Later features add their probes to :data:`BUILTIN_PROBES`; users pass their own
probe objects to ``watch(probes=...)`` without registering anything.
"""

from __future__ import annotations

from netviz.capture.probes.activation import ActivationStats
from netviz.capture.probes.gradients import GradNorm, GradStats
from netviz.capture.probes.histograms import ActivationHist, GradHist, WeightHist
from netviz.capture.probes.snapshots import AttentionSnapshots, FeatureMapSnapshots
from netviz.capture.probes.timestep import TimestepGrad
from netviz.capture.probes.units import UnitActivity
from netviz.capture.probes.weights import WeightStats

__all__ = [
    "BUILTIN_PROBES",
    "ActivationHist",
    "ActivationStats",
    "AttentionSnapshots",
    "FeatureMapSnapshots",
    "GradHist",
    "GradNorm",
    "GradStats",
    "TimestepGrad",
    "UnitActivity",
    "WeightHist",
    "WeightStats",
]

#: Probe classes known by name to ``watch(probes=...)``.
BUILTIN_PROBES = {
    cls.name: cls
    for cls in (
        ActivationHist,
        ActivationStats,
        AttentionSnapshots,
        FeatureMapSnapshots,
        GradHist,
        GradNorm,
        GradStats,
        TimestepGrad,
        UnitActivity,
        WeightHist,
        WeightStats,
    )
}
