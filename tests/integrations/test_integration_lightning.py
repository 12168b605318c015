"""NetvizCallback in a real Lightning Trainer (CPU, offline)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import netviz

pytestmark = [pytest.mark.integration, pytest.mark.slow]

pl = pytest.importorskip("lightning.pytorch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "integrations"))
import lightning_example  # noqa: E402

from netviz.integrations.lightning import NetvizCallback  # noqa: E402


class GradReference(pl.Callback):
    """Per-module gradient norms just before each optimizer step (plain SGD, no clipping:
    the same gradients netviz reads after the step)."""

    def __init__(self):
        self.norms: list[dict[str, float]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.norms.append(
            {
                name: torch.sqrt(sum(p.grad.double().pow(2).sum() for p in m.parameters())).item()
                for name, m in pl_module.named_modules()
                if name and list(m.parameters(recurse=False))
            }
        )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pl")
    ref = GradReference()
    callback = lightning_example.main(str(out), max_steps=3, accumulate=2, more_callbacks=[ref])
    return callback, ref, out


def test_records_one_step_per_optimizer_step_with_two_micro_batches(run):
    callback, _, _ = run
    records = callback.monitor.to_pandas()
    assert sorted(records.step.unique()) == [0, 1, 2]
    acts = records[records.probe == "activation_stats"]
    train_rows = acts[acts.phase == "train"]
    per_step = train_rows.groupby(["step", "module"]).micro.unique()
    assert len(per_step) == 3 * 3  # 3 steps x 3 modules
    assert all(sorted(v) == [0, 1] for v in per_step)
    assert set(train_rows.call) == {0}  # no module is called twice in one forward
    grads = records[records.probe == "grad_norm"]
    assert set(grads.micro) == {-1} and set(grads.phase) == {"train"}  # step-level rows


def test_grad_norms_equal_the_gradients_the_optimizer_stepped_with(run):
    callback, ref, _ = run
    records = callback.monitor.to_pandas()
    grads = records[records.probe == "grad_norm"]
    assert len(ref.norms) == 3
    for step, expected in enumerate(ref.norms):
        got = grads[grads.step == step].set_index("module")["value"].to_dict()
        assert got.keys() == expected.keys()
        for name in expected:
            assert got[name] == pytest.approx(expected[name], rel=1e-6)


def test_validation_is_recorded_as_eval_and_sanity_check_not_at_all(run):
    callback, _, _ = run
    records = callback.monitor.to_pandas()
    evals = records[records.phase == "eval"]
    assert sorted(evals.step.unique()) == [2]  # validation ran after step 1, before step 2
    assert set(evals.probe) == {"activation_stats"}
    # the 2 validation batches of 16 (val set: 32 rows), numbered per phase
    assert sorted(evals.micro.unique()) == [0, 1]
    numel = evals[(evals.stat == "numel") & (evals.module == "net.0")].value
    assert numel.tolist() == [16 * 16, 16 * 16]
    assert not (records[records.step == 0].phase == "eval").any()  # sanity check not recorded


def test_tensorboard_logger_gets_the_tags_in_its_own_run(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    callback, _, out = run
    logdir = Path(callback.saved_to).parent
    assert logdir == out / "demo" / "version_0"
    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert "train_loss" in tags  # Lightning's own metrics, same run
    records = callback.monitor.to_pandas()
    grads = records[records.probe == "grad_norm"]
    for module in ("net.0", "net.2"):
        events = acc.Scalars(f"netviz/grad_norm.l2/{module}")
        expected = grads[grads.module == module].sort_values("step")
        assert [e.step for e in events] == expected.step.tolist() == [0, 1, 2]
        np.testing.assert_allclose(
            [e.value for e in events], expected.value.to_numpy(np.float32), rtol=1e-6
        )
    evals = records[(records.phase == "eval") & (records.stat == "mean")]
    (event,) = acc.Scalars("netviz/eval/activation_stats.mean/net.0")
    expected_eval = evals[evals.module == "net.0"].value.mean()  # over the 2 val batches
    assert (event.step, event.value) == (2, pytest.approx(expected_eval, rel=1e-6))
    assert [e.value for e in acc.Scalars("netviz/skipped")] == [0.0, 0.0, 0.0]
    assert not [p for p in logdir.iterdir() if p.is_dir()]  # no per-key runs


def test_records_are_saved_in_the_log_dir(run):
    callback, _, _ = run
    assert Path(callback.saved_to).name == "netviz.parquet"
    pd.testing.assert_frame_equal(netviz.load(callback.saved_to), callback.monitor.to_pandas())
    assert not callback.monitor.attached


def _fit(**kwargs):
    """Fit the example's model on its training data (no validation, no sanity check)."""
    trainer = pl.Trainer(
        accelerator="cpu",
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kwargs,
    )
    train, _ = lightning_example.loaders()
    trainer.fit(lightning_example.TinyRegressor(), train)
    return trainer


def _trainer(strategy):
    return types.SimpleNamespace(strategy=strategy, optimizers=[], log_every_n_steps=50)


def test_fsdp1_is_refused_with_what_to_use_instead():
    from lightning.pytorch.strategies import FSDPStrategy

    with pytest.raises(ValueError, match="ModelParallelStrategy"):
        NetvizCallback().on_fit_start(_trainer(FSDPStrategy()), None)


def test_deepspeed_warns_that_gradients_are_empty():
    strategy = type("DeepSpeedStrategy", (), {})()  # deepspeed itself is not installed here
    with pytest.warns(RuntimeWarning, match=r"\.grad empty"), pytest.raises(RuntimeError):
        NetvizCallback().on_fit_start(_trainer(strategy), None)  # then: no optimizer


def test_bad_every_is_refused():
    cb = NetvizCallback(every=0)
    trainer = types.SimpleNamespace(strategy=object(), optimizers=[object()], log_every_n_steps=50)
    with pytest.raises(ValueError, match="every"):
        cb.on_fit_start(trainer, None)


def test_any_other_logger_gets_flat_scalars_through_log_metrics(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(tmp_path, name="csv")
    callback = NetvizCallback(probes=["grad_norm"], every=1)
    _fit(max_steps=2, logger=logger, callbacks=[callback], log_every_n_steps=1)
    metrics = pd.read_csv(Path(logger.log_dir) / "metrics.csv")
    rows = metrics.dropna(subset=["netviz/grad_norm.l2/net.0"])
    records = callback.monitor.to_pandas()
    expected = records[(records.module == "net.0")].sort_values("step")
    assert rows.step.tolist() == expected.step.tolist() == [0, 1]
    np.testing.assert_allclose(rows["netviz/grad_norm.l2/net.0"], expected.value, rtol=1e-6)


def test_keep_false_streams_to_a_parquet_sink_and_saves_nothing_else(tmp_path):
    stream = netviz.sinks.Parquet(tmp_path / "stream.parquet")
    callback = NetvizCallback(probes=["grad_norm"], every=1, sinks=[stream], keep=False)
    _fit(
        max_steps=3,
        accumulate_grad_batches=2,
        logger=False,
        default_root_dir=tmp_path,
        callbacks=[callback],
    )
    assert callback.saved_to is None and not (tmp_path / "netviz.parquet").exists()
    records = netviz.load(tmp_path / "stream.parquet")
    assert sorted(records.step.unique()) == [0, 1, 2]
    assert set(records.module) == {"net.0", "net.2"}
    with pytest.raises(RuntimeError, match="keep=False"):
        callback.monitor.to_pandas()


def test_mlflow_logger_run_gets_netviz_at_lightnings_steps(tmp_path, monkeypatch):
    from lightning.pytorch.loggers import MLFlowLogger

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    logger = MLFlowLogger(experiment_name="netviz", tracking_uri=f"file:{tmp_path / 'mlruns'}")
    callback = NetvizCallback(probes=["grad_norm"], every=1, save=None)
    _fit(max_steps=3, logger=logger, callbacks=[callback], log_every_n_steps=1)
    client = logger.experiment
    history = client.get_metric_history(logger.run_id, "netviz/grad_norm.l2/net.0")
    records = callback.monitor.to_pandas()
    expected = records[records.module == "net.0"].sort_values("step")
    assert sorted((m.step, m.value) for m in history) == list(zip(expected.step, expected.value))
    loss = client.get_metric_history(logger.run_id, "train_loss")
    assert sorted(m.step for m in loss) == [0, 1, 2]  # Lightning logs step k at x = k too
