"""Analysis: diagnoses computed from records (no plotting; hooks only for its own passes).

:func:`diagnose` runs a model on a batch with probes (or reads a record table)
and returns a :class:`Report` of :class:`Finding` objects and the
:class:`Check` behind each kind; :class:`Thresholds` holds the documented limits.
"""

from netviz.analysis.analyze import analyze
from netviz.analysis.diagnose import ModelError, default_loss, diagnose, weight_layers
from netviz.analysis.findings import (
    CHECKS,
    KINDS,
    SEVERITIES,
    STATUSES,
    Check,
    Finding,
    Thresholds,
)
from netviz.analysis.report import Report
from netviz.capture.probes.units import UnitActivity

__all__ = [
    "CHECKS",
    "KINDS",
    "SEVERITIES",
    "STATUSES",
    "Check",
    "Finding",
    "ModelError",
    "Report",
    "Thresholds",
    "UnitActivity",
    "analyze",
    "default_loss",
    "diagnose",
    "weight_layers",
]
