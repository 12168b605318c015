"""netviz in a real accelerate loop with accumulate() and the TensorBoard tracker (CPU)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.integration, pytest.mark.slow]

pytest.importorskip("accelerate")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "integrations"))
import accelerate_example  # noqa: E402


@pytest.fixture
def fresh_state():
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def test_one_netviz_step_per_synced_step_and_tracker_tags(tmp_path, fresh_state, monkeypatch):
    # reference: per-module gradient norms when the inner SGD really steps (it does not
    # change .grad, so they are the gradients netviz reads after the step)
    reference: list[dict[str, float]] = []
    real_watch = accelerate_example.nv_accelerate.watch

    def watch_and_reference(accelerator, model, opt, **kwargs):
        inner = accelerator.unwrap_model(model)

        def pre(optimizer, args, kw):
            reference.append(
                {
                    n: torch.sqrt(sum(p.grad.double().pow(2).sum() for p in m.parameters())).item()
                    for n, m in inner.named_modules()
                    if n and list(m.parameters(recurse=False))
                }
            )

        opt.optimizer.register_step_pre_hook(pre)
        return real_watch(accelerator, model, opt, **kwargs)

    monkeypatch.setattr(accelerate_example.nv_accelerate, "watch", watch_and_reference)
    _, monitor = accelerate_example.main(str(tmp_path), batches=8, accumulate=2)
    records = monitor.to_pandas()
    assert sorted(records.step.unique()) == [0, 1, 2, 3]  # 8 micro-batches / 2
    assert len(reference) == 4
    grads = records[records.probe == "grad_norm"]
    for step, expected in enumerate(reference):
        got = grads[grads.step == step].set_index("module")["value"].to_dict()
        assert got == pytest.approx(expected, rel=1e-6)
    acts = records[records.probe == "activation_stats"]
    assert set(acts.groupby(["step", "module"])["micro"].nunique()) == {2}

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "demo"), size_guidance={"scalars": 0})
    acc.Reload()
    events = acc.Scalars("netviz/grad_norm.l2/0")
    expected = grads[grads.module == "0"].sort_values("step")
    assert [e.step for e in events] == [0, 1, 2, 3]
    np.testing.assert_allclose(
        [e.value for e in events], expected.value.to_numpy(np.float32), rtol=1e-6
    )


def test_sinks_from_names_only_initialised_trackers(tmp_path, fresh_state):
    from accelerate import Accelerator

    from netviz.integrations.accelerate import sinks_from

    accelerator = Accelerator(cpu=True, log_with="tensorboard", project_dir=str(tmp_path))
    accelerator.init_trackers("x")
    (sink,) = sinks_from(accelerator)
    assert sink.writer is accelerator.get_tracker("tensorboard", unwrap=True)
    with pytest.raises(ValueError, match="not initialised"):
        sinks_from(accelerator, names=["wandb"])
    with pytest.raises(ValueError, match="aim"):
        sinks_from(accelerator, names=["aim"])
    accelerator.end_training()
