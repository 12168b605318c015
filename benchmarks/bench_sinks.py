"""Cost of each sink per recorded step, and memory per recorded value with and without keep.

One recorded step of a 100-layer MLP (grad_norm, activation_stats,
weight_stats: about 1,100 record rows) is written ``--steps`` times to each
sink, and the median time per step is printed. The trackers write offline:
TensorBoard event files, wandb ``mode="offline"``, MLflow's local file store.
As a yardstick, the same scalars are also written with one ``add_scalar``
call each. Memory: ``tracemalloc`` growth per recorded value over a run with
``keep=True`` and with ``keep=False`` + a Parquet sink.

Run::

    python benchmarks/bench_sinks.py --steps 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import tracemalloc

import torch
from torch import nn

import netviz
from netviz.sinks.series import resolve_series, step_scalars

PROBES = ["grad_norm", "activation_stats", "weight_stats"]


def model(layers: int = 100) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Sequential(nn.Linear(32, 32), nn.ReLU()) for _ in range(layers // 2)])


def one_step_table():
    net = model()
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    with netviz.watch(net, probes=PROBES, optimizer=opt) as mon:
        for _ in range(3):
            opt.zero_grad()
            net(torch.randn(16, 32)).sum().backward()
            opt.step()
    df = mon.to_pandas()
    return df[df.step == 2].reset_index(drop=True)


def timed(write, table, steps: int) -> float:
    times = []
    for s in range(steps):
        t0 = time.perf_counter()
        write(s, table)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def sink_costs(steps: int, tmp: str) -> list[tuple[str, int, float]]:
    table = one_step_table()
    rows: list[tuple[str, int, float]] = []
    n_all = len(step_scalars(table, resolve_series("all")))
    n_compact = len(step_scalars(table, resolve_series("compact")))
    rows.append(("callable (no-op)", len(table), timed(lambda s, t: None, table, steps)))
    rows.append(
        (
            "series: compact (selection + reduction only)",
            n_compact,
            timed(lambda s, t: step_scalars(t, resolve_series("compact")), table, steps),
        )
    )
    for series, n in (("compact", n_compact), ("all", n_all)):
        tb = netviz.sinks.TensorBoard(os.path.join(tmp, f"tb-{series}"), series)
        rows.append((f"TensorBoard series={series}", n, timed(tb.write, table, steps)))
        tb.close()
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(os.path.join(tmp, "tb-add-scalar"))
    scalars = step_scalars(table, resolve_series("all"))

    def add_scalar_each(s, t):
        for k, v in scalars.items():
            writer.add_scalar(k, v, s)

    rows.append(
        ("yardstick: one add_scalar per value", n_all, timed(add_scalar_each, table, steps))
    )
    writer.close()
    tbh = netviz.sinks.TensorBoard(os.path.join(tmp, "tb-hist"), histograms="moments")
    rows.append(
        ("TensorBoard compact + moment histograms", n_compact, timed(tbh.write, table, steps))
    )
    tbh.close()

    import wandb

    os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true")
    run = wandb.init(mode="offline", dir=tmp, project="bench")
    for series, n in (("compact", n_compact), ("all", n_all)):
        wb = netviz.sinks.Wandb(run, series)
        rows.append((f"wandb (offline) series={series}", n, timed(wb.write, table, steps)))
    run.finish()

    import mlflow

    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    mlflow.set_tracking_uri(f"file:{os.path.join(tmp, 'mlruns')}")
    with mlflow.start_run():
        for series, n in (("compact", n_compact), ("all", n_all)):
            ml = netviz.sinks.MLflow(series=series)
            rows.append((f"MLflow (file store) series={series}", n, timed(ml.write, table, steps)))

    pq = netviz.sinks.Parquet(os.path.join(tmp, "run.parquet"), steps_per_file=10)
    rows.append(
        ("Parquet (all rows, part every 10 steps)", len(table), timed(pq.write, table, steps))
    )
    pq.close()
    return rows


def dispatch_cost(steps: int) -> float:
    """Extra time per recorded step of a monitor with a no-op sink (the per-step table)."""
    net = model()
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    x = torch.randn(16, 32)
    per_mode = {}
    for sinks in ([], [lambda s, t: None]):
        times = []
        with netviz.watch(net, probes=PROBES, optimizer=opt, sinks=sinks):
            for _ in range(steps):
                t0 = time.perf_counter()
                opt.zero_grad()
                net(x).sum().backward()
                opt.step()
                times.append(time.perf_counter() - t0)
        per_mode[bool(sinks)] = statistics.median(times[2:])
    return (per_mode[True] - per_mode[False]) * 1e3


def memory_per_value(keep: bool, steps: int, tmp: str) -> float:
    net = model(40)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    counted = []
    sinks = [lambda s, t: counted.append(len(t))]
    if not keep:
        sinks.append(netviz.sinks.Parquet(os.path.join(tmp, f"mem-{keep}.parquet")))
    x = torch.randn(16, 32)
    with netviz.watch(net, probes=PROBES, optimizer=opt, sinks=sinks, keep=keep):
        for _ in range(5):
            opt.zero_grad()
            net(x).sum().backward()
            opt.step()
        tracemalloc.start()
        before, n0 = tracemalloc.get_traced_memory()[0], sum(counted)
        for _ in range(steps):
            opt.zero_grad()
            net(x).sum().backward()
            opt.step()
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    return grown / (sum(counted) - n0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--memory-steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'sink':48s} {'values':>7s} {'ms/step':>8s}")
        for name, n, ms in sink_costs(args.steps, tmp):
            print(f"{name:48s} {n:7d} {ms:8.2f}")
        print(
            f"monitor with a no-op sink: +{dispatch_cost(args.steps * 2):.2f} ms per recorded step"
        )
        for keep in (True, False):
            b = memory_per_value(keep, args.memory_steps, tmp)
            print(f"memory per recorded value, keep={keep}: {b:.1f} bytes")


if __name__ == "__main__":
    main()
