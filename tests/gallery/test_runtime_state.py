"""The gallery helpers leave process state as they found it (issue #17).

A script run by hand keeps the user's matplotlib backend; the Sphinx hook
restores :mod:`builtins` after each example.
"""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
from pathlib import Path

import pytest

from netviz.gallery import sphinx_hooks

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "netviz" / "gallery" / "scripts"

PROBE = """
import matplotlib, runpy, sys
calls = []
real_use = matplotlib.use
matplotlib.use = lambda *a, **k: (calls.append(a), real_use(*a, **k))
runpy.run_path(sys.argv[1], run_name="__main__")
print("BACKEND", matplotlib.get_backend(), "USE_CALLS", calls)
"""


@pytest.mark.slow  # a fresh interpreter importing torch and matplotlib (a few seconds)
@pytest.mark.parametrize("backend", ["svg", "pdf"])
def test_a_script_run_by_hand_keeps_the_users_backend(backend, tmp_path):
    env = {
        **os.environ,
        "MPLBACKEND": backend,
        "NETVIZ_GALLERY_FAST": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    script = SCRIPTS / "A1_xor_not_separable.py"
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(script)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"BACKEND {backend} USE_CALLS []" in out.stdout, out.stdout[-500:]


def test_setup_does_not_select_a_backend(monkeypatch):
    import matplotlib

    from netviz.gallery import setup

    calls = []
    monkeypatch.setattr(matplotlib, "use", lambda *a, **k: calls.append(a))
    import torch

    threads = torch.get_num_threads()
    rc = matplotlib.rcParams.copy()
    try:
        setup()
    finally:
        torch.set_num_threads(threads)
        matplotlib.rcParams.update(rc)
    assert calls == []


def _conf(tmp_path):
    return {"examples_dirs": str(tmp_path)}


def test_sphinx_hook_removes_builtins_file_after_each_example(tmp_path, monkeypatch):
    monkeypatch.setattr("netviz.gallery.setup", lambda: None)
    assert not hasattr(builtins, "__file__")
    sphinx_hooks.reset_style(_conf(tmp_path), "A1_x.py", "before")
    assert builtins.__file__ == str(tmp_path / "A1_x.py")
    sphinx_hooks.reset_style(_conf(tmp_path), "A1_x.py", "after")
    assert not hasattr(builtins, "__file__")


def test_sphinx_hook_restores_a_builtins_file_set_by_someone_else(tmp_path, monkeypatch):
    monkeypatch.setattr("netviz.gallery.setup", lambda: None)
    monkeypatch.setattr(builtins, "__file__", "theirs", raising=False)
    conf = _conf(tmp_path)
    sphinx_hooks.reset_style(conf, "A1_x.py", "before")
    sphinx_hooks.reset_style(conf, "B1_y.py", "before")  # a missed "after": still one layer
    assert builtins.__file__ == str(tmp_path / "B1_y.py")
    sphinx_hooks.reset_style(conf, "B1_y.py", "after")
    assert builtins.__file__ == "theirs"
    sphinx_hooks.reset_style(conf, None, "after")  # nothing of ours left: untouched
    assert builtins.__file__ == "theirs"


def test_every_script_shows_its_figures_when_run_by_hand():
    """``python <script>`` under an interactive backend opens the figures' window:
    each script ends with ``plt.show()`` (a no-op under the builder's Agg)."""
    import ast

    missing = []
    for script in sorted(SCRIPTS.glob("[A-Z]*.py")):
        body = ast.parse(script.read_text()).body
        last = body[-1]
        call = last.value if isinstance(last, ast.Expr) else None
        if not (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "show"
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id == "plt"
        ):
            missing.append(script.name)
    assert len(list(SCRIPTS.glob("[A-Z]*.py"))) == 42
    assert not missing, f"scripts that do not end with plt.show(): {missing}"
