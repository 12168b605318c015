"""benchmarks/bench_sinks.py runs and prints a figure for every sink (smoke test)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_bench_sinks_prints_every_sink_and_memory(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "benchmarks/bench_sinks.py", "--steps", "2", "--memory-steps", "20"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rows = {
        m.group(1).strip(): float(m.group(3))
        for m in re.finditer(r"^(.+?)\s+(\d+)\s+([\d.]+)$", out.stdout, re.M)
    }
    for name in (
        "TensorBoard series=compact",
        "wandb (offline) series=all",
        "MLflow (file store) series=all",
        "Parquet (all rows, part every 10 steps)",
        "yardstick: one add_scalar per value",
    ):
        assert name in rows, out.stdout
    memory = dict(re.findall(r"keep=(True|False): ([\d.]+) bytes", out.stdout))
    assert float(memory["False"]) < float(memory["True"])
