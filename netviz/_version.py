"""The version of netviz (a leaf: imports nothing), read by the package and its reports."""

__version__ = "0.1.0.dev0"
