"""netviz: see inside PyTorch networks.

Capture (:func:`watch`, probes) -> records (:func:`load`, tidy DataFrames)
-> analysis -> plotting (:mod:`netviz.plot`); layer math stands alone
(:mod:`netviz.layermath`).
"""

from netviz.capture import Monitor, Probe, ProbeContext, watch
from netviz.records import load

__version__ = "0.1.0.dev0"

__all__ = [
    "Monitor",
    "Probe",
    "ProbeContext",
    "__version__",
    "load",
    "watch",
]
