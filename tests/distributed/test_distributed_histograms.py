"""Histogram probes under DDP and FSDP2 (two gloo processes): counts of the global batch / full tensors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist
from _dist_scenario import STEPS, WORLD

pytestmark = [
    pytest.mark.distributed,
    pytest.mark.slow,
    pytest.mark.xdist_group("distributed"),
    pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="needs gloo"),
]

HERE = Path(__file__).parent
REPO = HERE.parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist_hist")
    port = _free_port()
    procs = []
    for rank in range(WORLD):
        env = dict(
            os.environ,
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(WORLD),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            OMP_NUM_THREADS="1",
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(HERE / "_dist_hist_worker.py"), str(out)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    logs = []
    try:
        logs = [p.communicate(timeout=180)[0] for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail("distributed histogram job exceeded 180 s")
    assert all(p.returncode == 0 for p in procs), "\n".join(log[-3000:] for log in logs)
    res = json.loads((out / "hist0.json").read_text())
    assert not res["errors"], res["errors"]
    return res


@pytest.mark.parametrize("kind", ["ddp", "fsdp2"])
def test_counts_are_those_of_the_global_batch_and_full_tensors(result, kind):
    rec, ref = result[kind]["recorded"], result[kind]["reference"]
    # every module's output, the Linear layers' gradients and weights, at every step
    assert len(ref) == STEPS * (5 + 3 + 3)
    assert sorted(rec) == sorted(ref)
    for key in ref:
        assert rec[key] == ref[key], key
    # the global batch: both ranks' 6 samples
    assert sum(rec["0/0/activation_hist"]) == WORLD * 6 * 5
