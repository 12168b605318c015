"""Analysis: records in, findings out (no model is run, nothing is drawn).

:func:`analyze` runs every check of :data:`CHECK_SPECS` on a record table and
returns :class:`Finding` objects, one :class:`Check` per check (found, clear
or not run) and the facts behind them; :class:`Thresholds` holds the
documented limits. Running a model and then analysing it is
:func:`netviz.diagnose` (:mod:`netviz.diagnosis`, the layer above capture and
analysis). This package imports neither :mod:`netviz.capture` nor
:mod:`netviz.plot` (``tests/test_import_graph.py``).
"""

from netviz.analysis.analyze import analyze
from netviz.analysis.findings import (
    CHECKS,
    KINDS,
    SEVERITIES,
    STATUSES,
    Check,
    Finding,
    Thresholds,
)
from netviz.analysis.specs import CHECK_SPECS, CheckSpec

__all__ = [
    "CHECKS",
    "CHECK_SPECS",
    "KINDS",
    "SEVERITIES",
    "STATUSES",
    "Check",
    "CheckSpec",
    "Finding",
    "Thresholds",
    "analyze",
]
