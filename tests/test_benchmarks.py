"""The benchmarks run and print what docs/performance.md quotes (smoke runs, not timings)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netviz.capture import _fused

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.slow
def test_bench_watch_quick_prints_every_side():
    lines = run(
        "benchmarks/bench_watch.py",
        "--quick",
        "--threads",
        "1",
        "--only",
        "mlp",
        "--size",
        "compact",
        "--aa",
    )
    assert "plain_again ms" in lines[1] and "naive ms" in lines[1]
    times, host = lines[2].split("|")
    fields = times.split()
    assert fields[:3] == ["mlp", "compact", "512"], lines
    ratios = [float(f) for f in fields[5::2]]  # plain_again, netviz, naive
    assert len(ratios) == 3 and all(r > 0 for r in ratios), lines
    costs = [float(f) for f in host.split()]  # us per module: forward, close, flush
    assert len(costs) == 3 and all(c > 0 for c in costs), lines


def test_bench_watch_per_module_workloads_run():
    lines = run(
        "benchmarks/bench_watch.py", "--quick", "--threads", "1", "--only", "mlp16", "--no-naive"
    )
    times, host = lines[2].split("|")
    assert times.split()[:3] == ["mlp16", "standard", "256"] and len(host.split()) == 3, lines


def test_bench_moments_compares_the_kernels():
    if _fused.load() is None:
        pytest.skip("no fused kernel here")
    lines = run("benchmarks/bench_moments.py", "--threads", "1", "--reps", "3")
    rows = [line.split() for line in lines[2:]]
    assert [int(r[0]) for r in rows] == [1 << 12, 1 << 16, 1 << 20, 1 << 21, 1 << 23]
    assert all(float(r[4]) > 0 for r in rows)
