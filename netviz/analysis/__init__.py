"""Analysis: diagnoses computed from records (no plotting, no hooks of its own).

:func:`diagnose` runs a model on a batch with probes (or reads a record table)
and returns a :class:`Report` of :class:`Finding` objects; :class:`Thresholds`
holds the documented limits.
"""

from netviz.analysis.diagnose import analyze, default_loss, diagnose, weight_layers
from netviz.analysis.findings import KINDS, SEVERITIES, Finding, Report, Thresholds
from netviz.capture.probes.units import UnitActivity

__all__ = [
    "KINDS",
    "SEVERITIES",
    "Finding",
    "Report",
    "Thresholds",
    "UnitActivity",
    "analyze",
    "default_loss",
    "diagnose",
    "weight_layers",
]
