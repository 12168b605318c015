"""Data-parallel training watched by netviz: DDP (or FSDP2) on CPU with gloo, or GPUs with NCCL.

Every rank trains on its own half of each batch of scikit-learn's digits;
``netviz.watch`` gathers each recorded step's statistics with one collective,
so rank 0 holds those of the *global* batch and of the synchronised gradients.
At the end every rank runs ``diagnose`` (a collective too), and rank 0 prints
the findings and writes the records::

    torchrun --nproc_per_node=2 examples/ddp_train.py [--fsdp] [--steps 60] [--out runs/ddp.csv]
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

import netviz

GLOBAL_BATCH = 128


def digits(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The 1,797 8x8 digit images (standardised) and their labels."""
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    return x.to(device), torch.tensor(data.target).to(device)


def make_model() -> nn.Module:
    torch.manual_seed(0)  # the same initial weights on every rank
    return nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.Tanh(), nn.Linear(64, 10)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fsdp", action="store_true", help="shard with FSDP2 instead of DDP")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--every", type=int, default=1, help="record every N-th step")
    parser.add_argument("--out", default="runs/ddp.csv", help="records file (rank 0)")
    args = parser.parse_args()

    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else None
    device = device or torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)

    model = make_model().to(device)
    if args.fsdp:
        from torch.distributed.fsdp import fully_shard

        for layer in model:
            if isinstance(layer, nn.Linear):
                fully_shard(layer)
        wrapped = fully_shard(model)
    else:
        wrapped = DDP(model, device_ids=[device.index] if cuda else None)
    opt = torch.optim.SGD(wrapped.parameters(), lr=0.05, momentum=0.9)

    x_all, y_all = digits(device)
    # Every rank calls watch with the same arguments (names as in `model`).
    mon = netviz.watch(
        wrapped,
        probes=["grad_norm", "activation_stats", "weight_stats"],
        every=args.every,
        optimizer=opt,
    )
    for step in range(args.steps):
        # The same global batch on every rank (shared seed); each rank takes its slice.
        idx = torch.randperm(len(x_all), generator=torch.Generator().manual_seed(step))
        idx = idx[:GLOBAL_BATCH].to(device)[rank::world]
        opt.zero_grad()
        loss = F.cross_entropy(wrapped(x_all[idx]), y_all[idx])
        loss.backward()
        opt.step()  # closes the monitor's step: one gather on recorded steps
        if rank == 0 and step % 20 == 0:
            print(f"step {step:3d}  loss (rank 0's half) {loss.item():.3f}")
    mon.detach()

    df = mon.to_pandas()
    saved = mon.save(args.out)  # writes on rank 0 only; None elsewhere
    print(f"rank {rank}: {len(df)} records kept, saved to {saved}")

    # diagnose runs one forward/backward on each rank's part of a batch and
    # gathers like watch: every rank must call it.
    part = slice(rank * 256, (rank + 1) * 256)
    report = netviz.diagnose(wrapped, x_all[part], y_all[part])
    if rank == 0:
        last = df[df.step == df.step.max()]
        grads = last[last.probe == "grad_norm"].set_index("module")["value"]
        acts = last[last.probe == "activation_stats"].pivot(
            index="module", columns="stat", values="value"
        )
        table = acts[["mean", "std", "zero_frac", "numel"]].join(grads.rename("grad_l2"))
        print(f"\nstep {df.step.max()}, global batch of {GLOBAL_BATCH}:")
        print(table.to_string(na_rep=""))
        print(f"\ndiagnose (global batch of {256 * world} digits):")
        print(report)
        print("\ndiagnose of the recorded run:")
        print(netviz.diagnose(records=df))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
