"""``watch`` under DistributedDataParallel and FSDP2: two real gloo processes on CPU.

One job runs every scenario of ``_dist_worker.py`` (each rank with different
data); the tests compare what rank 0 recorded with single-process references
on the concatenated global batch: gradients and activations computed here
with plain PyTorch, and a single-process ``netviz.watch`` run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
from _dist_scenario import LR, STEPS, WORLD, global_batch, local_batch, loss_fn, make_model
from torch import nn

import netviz
from netviz.capture.distributed import (
    INITIAL_CAPACITY,
    StepGather,
    _bucket,
    layout_key,
    make_gather,
)

pytestmark = [
    pytest.mark.distributed,
    pytest.mark.slow,
    pytest.mark.xdist_group("distributed"),  # one job per run under --dist loadgroup
    pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="needs gloo"),
]

HERE = Path(__file__).parent
REPO = HERE.parent.parent
JOB_TIMEOUT = 240  # seconds for the whole two-process job; then both are killed
PROBES = ["grad_norm", "grad_stats", "activation_stats", "weight_stats"]
LINEARS = ["0", "2", "4"]
ACTIVATED = ["0", "1", "2", "3", "4"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """Run the two-rank job once; return ``(out_dir, [rank0_result, rank1_result])``."""
    out = tmp_path_factory.mktemp("dist")
    port = _free_port()
    procs, logs = [], []
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
        log = open(out / f"log{rank}.txt", "w")  # noqa: SIM115 - closed below
        logs.append(log)
        procs.append(
            subprocess.Popen(
                [sys.executable, str(HERE / "_dist_worker.py"), str(out)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    try:
        for p in procs:
            p.wait(timeout=JOB_TIMEOUT)
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail(f"distributed job exceeded {JOB_TIMEOUT} s; logs in {out}")
    finally:
        for p in procs:
            p.wait()
        for log in logs:
            log.close()
    tails = "\n".join((out / f"log{r}.txt").read_text()[-3000:] for r in range(WORLD))
    assert all(p.returncode == 0 for p in procs), tails
    results = [json.loads((out / f"rank{r}.json").read_text()) for r in range(WORLD)]
    for r, res in enumerate(results):
        assert not res["errors"], f"rank {r}: {res['errors']}"
    return out, results


# ---------------------------------------------------------------- references
def _act_stats(t: torch.Tensor) -> dict[str, float]:
    t = t.detach().double()
    return {
        "mean": t.mean().item(),
        "std": t.std(unbiased=False).item(),
        "min": t.min().item(),
        "max": t.max().item(),
        "abs_mean": t.abs().mean().item(),
        "zero_frac": (t == 0).double().mean().item(),
        "numel": float(t.numel()),
    }


def _reference(every: int) -> dict[tuple[int, str, str, str], float]:
    """Plain PyTorch on the global batch: ``{(step, module, probe, stat): value}``."""
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    outputs: dict[str, torch.Tensor] = {}
    for name, module in model.named_children():
        module.register_forward_hook(lambda m, a, o, name=name: outputs.__setitem__(name, o))
    ref: dict[tuple[int, str, str, str], float] = {}
    prev: dict[str, list[torch.Tensor]] = {}
    for step in range(STEPS):
        x, y = global_batch(step)
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        if step % every:
            continue
        for name in ACTIVATED:
            for stat, v in _act_stats(outputs[name]).items():
                ref[step, name, "activation_stats", stat] = v
        for name in LINEARS:
            params = list(getattr(model, name).parameters())
            g = torch.cat([p.grad.reshape(-1) for p in params])
            w = [p.detach().clone() for p in params]
            ref[step, name, "grad_norm", "l2"] = g.norm().item()
            ref[step, name, "grad_stats", "l2"] = g.norm().item()
            ref[step, name, "grad_stats", "mean"] = g.mean().item()
            ref[step, name, "grad_stats", "std"] = g.std(unbiased=False).item()
            ref[step, name, "grad_stats", "abs_max"] = g.abs().max().item()
            ref[step, name, "weight_stats", "l2"] = (
                torch.cat([p.reshape(-1) for p in w]).norm().item()
            )
            if name in prev:
                diff = torch.cat([(a - b).reshape(-1) for a, b in zip(w, prev[name])])
                before = torch.cat([b.reshape(-1) for b in prev[name]])
                ref[step, name, "weight_stats", "update_ratio"] = (
                    diff.norm() / before.norm()
                ).item()
            prev[name] = w
    return ref


def _single_process_watch(every: int) -> pd.DataFrame:
    """netviz.watch in this process on the global batch (the run DDP/FSDP must reproduce)."""
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    with netviz.watch(model, probes=PROBES, every=every, optimizer=opt) as mon:
        for step in range(STEPS):
            x, y = global_batch(step)
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
    return mon.to_pandas()


def _keyed(df: pd.DataFrame) -> pd.Series:
    return df.set_index(["step", "module", "probe", "stat"])["value"].sort_index()


def _check_against_reference(df: pd.DataFrame, ref: dict) -> None:
    got = _keyed(df)
    for key, want in ref.items():
        assert key in got.index, f"missing record {key}"
        assert got[key] == pytest.approx(want, rel=1e-9, abs=1e-12), key


def _check_same_records(dist_df: pd.DataFrame, single: pd.DataFrame) -> None:
    a, b = _keyed(dist_df), _keyed(single)
    assert list(a.index) == list(b.index)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------- DDP
def test_ddp_records_equal_global_batch_references(job):
    out, _ = job
    df = netviz.load(out / "ddp.csv")
    assert sorted(df.step.unique()) == [0, 2]  # every=2
    # names are those of the inner model: no "module." prefix from DDP
    assert sorted(df.module.unique()) == ACTIVATED
    _check_against_reference(df, _reference(every=2))


def test_ddp_records_match_single_process_watch(job):
    out, _ = job
    _check_same_records(netviz.load(out / "ddp.csv"), _single_process_watch(every=2))


def test_one_collective_per_recorded_step_none_elsewhere(job):
    _, results = job
    for res in results:
        ddp = res["ddp"]
        assert ddp["collectives_in_forward_backward"] == [0] * STEPS  # none inside hooks
        assert ddp["collectives_in_step"] == [1, 0, 1, 0]  # every=2
        assert ddp["gather_counter"] == 2


def test_only_rank0_keeps_and_saves_records(job):
    _, (r0, r1) = job
    assert r0["ddp"]["rows"] > 0 and r0["ddp"]["saved"] and r0["ddp"]["file_exists"]
    assert r1["ddp"]["rows"] == 0
    assert not r1["ddp"]["saved"] and not r1["ddp"]["file_exists"]
    assert r0["per_rank"]["saved"] and not r1["per_rank"]["saved"]


def test_per_rank_records_keep_each_ranks_statistics(job):
    out, _ = job
    df = netviz.load(out / "per_rank.parquet")  # the rank column survives save/load
    assert sorted(df["rank"].unique()) == [0, 1]
    keyed = df.set_index(["rank", "module", "probe", "stat"])["value"]
    model = make_model()
    outputs = {}
    for name, module in model.named_children():
        module.register_forward_hook(lambda m, a, o, name=name: outputs.__setitem__(name, o))
    for rank in range(WORLD):
        with torch.no_grad():
            model(local_batch(0, rank)[0])
        for name in ACTIVATED:
            for stat, want in _act_stats(outputs[name]).items():
                got = keyed[rank, name, "activation_stats", stat]
                assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
    # DDP's gradients are the synchronised average: the same on both ranks
    x, y = global_batch(0)
    loss_fn(model(x), y).backward()
    for name in LINEARS:
        want = torch.cat([p.grad.reshape(-1) for p in getattr(model, name).parameters()]).norm()
        for rank in range(WORLD):
            assert keyed[rank, name, "grad_norm", "l2"] == pytest.approx(want.item(), rel=1e-9)


def test_all_ranks_keeps_the_same_merged_records_everywhere(job):
    out, results = job
    assert all(res["all_ranks"]["saved"] for res in results)
    r0, r1 = (netviz.load(out / f"all_ranks{r}.csv") for r in range(WORLD))
    assert len(r0) > 0 and "rank" not in r0.columns
    pd.testing.assert_frame_equal(r0, r1)


# ------------------------------------------------------------------- diagnose
def test_diagnose_under_ddp_matches_single_process_on_the_global_batch(job):
    from _dist_scenario import diagnose_batch, make_diagnose_model

    from netviz import diagnose

    out, (r0, r1) = job
    parts = [diagnose_batch(r) for r in range(WORLD)]
    x, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    single = diagnose(make_diagnose_model(), x, y)
    assert single.kinds() == ["vanishing_gradients", "dead_units"]  # the built pathologies
    want = [[f.kind, f.module, f.severity] for f in single.findings]
    assert r0["diagnose"]["findings"] == want
    # the evidence behind the findings: the same records within rounding
    _check_same_records(netviz.load(out / "diagnose.csv"), single.records)
    # every rank gets the same report, so code branching on it cannot diverge
    assert r1["diagnose"]["findings"] == want
    assert r1["diagnose"]["rows"] == r0["diagnose"]["rows"] > 0


# -------------------------------------------------------------------- errors
def test_layout_mismatch_raises_the_same_clear_error_on_every_rank(job):
    _, results = job
    messages = {res["mismatch"]["message"] for res in results}
    assert all(res["mismatch"]["raised"] == "DistributedRecordError" for res in results)
    assert len(messages) == 1
    assert "different numbers of values [45, 90]" in messages.pop()
    # rank 1 overflowed the capacity of 64: both ranks grew to 4096 and gathered again
    assert [res["mismatch"]["capacity"] for res in results] == [4096, 4096]
    assert [res["mismatch"]["collectives"] for res in results] == [2, 2]


def test_buffer_growth_is_agreed_by_all_ranks_and_keeps_values(job):
    out, results = job
    for res in results:
        # 40 values > capacity 16: the first step gathers twice (announce, resend), then once
        assert res["growth"]["collectives"] == [2, 1, 1]
        assert res["growth"]["capacity"] == 64
    df = netviz.load(out / "growth.csv")
    model = make_model()
    outputs = {}
    for name, module in model.named_children():
        module.register_forward_hook(lambda m, a, o, name=name: outputs.__setitem__(name, o))
    keyed = _keyed(df)
    for step in range(3):
        with torch.no_grad():
            model(global_batch(step)[0])
        for name in ACTIVATED:
            for stat, want in _act_stats(outputs[name]).items():
                assert keyed[step, name, "activation_stats", stat] == pytest.approx(want, rel=1e-9)


def test_monitor_on_one_rank_times_out_with_clear_error(job):
    _, (r0, _) = job
    info = r0["one_rank"]
    assert info["raised"] == "DistributedRecordError"
    assert "Every rank must call netviz.watch" in info["message"]
    assert "distributed=False" in info["message"]
    assert info["seconds"] < 20  # the group's 2 s timeout, not a hang


def test_watch_on_one_rank_fails_clearly_when_creating_its_group(job):
    _, (r0, _) = job
    info = r0["watch_on_one_rank"]
    assert info["raised"] == "DistributedRecordError"
    assert "could not create its process group" in info["message"]
    assert "Every rank must call" in info["message"]
    assert info["seconds"] < 30  # bounded by the 2 s timeout (gloo waits up to twice)


def test_exception_inside_watch_drops_the_open_step_without_communicating(job):
    _, results = job
    for res in results:
        assert res["exception"] == {"propagated": "'boom'", "collectives": 0}


def test_fsdp1_is_refused_clearly(job):
    _, results = job
    for res in results:
        assert res["fsdp1"]["raised"] == "NotImplementedError"
        assert "fully_shard" in res["fsdp1"]["message"]
        assert res["fsdp1"]["local_ok"]  # distributed=False still attaches


# --------------------------------------------------------------------- FSDP2
def test_fsdp2_shards_are_uneven_and_empty(job):
    _, (r0, r1) = job
    # 5 output rows over 2 ranks: 3 + 2 (to_local holds no padding); 1 row: 1 + 0
    assert r0["fsdp2"]["local_shapes"]["0.weight"] == [3, 3]
    assert r1["fsdp2"]["local_shapes"]["0.weight"] == [2, 3]
    assert r1["fsdp2"]["local_shapes"]["4.weight"] == [0, 4]


def test_fsdp2_records_equal_global_references(job):
    out, _ = job
    df = netviz.load(out / "fsdp2.csv")
    assert sorted(df.module.unique()) == ACTIVATED
    _check_against_reference(df, _reference(every=1))
    _check_same_records(df, _single_process_watch(every=1))


def test_fsdp2_per_rank_shard_norms_underreport_the_global_norm(job):
    out, _ = job
    df = netviz.load(out / "fsdp2_per_rank.csv")
    shard = df[df.stat == "l2"].pivot(index="module", columns="rank", values="value")
    glob = {k[1]: v for k, v in _reference(every=1).items() if k[0] == 0 and k[2] == "grad_norm"}
    for name in LINEARS:
        norms = shard.loc[name].to_numpy()
        assert np.sqrt((norms**2).sum()) == pytest.approx(glob[name], rel=1e-9)
        if name != "4":  # split over both ranks: each shard alone under-reports
            assert norms.max() < 0.99 * glob[name]
    # the last layer has one output row: all of it on rank 0, an empty shard on rank 1
    assert shard.loc["4", 1] == 0.0
    assert shard.loc["4", 0] == pytest.approx(glob["4"], rel=1e-12)


# ------------------------------------------------------- in-process, no job
def test_layout_key_is_stable_and_separates_layouts():
    a = [(0, "enc.0", 0, False), (1, "enc.0", 0, True)]
    assert layout_key(a) == layout_key(list(a))
    assert layout_key(a) != layout_key(a[::-1])
    assert layout_key(a) != layout_key([(0, "enc.0", 1, False), (1, "enc.0", 0, True)])
    # a known value: the checksums are not Python's per-process hash()
    import zlib

    text = b"0\x1fenc.0\x1f0\x1fFalse"
    assert layout_key(a[:1]) == (zlib.crc32(text), zlib.adler32(text))


def test_capacity_grows_in_powers_of_two():
    assert _bucket(1) == INITIAL_CAPACITY
    assert _bucket(INITIAL_CAPACITY) == INITIAL_CAPACITY
    assert _bucket(INITIAL_CAPACITY + 1) == 2 * INITIAL_CAPACITY
    assert _bucket(5 * INITIAL_CAPACITY) == 8 * INITIAL_CAPACITY


@pytest.mark.skipif(dist.is_initialized(), reason="needs a process without a process group")
def test_argument_errors_without_a_process_group():
    net = nn.Linear(2, 2)
    assert make_gather(net, "auto", False, None) is None
    assert make_gather(net, None, False, None) is None
    assert make_gather(net, False, False, None) is None
    with pytest.raises(ValueError, match="`distributed` must be"):
        netviz.watch(net, distributed="yes")
    with pytest.raises(RuntimeError, match="not initialised"):
        netviz.watch(net, distributed=True)
    with pytest.raises(ValueError, match="`per_rank=True` needs"):
        netviz.watch(net, per_rank=True)
    with pytest.raises(TypeError, match="`per_rank` must be a bool"):
        netviz.watch(net, per_rank="yes")
    with pytest.raises(TypeError, match="`all_ranks` must be a bool"):
        netviz.watch(net, all_ranks=1)
    with pytest.raises(ValueError, match="`process_group` was given"):
        netviz.watch(net, distributed=False, process_group=object())
    # without a process group watch records locally, as before
    with netviz.watch(net) as mon:
        net(torch.ones(1, 2)).sum().backward()
        mon.step()
    assert mon._gather is None and len(mon.to_pandas()) > 0
    assert not isinstance(mon._gather, StepGather)
