"""Training-step overhead of ``netviz.watch(grad_norm, activation_stats)`` on every leaf module.

Three workloads (an 8-layer MLP, a small ResNet-style CNN, a small
``nn.TransformerEncoder``), each trained with SGD on synthetic data, in two
sizes: "standard" (CNN 64/128 channels, d_model 256, MLP width 1024) and
"compact" (half the width: less arithmetic per activation element, so the
statistics' memory passes weigh more; the worst case for the overhead). For each
workload two identical copies of the model are stepped in one interleaved run
(plain, watched, plain, watched, ... in alternating order) and the median
step times are compared, so that machine noise hits both sides alike.

Run::

    python benchmarks/bench_watch.py --threads 2            # both sizes (a few minutes)
    python benchmarks/bench_watch.py --threads 2 --every 10 # recording every 10th step
    python benchmarks/bench_watch.py --threads 2 --kernel eager  # torch ops only
    python benchmarks/bench_watch.py --quick                # smoke run
    python benchmarks/bench_watch.py --threads 2 --hist --no-naive  # + histograms

``--hist`` adds a side with ``activation_hist`` and ``grad_hist`` on every leaf
module on top of ``grad_norm`` + ``activation_stats``; its ratio to the
``netviz`` side (``hist/netviz``) is what the histograms cost.

Prints one line per workload and size: the median plain step, the median
step with ``netviz.watch`` and the ratio, and the same for naive hand-written
hooks (the same statistics with ``.item()`` each, gradient norms per
parameter) as a reference measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

import netviz
from netviz.capture.probes import ActivationStats
from netviz.capture.selection import select_modules
from netviz.capture.stats import KERNELS, Scratch


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


def mlp(width: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    layers: list[nn.Module] = [nn.Linear(256, width), nn.ReLU()]
    for _ in range(6):
        layers += [nn.Linear(width, width), nn.ReLU()]
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers), torch.randn(256, 256), torch.randint(0, 10, (256,))


def cnn(width: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    net = nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        Block(width),
        Block(width),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(inplace=True),
        Block(2 * width),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, 10),
    )
    return net, torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))


class Classifier(nn.Module):
    def __init__(self, d_model: int):
        super().__init__()
        self.embed = nn.Embedding(1000, d_model)
        layer = nn.TransformerEncoderLayer(d_model, 4, 4 * d_model, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 10)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens)).mean(dim=1))


def transformer(d_model: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    return Classifier(d_model), torch.randint(0, 1000, (32, 64)), torch.randint(0, 10, (32,))


def small_mlp(width: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """8 x (Linear(width, width), ReLU): 16 leaves, little compute per module."""
    layers: list[nn.Module] = []
    for _ in range(8):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers), torch.randn(128, width), torch.randint(0, 10, (128,))


class GPTBlock(nn.Module):
    def __init__(self, d: int, heads: int = 4, p: float = 0.1):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.resid_drop1 = nn.Dropout(p)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.gelu = nn.GELU()
        self.fc_proj = nn.Linear(4 * d, d)
        self.resid_drop2 = nn.Dropout(p)
        self.p = p

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = nn.functional.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.p if self.training else 0.0
        )
        x = x + self.resid_drop1(self.proj(y.transpose(1, 2).reshape(b, t, d)))
        return x + self.resid_drop2(self.fc_proj(self.gelu(self.fc(self.ln2(x)))))


class NanoGPT(nn.Module):
    """A nanoGPT-like decoder: embeddings, 6 blocks with causal SDPA, about 60 leaves."""

    def __init__(self, d: int, vocab: int = 256, block: int = 64, layers: int = 6):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(block, d)
        self.drop = nn.Dropout(0.1)
        self.blocks = nn.ModuleList(GPTBlock(d) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx):
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln_f(x)).mean(dim=1)  # one prediction per sequence


def nanogpt(d: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    return NanoGPT(d), torch.randint(0, 256, (16, 64)), torch.randint(0, 256, (16,))


class Chain(nn.Module):
    """``n`` tiny residual ``Linear(4, 4)``: the per-module host cost, nothing else."""

    def __init__(self, n: int):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(4, 4) for _ in range(n))

    def forward(self, x):
        for layer in self.layers:
            x = x + 0.01 * layer(x)
        return x


def chain(n: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    return Chain(n), torch.randn(8, 4), torch.randint(0, 4, (8,))


#: workload -> (builder, width of the "compact" and the "standard" size)
WORKLOADS: dict[str, tuple[Callable, dict[str, int]]] = {
    "cnn": (cnn, {"compact": 32, "standard": 64}),
    "transformer": (transformer, {"compact": 128, "standard": 256}),
    "mlp": (mlp, {"compact": 512, "standard": 1024}),
}

#: Workloads bound by the per-module host cost (one size each; run with --only).
FIXED: dict[str, tuple[Callable, int]] = {
    "mlp16": (small_mlp, 256),
    "nanogpt": (nanogpt, 128),
    "chain2000": (chain, 2000),
}


class NaiveHooks:
    """The hand-written alternative: forward hooks computing the same eight
    statistics with ``.item()`` each (and per-parameter gradient norms),
    as most training scripts and several peers do."""

    def __init__(self, model: nn.Module):
        self.rows: list[tuple[str, float]] = []
        self.model = model
        self.handles = [
            m.register_forward_hook(self._hook(n))
            for n, m in model.named_modules()
            if not list(m.children())
        ]

    def _hook(self, name: str):
        def hook(module, args, out):
            if not isinstance(out, torch.Tensor):
                return
            x = out.detach().float()
            fin = x[torch.isfinite(x)]
            for stat, v in (
                ("mean", fin.mean()),
                ("std", fin.std(correction=0)),
                ("min", fin.min()),
                ("max", fin.max()),
                ("abs_mean", fin.abs().mean()),
                ("zero_frac", (x == 0).float().mean()),
                ("nonfinite_frac", 1 - fin.numel() / x.numel() + 0 * x.sum()),
            ):
                self.rows.append((name + stat, v.item()))
            self.rows.append((name + "numel", float(x.numel())))

        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()

    def step(self) -> None:
        for name, p in self.model.named_parameters():
            if p.grad is not None:
                self.rows.append((name, p.grad.norm().item()))
        if len(self.rows) > 100_000:
            self.rows.clear()


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable:
    """``step(after=None)``: one SGD step of ``model``, then ``after()`` (a monitor's step)."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step(after: Callable[[], None] | None = None) -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        if after is not None:
            after()

    return step


SIDES = ("plain", "netviz", "naive")
#: Sides that attach a netviz monitor.
WATCHED = ("netviz", "hist")


def timed(step: Callable, after: Callable | None) -> float:
    t0 = time.perf_counter()
    step(after)
    return time.perf_counter() - t0


def run(
    name: str,
    size: str,
    rounds: int,
    per_round: int,
    warmup: int,
    every: int = 1,
    kernel: str = "auto",
    sides: tuple[str, ...] = SIDES,
) -> dict[str, float]:
    """Median step time of each side, all on one model, interleaved round by round.

    One model serves every side: each round attaches its probes (a fresh
    ``netviz.watch`` of ``per_round`` steps, a multiple of ``every``, or the
    naive hooks), times the steps, and detaches. Separate copies of a model
    differ by several per cent in speed on their own (measured: two identical
    deep copies, no hooks at all, 8% apart), which would drown the overhead.
    """
    torch.manual_seed(0)
    if name in FIXED:
        build, width = FIXED[name]
    else:
        build, widths = WORKLOADS[name]
        width = widths[size]
    model, x, y = build(width)
    step = make_step(model, x, y)
    per_round = -(-per_round // every) * every  # each round records 1 step in `every`
    recorded = []

    def one_round(side: str) -> list[float]:
        after, detach = None, None
        if side in WATCHED:
            probes = ["grad_norm", ActivationStats(kernel=kernel)]
            if side == "hist":
                from netviz.capture.probes import ActivationHist, GradHist  # netviz >= 0.2

                probes += [ActivationHist(kernel=kernel), GradHist(kernel=kernel)]
            mon = netviz.watch(model, probes=probes, every=every)
            after, detach = mon.step, mon.detach
        elif side == "naive":
            hooks = NaiveHooks(model)
            after, detach = hooks.step, hooks.remove
        out = [timed(step, after) for _ in range(per_round)]
        if detach is not None:
            detach()
        if side in WATCHED:
            recorded.append(len(mon.to_pandas()))
        return out

    for _ in range(warmup):
        for side in sides:
            one_round(side)
    times: dict[str, list[float]] = {k: [] for k in sides}
    for r in range(rounds):
        k = r % len(sides)
        for side in sides[k:] + sides[:k]:  # rotate who goes first
            times[side].extend(one_round(side))
    assert not set(WATCHED) & set(sides) or min(recorded) > 0
    out = {k: statistics.median(v) for k, v in times.items()}
    if "netviz" in sides:
        out.update(host_costs(model, step, per_round, every, kernel))
    return out


def host_costs(
    model: nn.Module, step: Callable, steps: int, every: int, kernel: str
) -> dict[str, float]:
    """Host seconds per hooked module per recorded step in netviz's own code, by part.

    An extra round (not among the timed ones) wraps the monitor's forward
    hook body (with the root-forward bookkeeping), its step close (gradient
    reads, probes' step ends) and the flush (one buffer, host copy, records)
    with timers. Torch's own cost of calling a hook is not included: the
    ratio's difference shows the total.
    """
    mon = netviz.watch(model, probes=["grad_norm", ActivationStats(kernel=kernel)], every=every)
    spent = {"forward": 0.0, "close": 0.0, "flush": 0.0}

    def timer(part: str, fn: Callable) -> Callable:
        def wrapped(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[part] += time.perf_counter() - t0

        return wrapped

    if not hasattr(mon, "_buffer"):  # an older netviz (before the step buffer): no breakdown
        mon.detach()
        return {f"host_{k}": float("nan") for k in spent}
    mon._on_forward = timer("forward", mon._on_forward)
    mon._root_begin = timer("forward", mon._root_begin)
    mon._root_end = timer("forward", mon._root_end)
    mon._close = timer("close", mon._close)
    mon._buffer.flush = timer("flush", mon._buffer.flush)
    for _ in range(steps):
        step(mon.step)
    mon.detach()
    spent["close"] -= spent["flush"]  # the flush runs inside the close
    per = len(select_modules(model, None))
    recorded = max(steps // every, 1)
    return {f"host_{k}": v / (per * recorded) for k, v in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps, for a smoke run")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument(
        "--only",
        nargs="*",
        choices=sorted([*WORKLOADS, *FIXED]),
        default=None,
        help=f"workloads (default: {', '.join(WORKLOADS)}; also {', '.join(FIXED)})",
    )
    parser.add_argument(
        "--size", nargs="*", choices=("compact", "standard"), default=["standard", "compact"]
    )
    parser.add_argument("--every", type=int, default=1, help="record every N-th step (default 1)")
    parser.add_argument(
        "--kernel",
        choices=KERNELS,
        default="auto",
        help="activation-statistics kernel on CPU (default auto: fused where it builds)",
    )
    parser.add_argument(
        "--aa",
        action="store_true",
        help="add a second plain side (A/A): the noise floor of the ratios",
    )
    parser.add_argument("--no-naive", action="store_true", help="skip the naive-hooks side")
    parser.add_argument(
        "--hist",
        action="store_true",
        help="add a side with activation_hist + grad_hist on top of the netviz side's probes",
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="interleaved rounds (default 12; 2 with --quick)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rounds, per_round, warmup = (2, 3, 1) if args.quick else (12, 6, 1)
    rounds = args.rounds or rounds
    sides = ("plain", *(("plain_again",) if args.aa else ()), "netviz")
    sides += ("hist",) if args.hist else ()
    sides += () if args.no_naive else ("naive",)
    fused = Scratch(kernel=args.kernel).fused() is not None
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, every={args.every}, "
        f"kernel={args.kernel} ({'fused' if fused else 'eager'}), one model per workload, "
        f"{rounds} rounds x {-(-per_round // args.every) * args.every} steps per side, interleaved"
    )
    others = [k for k in sides if k != "plain"]
    print(
        f"{'workload':12s} {'size':9s} {'width':>5s} {'plain ms':>9s}"
        + "".join(f" {k + ' ms':>15s} {'ratio':>6s}" for k in others)
        + (f" {'hist/netviz':>11s}" if args.hist else "")
        + " | us/module: forward close flush (netviz's host time per hooked module"
        " per recorded step)"
    )
    for name in args.only or list(WORKLOADS):
        for size in ["standard"] if name in FIXED else args.size:
            med = run(name, size, rounds, per_round, warmup, args.every, args.kernel, sides)
            width = FIXED[name][1] if name in FIXED else WORKLOADS[name][1][size]
            base = med["plain"]
            print(
                f"{name:12s} {size:9s} {width:5d} {base * 1e3:9.2f}"
                + "".join(f" {med[k] * 1e3:15.2f} {med[k] / base:6.3f}" for k in others)
                + (f" {med['hist'] / med['netviz']:11.3f}" if args.hist else "")
                + f" | {med['host_forward'] * 1e6:6.1f} {med['host_close'] * 1e6:6.1f}"
                f" {med['host_flush'] * 1e6:6.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
