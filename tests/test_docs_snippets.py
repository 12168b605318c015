"""Python examples in the user guides run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
# Guides whose every ```python block is self-contained and runnable.
RUNNABLE = ["watch.md", "report.md", "attribution.md"]


@pytest.mark.parametrize("page", RUNNABLE)
def test_python_blocks_run(page, tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.S)
    assert blocks, f"{page} has no python example"
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, page, "exec"), {"__name__": "__docs__"})
