"""The self-contained examples of docs/integrations.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_self_contained_python_blocks_run(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "integrations.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S)]
    runnable = [b for b in blocks if b.startswith("import torch")]
    assert len(runnable) >= 2
    monkeypatch.chdir(tmp_path)
    for code in runnable:
        exec(compile(code, "integrations.md", "exec"), {"__name__": "__docs__"})
    assert len(list((tmp_path / "runs" / "demo").glob("events.out.tfevents.*"))) == 1
    import netviz

    assert netviz.load(tmp_path / "long_run.parquet").step.nunique() == 50


def test_every_literalinclude_names_a_tested_example():
    text = (ROOT / "docs" / "integrations.md").read_text()
    included = re.findall(r"```\{literalinclude\} \.\./(\S+)", text)
    assert included == [
        "examples/integrations/lightning_example.py",
        "examples/integrations/hf_trainer_example.py",
        "examples/integrations/accelerate_example.py",
    ]
    tests = " ".join(p.read_text() for p in Path(__file__).parent.glob("test_integration_*.py"))
    for path in included:
        assert (ROOT / path).exists()
        assert f"import {Path(path).stem}" in tests  # run by an integration test


def test_readme_integration_snippets_use_the_real_api():
    readme = (ROOT / "README.md").read_text()
    snippets = re.findall(r"## Add it to ([^\n]+)\n\n```py\n(.*?)```", readme, flags=re.S)
    assert [title for title, _ in snippets] == [
        "Lightning",
        "the Hugging Face Trainer",
        "TensorBoard",
    ]
    for _, code in snippets:
        assert len([line for line in code.splitlines() if line.strip()]) == 3  # three lines
        for line in code.splitlines():
            if line.startswith("from "):
                exec(line, {})  # the imported names exist
    import netviz

    assert callable(netviz.sinks.TensorBoard)
