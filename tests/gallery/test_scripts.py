"""Every gallery script runs in fast mode and follows the header convention.

The scripts are found when the tests are collected, so a new script is tested
without touching this file. They run in this process with
:func:`runpy.run_path` (no second torch import), each in a fresh matplotlib
state; the global torch settings that ``setup()`` changes are restored after
each script.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from netviz.gallery.catalog import SCRIPT_RE, read_script

GALLERY = Path(__file__).resolve().parents[2] / "netviz" / "gallery" / "scripts"
SCRIPTS = sorted(p for p in GALLERY.glob("*.py") if SCRIPT_RE.match(p.name))


@pytest.fixture
def gallery_sandbox(monkeypatch, tmp_path):
    """Fast mode, a scratch working folder, and torch/matplotlib state restored afterwards."""
    import matplotlib as mpl
    import matplotlib.pyplot as plt
    import torch

    monkeypatch.setenv("NETVIZ_GALLERY_FAST", "1")
    monkeypatch.chdir(tmp_path)
    deterministic = torch.are_deterministic_algorithms_enabled()
    threads = torch.get_num_threads()
    rc = mpl.rcParams.copy()
    plt.close("all")
    yield
    plt.close("all")
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)
    mpl.rcParams.update(rc)


def test_scripts_are_found():
    assert len(SCRIPTS) >= 13, f"expected the gallery scripts in {GALLERY}"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
def test_script_header(path):
    script = read_script(path)
    assert script.id == path.name.split("_")[0]
    assert script.title and script.topic
    assert "(notes " in script.topic, "the topic line names the lecture notes: '(notes NNN)'"
    assert script.summary, "the docstring explains the figure in a few sentences"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
def test_script_runs_in_fast_mode(path, gallery_sandbox):
    import matplotlib.pyplot as plt

    script = read_script(path)
    namespace = runpy.run_path(str(path), run_name="__gallery__")
    figures = [plt.figure(n) for n in plt.get_fignums()]
    assert figures, "the script leaves its figure open for the builder"
    suptitle = figures[0]._suptitle
    assert suptitle is not None, "the figure's suptitle is '<ID> · <Title>'"
    assert suptitle.get_text().startswith(f"{script.id} · "), suptitle.get_text()
    assert "setup" in namespace, "the script calls netviz.gallery.setup()"
