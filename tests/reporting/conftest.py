"""Reports of real short runs (examples/report_digits.py), built once per test session."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "report_digits.py"


def load_example():
    spec = importlib.util.spec_from_file_location("report_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def example():
    return load_example()


@pytest.fixture(scope="session")
def real_reports(tmp_path_factory, example):
    """``(cnn report path, transformer report path)`` of the example's real runs."""
    out = tmp_path_factory.mktemp("reports") / "report.html"
    return example.main(str(out))
