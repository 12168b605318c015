"""Diagnosis: run a model under probes, then analyse its records (:func:`diagnose`).

This is the orchestration layer: it sits above :mod:`netviz.capture` (it runs
the model inside :func:`netviz.watch`), :mod:`netviz.analysis` (the checks,
records in and findings out) and :mod:`netviz.plot` (:meth:`Report.plot`).
Nothing below it imports it.
"""

from netviz.diagnosis.passes import ModelError, default_loss
from netviz.diagnosis.report import Report
from netviz.diagnosis.run import diagnose, weight_layers

__all__ = ["ModelError", "Report", "default_loss", "diagnose", "weight_layers"]
