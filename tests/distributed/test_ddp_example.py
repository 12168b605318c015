"""The DDP example of docs/distributed.md runs under torchrun as documented."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.distributed
@pytest.mark.slow
def test_ddp_example_runs_under_torchrun(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with socket.socket() as sock:  # a free port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={port}",
        str(ROOT / "examples" / "ddp_train.py"),
    ]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=150)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert "rank 0:" in text and "records kept" in text
    assert "rank 1: 0 records kept, saved to None" in text  # only rank 0 keeps and writes
    assert "netviz diagnosis" in text
    assert (tmp_path / "runs" / "ddp.csv").exists()
