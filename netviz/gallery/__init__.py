"""The lecture-figure gallery: script runtime helpers and the builder.

Gallery scripts ship with the package in ``netviz/gallery/scripts/`` (package
data, so ``netviz gallery build`` works from an installed wheel), one per figure of
the catalogue, named ``<ID>_<name>.py``. They draw with matplotlib and never
save: the builder (``netviz gallery build``) runs each script in its own
process and saves every figure it left open, byte-reproducibly.
"""

from netviz.gallery._runtime import fast, pick, setup

__all__ = ["fast", "pick", "setup"]
