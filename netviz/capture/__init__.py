"""Capture: probes, hooks and the monitor. Never imports matplotlib."""

from netviz.capture.attach import watch
from netviz.capture.monitor import Monitor
from netviz.capture.probe import Probe, ProbeContext
from netviz.capture.selection import select_modules

__all__ = ["Monitor", "Probe", "ProbeContext", "select_modules", "watch"]
