"""Capture: probes, hooks and the monitor. Never imports matplotlib.

The public names are imported on first use, so importing one module of the
package (``netviz.capture.stats``, ``netviz.capture.selection``) runs no other:
internal modules import each other directly, never through this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netviz._leaf import lazy_names

if TYPE_CHECKING:  # for type checkers only; at run time see __getattr__
    from netviz.capture.attach import watch
    from netviz.capture.monitor import Monitor
    from netviz.capture.probe import Probe, ProbeContext
    from netviz.capture.selection import select_modules

__all__ = ["Monitor", "Probe", "ProbeContext", "select_modules", "watch"]

_LAZY: dict[str, str] = {
    "Monitor": "netviz.capture.monitor",
    "Probe": "netviz.capture.probe",
    "ProbeContext": "netviz.capture.probe",
    "select_modules": "netviz.capture.selection",
    "watch": "netviz.capture.attach",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
