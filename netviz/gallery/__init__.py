"""The lecture-figure gallery: script runtime helpers and the builder.

Gallery scripts live in the repository's ``gallery/`` folder, one per figure of
the catalogue, named ``<ID>_<name>.py``. They draw with matplotlib and never
save: the builder (``netviz gallery build``) runs each script in its own
process and saves every figure it left open, byte-reproducibly.
"""

from netviz.gallery._runtime import fast, pick, setup

__all__ = ["fast", "pick", "setup"]
