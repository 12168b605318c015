"""The README's Python examples run as written, and CI runs the README's test command."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_python_examples_run(tmp_path, monkeypatch):
    blocks = python_blocks(ROOT / "README.md")
    assert blocks, "README has no python example"
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        namespace: dict = {"__name__": "__readme__"}
        exec(compile(code, "README.md", "exec"), namespace)
    assert (tmp_path / "run.parquet").exists()


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- ci:test-command -->\n```bash\n(.*?)\n", readme)
    assert m, "README lacks the marked test command"
    script = (ROOT / ".ci" / "run").read_text()
    assert "ci:test-command" in script
    # the same extraction .ci/run uses gives the README's line
    awk = (
        "/<!-- ci:test-command -->/{found=1; next} found && /^```/{if (inblock) exit; inblock=1; next} "
        "inblock{print; exit}"
    )
    out = subprocess.run(
        ["awk", awk, str(ROOT / "README.md")], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == m.group(1).strip()
    assert "constraints.txt" in m.group(1)  # never an unpinned (multi-GB CUDA) torch
    pins = [
        line.strip()
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "torch==2.13.0" in pins  # the CPU torch the project is tested with
    assert all("==" in pin for pin in pins), pins  # every constraint is an exact pin
