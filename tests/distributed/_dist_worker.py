"""One rank of the distributed test job (run by ``launch`` in test_distributed.py).

Reads ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` like a
torchrun worker, runs every scenario in turn (DDP, per-rank records, a layout
mismatch, a monitor on one rank only, FSDP2, FSDP1) and writes what it saw
to ``OUT/rank<r>.json`` and rank 0's records to ``OUT/<scenario>.csv``. The test
process compares them with single-process references.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from datetime import timedelta
from pathlib import Path

# Names of the Python-level collectives a netviz monitor could call.
COLLECTIVES = (
    "all_gather_single",
    "all_gather_into_tensor",
    "all_gather",
    "all_gather_object",
    "all_reduce",
    "broadcast",
    "gather",
    "reduce",
    "reduce_scatter_tensor",
    "scatter",
    "barrier",
    "all_to_all_single",
)
PROBES = ["grad_norm", "grad_stats", "activation_stats", "weight_stats"]


class CollectiveCounter:
    """Counts calls of torch.distributed's collectives (patched module attributes)."""

    def __init__(self, dist):
        self.dist, self.count, self._orig = dist, 0, {}

    def __enter__(self):
        for name in COLLECTIVES:
            fn = getattr(self.dist, name, None)
            if fn is None:
                continue
            self._orig[name] = fn

            def wrapped(*args, _fn=fn, **kwargs):
                self.count += 1
                return _fn(*args, **kwargs)

            setattr(self.dist, name, wrapped)
        return self

    def __exit__(self, *exc):
        for name, fn in self._orig.items():
            setattr(self.dist, name, fn)


def scenario_ddp(rank, out, result):
    """DDP, every=2: records, collective counts per step and inside hooks."""
    import torch
    import torch.distributed as dist
    from _dist_scenario import LR, STEPS, local_batch, loss_fn, make_model
    from torch.nn.parallel import DistributedDataParallel as DDP

    import netviz

    ddp = DDP(make_model())
    opt = torch.optim.SGD(ddp.parameters(), lr=LR)
    mon = netviz.watch(ddp, probes=PROBES, every=2, optimizer=opt)
    hooks, steps = [], []
    with CollectiveCounter(dist) as counter:
        for step in range(STEPS):
            x, y = local_batch(step, rank)
            opt.zero_grad()
            before = counter.count
            loss_fn(ddp(x), y).backward()
            hooks.append(counter.count - before)
            before = counter.count
            opt.step()  # closes the monitor's step
            steps.append(counter.count - before)
    mon.detach()
    result["ddp"] = {
        "collectives_in_forward_backward": hooks,
        "collectives_in_step": steps,
        "gather_counter": mon._gather.collectives,
        "rows": len(mon.to_pandas()),
        "module_names": mon.module_names,
        "saved": mon.save(out / f"ddp_rank{rank}.csv") is not None,
        "file_exists": (out / f"ddp_rank{rank}.csv").exists(),
    }
    if rank == 0:
        mon.to_pandas().to_csv(out / "ddp.csv", index=False)


def scenario_per_rank(rank, out, result):
    """DDP, per_rank=True: every rank's own rows, with a rank column, saved by rank 0."""
    import torch
    from _dist_scenario import LR, local_batch, loss_fn, make_model
    from torch.nn.parallel import DistributedDataParallel as DDP

    import netviz

    ddp = DDP(make_model())
    opt = torch.optim.SGD(ddp.parameters(), lr=LR)
    with netviz.watch(ddp, probes=PROBES, optimizer=opt, per_rank=True) as mon:
        x, y = local_batch(0, rank)
        opt.zero_grad()
        loss_fn(ddp(x), y).backward()
        opt.step()
    path = mon.save(out / "per_rank.parquet")
    result["per_rank"] = {"saved": path is not None}
    # all_ranks=True: the same merged records on every rank, saved by each
    with netviz.watch(ddp, probes=PROBES, optimizer=opt, all_ranks=True) as mon:
        x, y = local_batch(1, rank)
        opt.zero_grad()
        loss_fn(ddp(x), y).backward()
        opt.step()
    result["all_ranks"] = {"saved": mon.save(out / f"all_ranks{rank}.csv") is not None}


def scenario_growth(rank, out, result):
    """A buffer larger than the initial capacity: one extra gather when it grows, then one."""
    import torch
    from _dist_scenario import local_batch, make_model

    import netviz
    from netviz.capture import distributed

    distributed.INITIAL_CAPACITY = 16  # this process only: 5 modules x 8 values = 40
    try:
        model = make_model()
        mon = netviz.watch(model, probes="activation_stats")
        counts = []
        for step in range(3):
            with torch.no_grad():
                model(local_batch(step, rank)[0])
            before = mon._gather.collectives
            mon.step()
            counts.append(mon._gather.collectives - before)
        result["growth"] = {"collectives": counts, "capacity": mon._gather.capacity}
        mon.detach()
        if rank == 0:
            mon.save(out / "growth.csv")
    finally:
        distributed.INITIAL_CAPACITY = 4096


def scenario_exception(rank, out, result):
    """An exception inside ``with watch(...)``: the open step is dropped, no collective."""
    import torch.distributed as dist
    from _dist_scenario import local_batch, make_model

    import netviz

    model = make_model()
    with CollectiveCounter(dist) as counter:
        try:
            with netviz.watch(model, probes="activation_stats"):
                model(local_batch(0, rank)[0])
                raise KeyError("boom")
        except KeyError as err:
            result["exception"] = {"propagated": str(err), "collectives": counter.count}


def scenario_mismatch(rank, out, result):
    """Rank 1 runs one extra forward: both ranks must raise the same clear error.

    With a capacity of 64, rank 1's 90 values overflow while rank 0's 45 fit:
    both ranks grow the buffer together first, then find the mismatch.
    """
    import torch
    from _dist_scenario import local_batch, make_model

    import netviz
    from netviz.capture.distributed import DistributedRecordError

    model = make_model()
    mon = netviz.watch(model, probes="activation_stats")
    mon._gather.capacity = 64
    x, _ = local_batch(0, rank)
    with torch.no_grad():
        for _ in range(1 + rank):
            model(x)
    try:
        mon.step()
        result["mismatch"] = {"raised": None}
    except DistributedRecordError as err:
        result["mismatch"] = {"raised": type(err).__name__, "message": str(err)}
    result["mismatch"]["capacity"] = mon._gather.capacity
    result["mismatch"]["collectives"] = mon._gather.collectives
    mon.detach(flush=False)


def scenario_one_rank(rank, out, result):
    """A monitor on rank 0 only: its gather times out with a clear error, nothing hangs."""
    import torch
    import torch.distributed as dist
    from _dist_scenario import local_batch, make_model

    import netviz
    from netviz.capture.distributed import DistributedRecordError

    group = dist.new_group(backend="gloo", timeout=timedelta(seconds=2))
    if rank == 0:
        model = make_model()
        mon = netviz.watch(model, probes="activation_stats", process_group=group)
        with torch.no_grad():
            model(local_batch(0, rank)[0])
        start = time.perf_counter()
        try:
            mon.step()
            info = {"raised": None}
        except DistributedRecordError as err:
            info = {"raised": type(err).__name__, "message": str(err)}
        info["seconds"] = time.perf_counter() - start
        mon.detach(flush=False)
        result["one_rank"] = info


def _fully_shard(model):
    from torch.distributed.fsdp import fully_shard

    for layer in model:
        if isinstance(layer, __import__("torch").nn.Linear):
            fully_shard(layer)
    fully_shard(model)
    return model


def scenario_fsdp2(rank, out, result):
    """FSDP2 (fully_shard) with uneven and empty shards: merged and per-rank records."""
    import torch
    from _dist_scenario import LR, STEPS, local_batch, loss_fn, make_model

    import netviz

    model = _fully_shard(make_model())
    shapes = {n: list(p.to_local().shape) for n, p in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    with netviz.watch(model, probes=PROBES, optimizer=opt) as mon:
        for step in range(STEPS):
            x, y = local_batch(step, rank)
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
    result["fsdp2"] = {"local_shapes": shapes, "module_names": mon.module_names}
    if rank == 0:
        mon.to_pandas().to_csv(out / "fsdp2.csv", index=False)
    # per-rank: each rank's shard norm (what a rank-local logger reports)
    model = _fully_shard(make_model())
    with netviz.watch(model, probes="grad_norm", per_rank=True) as mon:
        x, y = local_batch(0, rank)
        loss_fn(model(x), y).backward()
        mon.step()
    if rank == 0:
        mon.to_pandas().to_csv(out / "fsdp2_per_rank.csv", index=False)


def scenario_fsdp1(rank, out, result):
    """FSDP1 wrappers are refused with a clear error (their flat shards give wrong norms)."""
    import warnings

    import torch
    from _dist_scenario import make_model
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    import netviz

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapped = FSDP(make_model(), use_orig_params=True, device_id=torch.device("cpu"))
    try:
        netviz.watch(wrapped)
        result["fsdp1"] = {"raised": None}
    except NotImplementedError as err:
        result["fsdp1"] = {"raised": type(err).__name__, "message": str(err)}
    local = netviz.watch(wrapped, distributed=False)
    result["fsdp1"]["local_ok"] = local.attached
    local.detach()


def scenario_diagnose(rank, out, result):
    """netviz.diagnose on a DDP model, each rank with its part of the batch."""
    from _dist_scenario import diagnose_batch, make_diagnose_model
    from torch.nn.parallel import DistributedDataParallel as DDP

    from netviz import diagnose

    ddp = DDP(make_diagnose_model())
    x, y = diagnose_batch(rank)
    report = diagnose(ddp, x, y)
    result["diagnose"] = {
        "kinds": report.kinds(),
        "findings": [[f.kind, f.module, f.severity] for f in report.findings],
        "rows": len(report.records),
    }
    if rank == 0:
        report.records.to_csv(out / "diagnose.csv", index=False)


def scenario_watch_on_one_rank(rank, out, result):
    """watch on rank 0 only, default group: creating the monitor's group fails clearly."""
    import torch

    from netviz.capture.distributed import DistributedRecordError, make_gather

    if rank != 0:
        return
    start = time.perf_counter()
    try:
        # what watch(model) does, with a short timeout instead of the default group's 30 s
        make_gather(torch.nn.Linear(2, 2), "auto", False, None, timeout=timedelta(seconds=2))
        info = {"raised": None}
    except DistributedRecordError as err:
        info = {"raised": type(err).__name__, "message": str(err)}
    info["seconds"] = time.perf_counter() - start
    result["watch_on_one_rank"] = info


SCENARIOS = [
    scenario_ddp,
    scenario_per_rank,
    scenario_growth,
    scenario_exception,
    scenario_mismatch,
    scenario_fsdp2,
    scenario_fsdp1,
    scenario_diagnose,
    scenario_one_rank,  # leaves its own group broken
    scenario_watch_on_one_rank,  # last: only rank 0 counts one more process group
]


def main() -> int:
    import torch
    import torch.distributed as dist

    out = Path(sys.argv[1])
    sys.path.insert(0, str(Path(__file__).parent))
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    dist.init_process_group("gloo", timeout=timedelta(seconds=30))
    result = {"errors": {}}
    for scenario in SCENARIOS:
        try:
            scenario(rank, out, result)
        except Exception:
            result["errors"][scenario.__name__] = traceback.format_exc()
        dist.barrier()
    (out / f"rank{rank}.json").write_text(json.dumps(result, indent=1))
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
