"""The code in docs/attention.md and docs/filters.md runs; the digits example trains and saves."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

import netviz

ROOT = Path(__file__).resolve().parents[2]
EXPORTS = (
    "capture_activations",
    "capture_attention",
    "positional_encoding_weights",
    "conv_filter_weights",
    "load_tensors",
    "record_attention",
    "save_tensors",
    "sinusoidal_encoding",
)


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def test_public_exports():
    for name in EXPORTS:
        assert callable(getattr(netviz, name)), name
    for name in (
        "attention",
        "filters",
        "feature_maps",
        "positional_encoding",
        "position_similarity",
    ):
        assert callable(getattr(netviz.plot, name)), name


@pytest.mark.slow
@pytest.mark.parametrize("doc", ["attention.md", "filters.md"])
def test_doc_code_runs(doc):
    blocks = python_blocks(ROOT / "docs" / doc)
    assert len(blocks) >= 3
    namespace: dict = {"__name__": f"doc_{doc}"}
    for block in blocks:
        exec(compile(block, f"docs/{doc}", "exec"), namespace)


def test_attention_doc_three_lines_give_every_head():
    block = python_blocks(ROOT / "docs" / "attention.md")[0]
    namespace: dict = {}
    exec(compile(block, "docs/attention.md", "exec"), namespace)
    weights, axes = namespace["weights"], namespace["grid"].axes
    assert list(weights) == ["layers.0.self_attn", "layers.1.self_attn"]
    assert axes.shape == (2, 4)
    labels = [t.get_text() for t in axes[0, 0].get_yticklabels()]
    assert labels == ["the", "cat", "sat", "on", "the", "mat"]


@pytest.mark.slow
def test_digits_example_trains_and_writes_small_pngs(tmp_path):
    example = runpy.run_path(str(ROOT / "examples" / "digits_filters.py"))
    filters_png, maps_png, accuracy = example["main"](str(tmp_path))
    assert accuracy > 0.9
    for png in (filters_png, maps_png):
        assert png.parent == tmp_path
        assert 1_000 < png.stat().st_size < 100_000
