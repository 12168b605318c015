"""Shared test settings: headless matplotlib, Hypothesis profiles, seeds."""

from __future__ import annotations

import os

import matplotlib
import pytest
import torch
from hypothesis import HealthCheck, settings
from torch.utils._python_dispatch import TorchDispatchMode

matplotlib.use("Agg")

# CI: derandomized and bounded; local runs: more examples.
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("dev", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def _seed_one_thread_close_figures():
    # Tiny test networks run fastest on one thread (above all on a loaded
    # 2-core machine running pytest -n 2); the setting is restored after.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture
def run_gallery(monkeypatch, tmp_path):
    """``run_gallery("E3")``: the namespace of ``netviz/gallery/scripts/E3_*.py`` run in fast mode.

    Runs in a temporary folder with the gallery folder importable; torch's
    thread count and deterministic flag and matplotlib's rcParams (which
    gallery ``setup()`` changes) are restored afterwards.
    """
    import runpy
    from pathlib import Path

    import matplotlib as mpl
    import matplotlib.pyplot as plt

    gallery = Path(__file__).resolve().parents[1] / "netviz" / "gallery" / "scripts"
    monkeypatch.setenv("NETVIZ_GALLERY_FAST", "1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(gallery))
    deterministic = torch.are_deterministic_algorithms_enabled()
    threads = torch.get_num_threads()
    rc = mpl.rcParams.copy()

    def run(figure_id: str) -> dict:
        (path,) = gallery.glob(f"{figure_id}_*.py")
        return runpy.run_path(str(path), run_name="__gallery__")

    yield run
    plt.close("all")
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)
    mpl.rcParams.update(rc)


class ScalarCounter(TorchDispatchMode):
    """A dispatch mode counting host extractions (``aten._local_scalar_dense``:
    every ``.item()``, ``.tolist()`` or Python branch on a tensor value)."""

    def __init__(self):
        super().__init__()
        self.count = 0  # host extractions
        self.ops = 0  # all dispatched ops (shows that the mode saw the work)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


@pytest.fixture
def scalar_counter():
    """A fresh dispatch mode that counts host synchronisations; use ``with``."""
    return ScalarCounter()
