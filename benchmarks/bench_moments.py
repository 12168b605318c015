"""Cost of the activation-statistics kernels per element: fused one-pass C vs eager torch.

For each size, a fresh ReLU output (as in a forward hook: just written, so
partly in cache) is reduced by ``tensor_moments`` with the eager kernel and
with the fused kernel, interleaved, and the median time per call is printed
next to the ReLU that produced it (one read and one write pass: a yardstick
for "one memory pass").

With ``--hist``, a second table compares, per element, the C kernels of the
histogram probes on the default log grid: the moments alone, the counts alone
(``_hist.c``), both as two reads (``activation_stats`` next to
``activation_hist`` with the torch-free kernels but nothing shared) and both in
one read (``netviz_mh_*``, what the two probes do together), on one thread and
on two, all alternating in one process (the thread count too).

Run::

    python benchmarks/bench_moments.py --threads 2
    python benchmarks/bench_moments.py --hist
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from netviz.capture import _fused, _fused_hist
from netviz.capture.histogram import HistogramGrid
from netviz.capture.stats import Scratch, tensor_moments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--hist", action="store_true", help="histogram kernels, 1 and 2 threads")
    args = parser.parse_args()
    if args.hist:
        histograms(args.reps)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    if _fused.load() is None:
        raise SystemExit("the fused kernel is not available here (see netviz/capture/_fused.py)")
    eager, fused = Scratch(kernel="eager"), Scratch(kernel="fused")
    sides = {
        "relu": lambda y: torch.relu(y),
        "eager": lambda y: tensor_moments(y, eager),
        "fused": lambda y: tensor_moments(y, fused),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median ms per call")
    print(
        f"{'elements':>10s} {'relu':>8s} {'eager':>8s} {'fused':>8s} {'eager/fused':>12s} {'fused ns/elem':>14s}"
    )
    for n in (1 << 12, 1 << 16, 1 << 20, 1 << 21, 1 << 23):
        x = torch.randn(n)
        times: dict[str, list[float]] = {k: [] for k in sides}
        for r in range(args.reps):
            for k in list(sides)[r % 3 :] + list(sides)[: r % 3]:
                y = torch.relu(x)  # a fresh output, as a hook sees it
                t0 = time.perf_counter()
                sides[k](y)
                times[k].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        print(
            f"{n:10d} {med['relu']:8.3f} {med['eager']:8.3f} {med['fused']:8.3f} "
            f"{med['eager'] / med['fused']:12.1f} {med['fused'] * 1e6 / n:14.3f}"
        )


def histograms(reps: int) -> None:
    """ns per element of the moments and histogram kernels, 1 and 2 threads, interleaved."""
    moments, counts = _fused.load(), _fused_hist.load()
    if moments is None or counts is None:
        raise SystemExit("the C kernels are not available here (see netviz/capture/_fused.py)")
    grid = HistogramGrid.log()
    sides = {
        "moments": lambda y: moments.moments(y),
        "counts": lambda y: counts.histogram([y], grid),
        "two reads": lambda y: (moments.moments(y), counts.histogram([y], grid)),
        "one read": lambda y: counts.moments_histogram(y, grid),
    }
    print(f"torch {torch.__version__}; median ns per element, default log grid")
    print(f"{'elements':>10s} {'threads':>7s} " + " ".join(f"{k:>9s}" for k in sides) + "  saved")
    for n in (1 << 16, 1 << 18, 1 << 20, 1 << 21, 1 << 23):
        x = torch.randn(n)
        times: dict[tuple[int, str], list[float]] = {}
        for r in range(reps):
            for threads in (1, 2) if r % 2 else (2, 1):
                torch.set_num_threads(threads)
                names = list(sides)[r % 4 :] + list(sides)[: r % 4]
                for k in names:
                    y = torch.relu(x)  # a fresh output, as a hook sees it
                    t0 = time.perf_counter()
                    sides[k](y)
                    times.setdefault((threads, k), []).append(time.perf_counter() - t0)
        for threads in (1, 2):
            ns = {k: statistics.median(times[threads, k]) * 1e9 / n for k in sides}
            print(
                f"{n:10d} {threads:7d} "
                + " ".join(f"{ns[k]:9.3f}" for k in sides)
                + f"  {ns['two reads'] - ns['one read']:5.3f}"
            )


if __name__ == "__main__":
    main()
