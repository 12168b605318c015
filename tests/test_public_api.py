"""The curated public API: every listed name resolves, and no submodule shadows a function."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import netviz
import netviz.plot


def test_every_public_name_resolves():
    for name in netviz.__all__:
        assert getattr(netviz, name) is not None, name
    for name in netviz.plot.__all__:
        assert callable(getattr(netviz.plot, name)), name
    assert netviz.__all__ == sorted(netviz.__all__)


def test_functions_stay_callable_after_importing_every_submodule():
    for info in pkgutil.walk_packages(netviz.__path__, "netviz."):
        if info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
    for name in (
        "watch",
        "summary",
        "diagnose",
        "capture_attention",
        "sinusoidal_encoding",
        "load",
        "report",
    ):
        assert callable(getattr(netviz, name)) and not isinstance(
            getattr(netviz, name), type(netviz)
        ), name
    for name in netviz.plot.__all__:
        assert not isinstance(getattr(netviz.plot, name), type(netviz)), name


def test_import_netviz_does_not_import_matplotlib():
    code = "import sys, netviz; netviz.watch; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
