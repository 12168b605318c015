"""Framework integrations: callbacks that attach netviz where training already happens.

- :mod:`netviz.integrations.lightning`: ``NetvizCallback`` for PyTorch Lightning;
- :mod:`netviz.integrations.transformers`: ``NetvizCallback`` for the Hugging Face ``Trainer``;
- :mod:`netviz.integrations.accelerate`: ``watch`` and ``sinks_from`` for accelerate loops.

Each module imports its framework; this package imports none of them.
Callbacks only decide when to attach, close steps and flush: the statistics
and the host transfer stay netviz's (see ``docs/integrations.md``).
"""
