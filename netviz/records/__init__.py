"""Records: tidy tables of what probes captured, and their files."""

from netviz.records.io import load, save_frame
from netviz.records.store import COLUMNS, RecordStore, validate_frame

__all__ = ["COLUMNS", "RecordStore", "load", "save_frame", "validate_frame"]
