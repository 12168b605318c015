"""One rank of the distributed histogram job (run by test_distributed_histograms.py).

DDP and FSDP2 runs of the shared scenario model with the histogram probes.
Each rank also keeps what the probes saw locally (activations, gradients and
weights); rank 0 gathers them (global batch, full tensors), counts them with
numpy.histogram on the probe's grid and writes both its recorded histograms
and these references to ``OUT/hist.json``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from datetime import timedelta
from pathlib import Path

import numpy as np

PROBES = ["activation_hist", "grad_hist", "weight_hist"]


def _counts(values: np.ndarray, edges: np.ndarray) -> list[int]:
    fin = values[np.isfinite(values)]
    c, _ = np.histogram(fin, bins=edges)
    return [
        *map(int, c),
        int(np.isnan(values).sum()),
        int((values == np.inf).sum()),
        int((values == -np.inf).sum()),
    ]


def _dense(hist, edges) -> dict[str, list[int]]:
    """``{"step/module/probe": counts}`` of a histogram table, on ``edges``."""
    out = {}
    nb = len(edges) - 1
    for (step, module, probe), rows in hist.groupby(["step", "module", "probe"]):
        c = np.zeros(nb + 3, dtype=np.int64)
        bins = rows[rows.kind == "bin"]
        np.add.at(c, np.searchsorted(edges, bins.bin_lo.to_numpy()), bins["count"].to_numpy())
        for j, kind in enumerate(("nan", "posinf", "neginf")):
            c[nb + j] += rows[rows.kind == kind]["count"].sum()
        out[f"{step}/{module}/{probe}"] = c.tolist()
    return out


def run(kind: str, rank: int, result: dict) -> None:
    import torch
    import torch.distributed as dist
    from _dist_scenario import LR, STEPS, local_batch, loss_fn, make_model

    import netviz
    from netviz.capture.histogram import HistogramGrid

    model = make_model()
    if kind == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP

        wrapped, inner = DDP(model), model
    else:
        from torch.distributed.fsdp import fully_shard

        for layer in model:
            if isinstance(layer, torch.nn.Linear):
                fully_shard(layer)
        wrapped = inner = fully_shard(model)
    seen: dict[str, np.ndarray] = {}
    outputs: dict[str, torch.Tensor] = {}
    for name, m in inner.named_children():
        m.register_forward_hook(lambda mod, a, o, name=name: outputs.__setitem__(name, o.detach()))
    opt = torch.optim.SGD(wrapped.parameters(), lr=LR)

    def full(t):
        t = t.full_tensor() if hasattr(t, "full_tensor") else t
        return t.detach().double().reshape(-1).numpy()

    with netviz.watch(wrapped, probes=PROBES, optimizer=opt) as mon:
        for step in range(STEPS):
            x, y = local_batch(step, rank)
            opt.zero_grad()
            loss_fn(wrapped(x), y).backward()
            opt.step()  # closes the monitor's step (weights read after the update)
            for name, m in inner.named_children():
                local = [None] * dist.get_world_size()
                dist.all_gather_object(local, outputs[name].reshape(-1).numpy())
                seen[f"{step}/{name}/activation_hist"] = np.concatenate(local)
                params = list(m.parameters(recurse=False))
                if params:
                    seen[f"{step}/{name}/grad_hist"] = np.concatenate(
                        [full(p.grad) for p in params]
                    )
                    seen[f"{step}/{name}/weight_hist"] = np.concatenate([full(p) for p in params])
    if rank == 0:
        edges = HistogramGrid.log().edges
        result[kind] = {
            "recorded": _dense(mon.histograms(), edges),
            "reference": {k: _counts(v, edges) for k, v in seen.items()},
        }


def main() -> int:
    import torch
    import torch.distributed as dist

    out = Path(sys.argv[1])
    sys.path.insert(0, str(Path(__file__).parent))
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    dist.init_process_group("gloo", timeout=timedelta(seconds=30))
    result = {"errors": {}}
    for kind in ("ddp", "fsdp2"):
        try:
            run(kind, rank, result)
        except Exception:
            result["errors"][kind] = traceback.format_exc()
        dist.barrier()
    (out / f"hist{rank}.json").write_text(json.dumps(result))
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
