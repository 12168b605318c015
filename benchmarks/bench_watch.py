"""Training-step overhead of ``netviz.watch(grad_norm, activation_stats)`` on every leaf module.

Three workloads (an 8-layer MLP, a small ResNet-style CNN, a small
``nn.TransformerEncoder``), each trained with SGD on synthetic data. For each
workload two identical copies of the model are stepped in one interleaved run
(plain, watched, plain, watched, ... in alternating order) and the median
step times are compared, so that machine noise hits both sides alike.

Run::

    python benchmarks/bench_watch.py            # full run (about 2 minutes)
    python benchmarks/bench_watch.py --quick    # smoke run

Prints one line per workload: median plain step, median watched step, ratio.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

import netviz


class Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + x)


def mlp() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    layers: list[nn.Module] = [nn.Linear(256, 512), nn.ReLU()]
    for _ in range(6):
        layers += [nn.Linear(512, 512), nn.ReLU()]
    layers.append(nn.Linear(512, 10))
    return nn.Sequential(*layers), torch.randn(256, 256), torch.randint(0, 10, (256,))


def cnn() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    net = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(inplace=True),
        Block(32),
        Block(32),
        nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        Block(64),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )
    return net, torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(1000, 128)
        layer = nn.TransformerEncoderLayer(128, 4, 512, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(128, 10)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens)).mean(dim=1))


def transformer() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    return Classifier(), torch.randint(0, 1000, (32, 64)), torch.randint(0, 10, (32,))


WORKLOADS: dict[str, Callable] = {"cnn": cnn, "transformer": transformer, "mlp": mlp}


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, monitor=None):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        if monitor is not None:
            monitor.step()

    return step


def timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(name: str, rounds: int, per_round: int, warmup: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model, x, y = WORKLOADS[name]()
    watched = copy.deepcopy(model)
    mon = netviz.watch(watched, probes=("grad_norm", "activation_stats"))
    plain_step = make_step(model, x, y)
    watched_step = make_step(watched, x, y, mon)
    for _ in range(warmup):
        plain_step()
        watched_step()
    plain, probed = [], []
    for r in range(rounds):
        order = (plain_step, watched_step) if r % 2 == 0 else (watched_step, plain_step)
        for fn in order:
            times = [timed(fn) for _ in range(per_round)]
            (plain if fn is plain_step else probed).extend(times)
    mon.detach()
    assert len(mon.to_pandas()) > 0
    return statistics.median(plain), statistics.median(probed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps, for a smoke run")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--only", nargs="*", choices=sorted(WORKLOADS), default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rounds, per_round, warmup = (2, 3, 2) if args.quick else (20, 10, 10)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{rounds} rounds x {per_round} steps per side, interleaved"
    )
    print(f"{'workload':12s} {'plain ms':>9s} {'watched ms':>11s} {'ratio':>6s}")
    for name in args.only or list(WORKLOADS):
        base, probed = run(name, rounds, per_round, warmup)
        print(f"{name:12s} {base * 1e3:9.2f} {probed * 1e3:11.2f} {probed / base:6.3f}")


if __name__ == "__main__":
    main()
