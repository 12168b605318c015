"""The record model of ``docs/watch.md`` ("What a step is"), rule by rule.

References are independent: statistics of hooked outputs computed here in
float64, gradients read from ``.grad``, and runs of the same model without the
feature under test (checkpointing, a failed forward).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

import netviz
from netviz.errors import NothingRecordedWarning

KEY = ["step", "phase", "micro", "module", "call", "probe", "stat"]


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)
    )


def ref_mean(t: torch.Tensor) -> float:
    return float(t.detach().double().mean())


def act(df: pd.DataFrame, stat: str = "mean") -> pd.DataFrame:
    return df[(df.probe == "activation_stats") & (df.stat == stat)]


# ------------------------------------------------------------------- phases
def test_validation_between_steps_is_eval_of_the_running_step():
    net = mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    xs = [torch.randn(8, 6) for _ in range(3)]
    val = torch.randn(5, 6) * 3
    outs: list[tuple[str, float]] = []  # independent reference: first layer's output mean
    net[0].register_forward_hook(
        lambda m, a, o: outs.append(("train" if torch.is_grad_enabled() else "eval", ref_mean(o)))
    )
    with netviz.watch(net, optimizer=opt) as mon:
        for x in xs:
            opt.zero_grad()
            net(x).pow(2).mean().backward()
            opt.step()
            with torch.no_grad():  # validation after every step
                net(val)
    df = mon.to_pandas()
    first = act(df)[act(df).module == "0"].sort_values(["step", "phase"])
    # steps 0..2 train; eval rows at steps 1, 2 (ran during them) and 3 (after the last step)
    got = [(int(r.step), r.phase, r.value) for r in first.itertuples()]
    train = [v for p, v in outs if p == "train"]
    evals = [v for p, v in outs if p == "eval"]
    assert [(s, p) for s, p, _ in got] == [
        (0, "train"),
        (1, "eval"),
        (1, "train"),
        (2, "eval"),
        (2, "train"),
        (3, "eval"),
    ]
    np.testing.assert_allclose([v for _, p, v in got if p == "train"], train, rtol=1e-6)
    np.testing.assert_allclose([v for _, p, v in got if p == "eval"], evals, rtol=1e-6)
    # the trailing validation-only step is not a training step: no gradient rows at step 3
    assert set(df[df.step == 3].phase) == {"eval"}
    assert df[df.probe == "grad_norm"].step.max() == 2
    assert (df[df.phase == "eval"].micro == 0).all()


def test_eval_false_ignores_no_grad_forwards():
    net = mlp()
    with netviz.watch(net, eval=False) as mon:
        with torch.no_grad():
            net(torch.randn(4, 6))
        net(torch.randn(4, 6)).sum().backward()
        mon.step()
    df = mon.to_pandas()
    assert set(df.phase) == {"train"} and len(act(df)) == 5


def test_inference_mode_is_eval():
    net = mlp()
    with netviz.watch(net, probes="activation_stats") as mon:
        with torch.inference_mode():
            net(torch.randn(4, 6))
        mon.step()
    assert set(mon.to_pandas().phase) == {"eval"}


# ---------------------------------------------------------- micro and call
def test_accumulation_micro_batches_and_one_gradient_per_step():
    net = mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    xs = [torch.randn(4, 6) for _ in range(6)]
    means, norms = [], []
    net[2].register_forward_hook(lambda m, a, o: means.append(ref_mean(o)))
    with netviz.watch(net, optimizer=opt) as mon:
        for k, x in enumerate(xs):
            net(x).pow(2).mean().div(3).backward()
            if k % 3 == 2:
                norms.append(
                    float(
                        net[2].weight.grad.double().square().sum()
                        + net[2].bias.grad.double().square().sum()
                    )
                    ** 0.5
                )
                opt.step()
                opt.zero_grad()
    df = mon.to_pandas()
    rows = act(df)[act(df).module == "2"].sort_values(["step", "micro"])
    assert rows[["step", "micro", "call"]].values.tolist() == [
        [s, m, 0] for s in (0, 1) for m in (0, 1, 2)
    ]
    np.testing.assert_allclose(rows.value, means, rtol=1e-6)
    g = df[(df.probe == "grad_norm") & (df.module == "2")].sort_values("step")
    assert g.micro.tolist() == [-1, -1] and g.call.tolist() == [0, 0]
    np.testing.assert_allclose(g.value, norms, rtol=1e-6)


class Reuse(nn.Module):
    """One layer applied three times in one forward (weight sharing)."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(4, 8)
        self.shared = nn.Linear(8, 8)

    def forward(self, x):
        h = self.inp(x)
        for _ in range(3):
            h = torch.tanh(self.shared(h))
        return h


def test_reuse_is_call_and_micro_batches_are_micro():
    torch.manual_seed(1)
    net = Reuse()
    outs = []
    net.shared.register_forward_hook(lambda m, a, o: outs.append(ref_mean(o)))
    with netviz.watch(net, probes="activation_stats") as mon:
        for _ in range(2):  # two micro-batches, each reusing `shared` three times
            net(torch.randn(5, 4)).sum().backward()
        mon.step()
    rows = act(mon.to_pandas()).query("module == 'shared'").sort_values(["micro", "call"])
    assert rows[["micro", "call"]].values.tolist() == [[m, c] for m in (0, 1) for c in (0, 1, 2)]
    np.testing.assert_allclose(rows.value, outs, rtol=1e-6)


# --------------------------------------------------------------- order
class Backwards(nn.Module):
    """Modules defined in the opposite order of their execution."""

    def __init__(self):
        super().__init__()
        self.last = nn.Linear(8, 2)
        self.middle = nn.Linear(8, 8)
        self.first = nn.Linear(4, 8)

    def forward(self, x):
        return self.last(torch.relu(self.middle(torch.relu(self.first(x)))))


def test_order_is_execution_order_for_every_probe_and_survives_save_load(tmp_path):
    net = Backwards()
    with netviz.watch(net, probes=["activation_stats", "grad_norm", "weight_stats"]) as mon:
        net(torch.randn(3, 4)).sum().backward()
        mon.step()
    df = mon.to_pandas()
    orders = df.groupby("module").order.unique().map(lambda v: v.tolist()).to_dict()
    assert orders == {"first": [0], "middle": [1], "last": [2]}
    df2 = netviz.load(mon.save(tmp_path / "run.parquet"))
    pd.testing.assert_frame_equal(df2, df)
    shuffled = df.sample(frac=1.0, random_state=3)
    assert shuffled.groupby("module").order.first().to_dict() == {
        "first": 0,
        "last": 2,
        "middle": 1,
    }


def test_unused_module_comes_after_called_ones():
    net = Backwards()
    net.spare = nn.Linear(2, 2)  # never called
    with netviz.watch(net, probes=["grad_norm", "weight_stats"]) as mon:
        net(torch.randn(3, 4)).sum().backward()
        mon.step()
    df = mon.to_pandas()
    got = df.groupby("module").order.first().sort_values()
    assert got.index.tolist() == ["first", "middle", "last", "spare"]


def test_old_tables_get_defaults():
    old = pd.DataFrame(
        {
            "step": [0, 0, 0],
            "module": ["b", "a", "b"],
            "call": [0, 0, 1],
            "probe": "p",
            "stat": "x",
            "value": [1.0, 2.0, 3.0],
        }
    )
    df = netviz.records.validate_frame(old)
    assert list(df.columns) == list(netviz.records.COLUMNS)
    assert df.order.tolist() == [0, 1, 0] and set(df.phase) == {"train"}
    assert not df.skipped.any() and (df.micro == 0).all()
    with pytest.raises(ValueError, match="column 'phase' has values"):
        netviz.records.validate_frame(df.assign(phase="test"))


# ------------------------------------------------------- recomputation
class Blocks(nn.Module):
    def __init__(self, reentrant: bool | None):
        super().__init__()
        torch.manual_seed(2)
        self.reentrant = reentrant
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(8, 8), nn.GELU(), nn.Linear(8, 8)) for _ in range(3)
        )
        self.head = nn.Linear(8, 1)
        self.inp = nn.Linear(8, 8)  # so that the blocks' inputs require grad (reentrant mode)

    def forward(self, x):
        x = self.inp(x)
        for b in self.blocks:
            if self.reentrant is None:
                x = x + b(x)
            else:
                x = x + checkpoint(b, x, use_reentrant=self.reentrant)
        return self.head(x)


def _records(net, steps=2, **kw):
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    torch.manual_seed(5)
    xs = [torch.randn(4, 8) for _ in range(steps)]
    with netviz.watch(net, optimizer=opt, **kw) as mon:
        for x in xs:
            opt.zero_grad()
            net(x).pow(2).mean().backward()
            opt.step()
    return mon.to_pandas().sort_values(KEY).reset_index(drop=True)


@pytest.mark.parametrize("reentrant", [True, False])
def test_checkpointing_recomputation_adds_no_rows(reentrant):
    plain = _records(Blocks(None), probes=["activation_stats", "grad_norm"])
    ckpt = _records(Blocks(reentrant), probes=["activation_stats", "grad_norm"])
    assert (ckpt.call == 0).all() and set(ckpt.phase) == {"train"}
    pd.testing.assert_frame_equal(ckpt, plain, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_hugging_face_gradient_checkpointing_gives_the_same_records():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )

    def run(gc: bool) -> pd.DataFrame:
        torch.manual_seed(0)
        model = transformers.BertModel(cfg)
        if gc:
            model.gradient_checkpointing_enable()
        model.train()
        ids = torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(1))
        with netviz.watch(model, probes=["activation_stats", "grad_norm"]) as mon:
            model(input_ids=ids).last_hidden_state.pow(2).mean().backward()
            mon.step()
        return mon.to_pandas().sort_values(KEY).reset_index(drop=True)

    plain, ckpt = run(False), run(True)
    assert len(plain) > 100 and (ckpt.call == 0).all()
    pd.testing.assert_frame_equal(ckpt, plain, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------- failed forwards
class Flaky(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.a = nn.Linear(4, 8)
        self.b = nn.Linear(8, 2)
        self.fail = False

    def forward(self, x):
        h = self.a(x)
        if self.fail:
            raise RuntimeError("out of memory (simulated)")
        return self.b(h)


def test_a_forward_that_raises_contributes_nothing():
    x = torch.randn(3, 4)

    def run(fail_first: bool) -> pd.DataFrame:
        net = Flaky()
        with netviz.watch(net) as mon:
            if fail_first:
                net.fail = True
                with pytest.raises(RuntimeError, match="simulated"):
                    net(x * 100)  # a bad batch, partly through the model
                net.fail = False
            net(x).sum().backward()
            mon.step()
        return mon.to_pandas()

    clean, retried = run(False), run(True)
    pd.testing.assert_frame_equal(retried, clean)
    assert (retried.micro.isin([0, -1])).all()


# ------------------------------------------------------------ GradScaler
@pytest.mark.parametrize("fused", [False, True])
def test_grad_scaler_skipped_step_is_recorded_as_skipped_with_unscaled_gradients(fused):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=fused)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    want = []  # (found_inf, ||unscaled grad of layer 2||, nonfinite count of layer 0)
    with netviz.watch(net, probes=["grad_norm", "grad_stats"], scaler=scaler) as mon:
        for i in range(4):
            opt.zero_grad()
            loss = net(torch.randn(8, 4)).pow(2).mean()
            scaler.scale(loss).backward()
            if i == 2:
                net[0].weight.grad[0, 0] = float("inf")  # an overflow in layer 0
            scale = scaler.get_scale()
            scaled = [p.grad.detach().double().clone() / scale for p in net[2].parameters()]
            scaler.step(opt)
            want.append((i == 2, float(sum(g.square().sum() for g in scaled)) ** 0.5))
            scaler.update()
    df = mon.to_pandas()
    steps = df.groupby("step").skipped.first()
    assert steps.tolist() == [False, False, True, False]
    g2 = df.query("probe == 'grad_norm' and module == '2'").sort_values("step")
    np.testing.assert_allclose(g2.value, [w for _, w in want], rtol=1e-6)
    nf = df.query("probe == 'grad_stats' and module == '0' and stat == 'nonfinite_frac'")
    assert nf.set_index("step").value.gt(0).tolist() == [False, False, True, False]
    assert "3" not in set(df.module)  # sanity: names of the Sequential
    assert not scaler.__dict__.get("step")  # the scaler is left as it was


def test_scaler_disabled_still_closes_steps():
    net = mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    with netviz.watch(net, scaler=scaler) as mon:
        for _ in range(2):
            opt.zero_grad()
            scaler.scale(net(torch.randn(2, 6)).sum()).backward()
            scaler.step(opt)
            scaler.update()
    df = mon.to_pandas()
    assert sorted(df.step.unique()) == [0, 1] and not df.skipped.any()


# ------------------------------------------------------- loud, not silent
def test_detached_monitor_cannot_be_reused():
    net = mlp()
    mon = netviz.watch(net)
    with mon:
        net(torch.randn(2, 6)).sum().backward()
        mon.step()
    with pytest.raises(RuntimeError, match="detached and cannot be used again"), mon:
        pass
    with pytest.raises(RuntimeError, match=r"step\(\) on a detached monitor"):
        mon.step()


def test_forgetting_to_close_steps_warns():
    net = mlp()
    with (
        pytest.warns(NothingRecordedWarning, match="5 training forwards ran in step 0"),
        netviz.watch(net) as mon,
    ):
        for _ in range(5):
            net(torch.randn(2, 6)).sum().backward()
    df = mon.to_pandas()
    assert set(df.step) == {0} and sorted(act(df).micro.unique()) == [0, 1, 2, 3, 4]


def test_probe_that_finds_nothing_warns_once():
    net = mlp()
    with (
        pytest.warns(NothingRecordedWarning, match="probe 'attention' recorded nothing"),
        netviz.watch(net, probes=["attention"]) as mon,
    ):
        for _ in range(2):
            net(torch.randn(2, 6)).sum().backward()
            mon.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with netviz.watch(net, probes=["activation_stats"]) as mon2:
            net(torch.randn(2, 6)).sum().backward()
            mon2.step()


@pytest.fixture
def fresh_dynamo():
    """Compiled code is cached per code object for the whole process: start and end clean."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_compiled_after_first_run_warns_with_the_remedy(fresh_dynamo):
    net = mlp()
    compiled = torch.compile(net, backend="eager")
    compiled(torch.randn(2, 6)).sum().backward()
    with (
        pytest.warns(NothingRecordedWarning, match=r"ran before watch was attached.*_dynamo"),
        netviz.watch(compiled, probes=["activation_stats"]) as mon,
    ):
        compiled(torch.randn(2, 6)).sum().backward()
        mon.step()
    assert mon.to_pandas().empty


def test_compiled_before_first_run_records_like_eager(fresh_dynamo):
    torch.manual_seed(0)
    x = torch.randn(3, 6)
    eager_net, comp_net = mlp(), mlp()
    comp = torch.compile(comp_net, backend="eager")
    frames = []
    for model in (eager_net, comp):
        with netviz.watch(model) as mon:
            model(x).sum().backward()
            mon.step()
        frames.append(mon.to_pandas().sort_values(KEY).reset_index(drop=True))
    pd.testing.assert_frame_equal(frames[1], frames[0], rtol=1e-6, atol=1e-7)


def test_torchscript_is_refused_with_the_remedy():
    traced = torch.jit.trace(mlp(), torch.randn(2, 6))
    with pytest.raises(TypeError, match=r"TorchScript module.*Watch the eager model"):
        netviz.watch(traced)


def test_accelerate_optimizer_is_unwrapped():
    accelerate = pytest.importorskip("accelerate")
    net = mlp()
    acc = accelerate.Accelerator(cpu=True)
    model, opt = acc.prepare(net, torch.optim.SGD(net.parameters(), lr=0.1))
    assert (
        not isinstance(type(opt), type(torch.optim.SGD))
        or type(opt).__name__ == "AcceleratedOptimizer"
    )
    with netviz.watch(model, optimizer=opt) as mon:
        for _ in range(3):
            opt.zero_grad()
            acc.backward(model(torch.randn(2, 6)).sum())
            opt.step()
    assert sorted(mon.to_pandas().step.unique()) == [0, 1, 2]


# ------------------------------------------------ process-wide patches
class SdpaModel(nn.Module):
    def __init__(self, fail: bool = False):
        super().__init__()
        self.proj = nn.Linear(8, 24)
        self.fail = fail

    def forward(self, x):
        q, k, v = self.proj(x).chunk(3, dim=-1)
        out = nn.functional.scaled_dot_product_attention(q, k, v)
        if self.fail:
            raise ValueError("bad batch")
        return out


def test_sdpa_patch_is_restored_when_the_forward_raises():
    builtin = torch._C._nn.scaled_dot_product_attention
    net = SdpaModel(fail=True)
    with netviz.watch(net, probes=["attention"]) as mon:
        with pytest.raises(ValueError, match="bad batch"):
            net(torch.randn(2, 5, 8))
        assert nn.functional.scaled_dot_product_attention is builtin
        net.fail = False
        net(torch.randn(2, 5, 8)).sum().backward()
        mon.step()
    assert list(netviz.capture.probes.snapshots.snapshot_tensors(mon)) == [""]


def test_other_models_are_not_patched_while_attached():
    builtin = torch._C._nn.scaled_dot_product_attention
    watched, other = SdpaModel(), SdpaModel()
    seen = []
    other.proj.register_forward_hook(
        lambda *a: seen.append(nn.functional.scaled_dot_product_attention is builtin)
    )
    with netviz.watch(watched, probes=["attention"]):
        other(torch.randn(1, 3, 8))
    assert seen == [True]


class EagerAttention(nn.Module):
    """Hand-written softmax attention, as Hugging Face's "eager" implementation."""

    def __init__(self):
        super().__init__()
        self.attention = nn.Linear(8, 24)

    def forward(self, x):
        q, k, v = self.attention(x).chunk(3, dim=-1)
        return torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, -1) @ v


def test_capture_attention_warns_when_it_cannot_see_the_attention():
    with pytest.warns(NothingRecordedWarning, match="record_attention"):
        assert netviz.capture_attention(EagerAttention(), torch.randn(1, 4, 8)) == {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a model without attention: nothing to say
        assert netviz.capture_attention(mlp(), torch.randn(1, 6)) == {}


def test_snapshots_of_a_step_come_from_its_training_forward():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    train_x, val_x = torch.randn(2, 1, 5, 5), torch.randn(2, 1, 5, 5) + 10
    with netviz.watch(net, probes=["feature_maps"], optimizer=opt) as mon:
        for _ in range(2):
            with torch.no_grad():
                net(val_x)  # validation first: it runs during the step, before training
            opt.zero_grad()
            net(train_x).sum().backward()
            net(train_x * 0).sum().backward()  # a second micro-batch
            opt.step()
    want = net[0](train_x)[:1].detach()
    for step in (0, 1):
        got = mon.snapshots()[step][("feature_maps", "0", 0)]
        torch.testing.assert_close(got, want)
