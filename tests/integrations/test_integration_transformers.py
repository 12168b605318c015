"""NetvizCallback in a real Hugging Face Trainer: a tiny GPT-2 from a config (CPU, offline)."""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import netviz

pytestmark = [pytest.mark.integration, pytest.mark.slow]

pytest.importorskip("transformers")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "integrations"))
import hf_trainer_example  # noqa: E402
from _integration_helpers import wandb_history  # noqa: E402

from netviz.integrations.transformers import NetvizCallback  # noqa: E402


@pytest.fixture(scope="module")
def clipped(tmp_path_factory):
    """All modules, gradient accumulation 2, clipping at 0.1 (active: the norms are ~0.7)."""
    out = tmp_path_factory.mktemp("hf")
    trainer, callback = hf_trainer_example.main(
        str(out),
        max_steps=3,
        accumulate=2,
        report_to="tensorboard",
        modules=None,
        max_grad_norm=0.1,
    )
    return trainer, callback, out


def test_accelerated_optimizer_is_unwrapped_and_steps_line_up(clipped):
    trainer, callback, _ = clipped
    assert type(trainer.optimizer).__name__ == "AcceleratedOptimizer"  # what callbacks get
    records = callback.monitor.to_pandas()
    assert sorted(records.step.unique()) == [0, 1, 2]  # HF global_step 1, 2, 3
    assert trainer.state.global_step == 3
    acts = records[
        (records.probe == "activation_stats") & (records.module == "transformer.h.0.mlp.c_fc")
    ]
    assert acts.groupby("step")["micro"].nunique().tolist() == [2, 2, 2]  # 2 micro-batches


def test_trainer_grad_norm_is_pre_clip_and_netviz_is_post_clip(clipped):
    trainer, callback, _ = clipped
    records = callback.monitor.to_pandas()
    grads = records[records.probe == "grad_norm"]
    totals = grads.groupby("step").value.apply(lambda v: math.sqrt((v**2).sum()))
    logged = [h["grad_norm"] for h in trainer.state.log_history if "grad_norm" in h]
    assert len(logged) == 3
    for step, hf_norm in enumerate(logged):
        assert hf_norm > 0.1  # the Trainer logs the norm before clipping
        # netviz reads after the step: the clipped gradients, total norm = max_grad_norm
        assert totals[step] == pytest.approx(0.1, rel=1e-4)


def test_tensorboard_tags_sit_next_to_the_trainers_at_global_step_k_plus_1(clipped):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, callback, out = clipped
    (run_dir,) = [p for p in (out / "runs").iterdir() if p.is_dir()]
    assert not [p for p in run_dir.iterdir() if p.is_dir()]  # one run, no per-key folders
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert "train/loss" in tags
    loss_steps = [e.step for e in acc.Scalars("train/loss")]
    events = acc.Scalars("netviz/grad_norm.l2/transformer.h.0.mlp.c_fc")
    assert [e.step for e in events] == loss_steps == [1, 2, 3]
    records = callback.monitor.to_pandas()
    expected = records[
        (records.probe == "grad_norm") & (records.module == "transformer.h.0.mlp.c_fc")
    ].sort_values("step")
    np.testing.assert_allclose(
        [e.value for e in events], expected.value.to_numpy(np.float32), rtol=1e-6
    )


def test_records_are_saved_in_output_dir(clipped):
    _, callback, out = clipped
    assert Path(callback.saved_to) == out / "netviz.parquet"
    pd.testing.assert_frame_equal(netviz.load(callback.saved_to), callback.monitor.to_pandas())


def test_fsdp1_is_refused_and_every_follows_logging_steps():
    args = types.SimpleNamespace(fsdp="full_shard", fsdp_config={"version": 1}, deepspeed=None)
    state = types.SimpleNamespace(global_step=0, is_world_process_zero=True, logging_steps=None)
    with pytest.raises(ValueError, match="version"):
        NetvizCallback().on_train_begin(args, state, None, model=object(), optimizer=object())
    args = types.SimpleNamespace(fsdp="", fsdp_config={}, deepspeed=None, logging_steps=0)
    with pytest.raises(ValueError, match="logging_steps"):
        NetvizCallback().on_train_begin(args, state, None, model=object(), optimizer=object())


def test_mlflow_run_of_the_trainer_gets_netviz_steps_at_k_plus_1(tmp_path, monkeypatch):
    import mlflow
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file:{tmp_path / 'mlruns'}")
    mlflow.set_tracking_uri(f"file:{tmp_path / 'mlruns'}")
    try:
        _, callback = hf_trainer_example.main(
            str(tmp_path / "out"), max_steps=2, accumulate=1, report_to="mlflow"
        )
        (run,) = MlflowClient().search_runs(
            [e.experiment_id for e in MlflowClient().search_experiments()]
        )
    finally:
        if mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri("")
    client = MlflowClient(f"file:{tmp_path / 'mlruns'}")
    key = "netviz/grad_norm.l2/transformer.h.0.mlp.c_fc"
    history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
    records = callback.monitor.to_pandas()
    expected = records[(records.probe == "grad_norm") & (records.module == key.rsplit("/", 1)[1])]
    assert history == [(s + 1, v) for s, v in zip(expected.step, expected.value)]
    loss_steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
    assert sorted(loss_steps) == [1, 2]  # the Trainer's own metric, same x


def test_wandb_run_of_the_trainer_gets_netviz_on_train_global_step(tmp_path, monkeypatch):
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_PROJECT", "netviz-test")
    # wandb reads WANDB_DIR once per process (its setup singleton): a wandb run made
    # earlier in this process would send this one to that run's directory.
    wandb.teardown()
    try:
        _, callback = hf_trainer_example.main(
            str(tmp_path / "out"), max_steps=2, accumulate=1, report_to="wandb"
        )
    finally:
        if wandb.run is not None:
            wandb.run.finish()
    history = wandb_history(tmp_path / "wandb")
    if history is None:
        pytest.skip("wandb leet inspect unavailable")
    key = "netviz/grad_norm.l2/transformer.h.0.mlp.c_fc"
    mine = [h for h in history if key in h]
    records = callback.monitor.to_pandas()
    expected = records[(records.probe == "grad_norm") & (records.module == key.rsplit("/", 1)[1])]
    assert [(h["train/global_step"], h[key]) for h in mine] == [
        (s + 1, pytest.approx(v, rel=1e-6)) for s, v in zip(expected.step, expected.value)
    ]
    assert sorted(h["train/global_step"] for h in history if "train/loss" in h) == [1, 2]


def test_keep_false_without_a_sink_is_refused():
    args = types.SimpleNamespace(
        fsdp="", fsdp_config={}, deepspeed=None, logging_steps=1, report_to=[]
    )
    state = types.SimpleNamespace(global_step=0, is_world_process_zero=True, logging_steps=1)
    with pytest.raises(ValueError, match="needs a sink"):
        NetvizCallback(keep=False).on_train_begin(
            args, state, None, model=object(), optimizer=object()
        )
