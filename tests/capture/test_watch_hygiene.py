"""Hooks, references and host synchronisation: nothing left behind, nothing synced."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
from torch import nn

import netviz


def hook_count(model: nn.Module) -> int:
    n = 0
    for m in model.modules():
        n += len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        n += len(getattr(m, "_backward_pre_hooks", {}))
    for p in model.parameters():
        n += len(p._backward_hooks or {}) if hasattr(p, "_backward_hooks") else 0
    return n


def make_net() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(inplace=True), nn.Linear(8, 2))


ALL = ["activation_stats", "grad_norm", "grad_stats", "weight_stats"]


def test_detach_removes_every_hook_and_is_idempotent():
    net = make_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    assert hook_count(net) == 0
    mon = netviz.watch(net, probes=ALL, optimizer=opt)
    assert hook_count(net) > 0 and len(opt._optimizer_step_post_hooks) == 1
    mon.detach()
    mon.detach()
    assert hook_count(net) == 0
    assert len(opt._optimizer_step_post_hooks) == 0
    assert not mon.attached


def test_exception_inside_with_block_detaches_and_keeps_records():
    net = make_net()
    with pytest.raises(RuntimeError, match="boom"), netviz.watch(net) as mon:
        net(torch.randn(2, 4))
        raise RuntimeError("boom")
    assert hook_count(net) == 0
    # the open step's values were flushed, not lost
    assert set(mon.to_pandas().probe) == {"activation_stats"}


def test_failed_watch_leaves_nothing_attached():
    class Broken(netviz.Probe):
        name = "broken"
        needs_forward = True

        def setup(self, ctx):
            raise RuntimeError("setup failed")

    net = make_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(RuntimeError, match="setup failed"):
        netviz.watch(net, probes=["activation_stats", Broken()], optimizer=opt)
    assert hook_count(net) == 0
    assert len(opt._optimizer_step_post_hooks) == 0


def test_model_is_garbage_collected_after_del():
    net = make_net()
    ref = weakref.ref(net)
    with netviz.watch(net, probes=ALL) as mon:
        net(torch.randn(2, 4)).sum().backward()
        mon.step()
    del net
    assert ref() is None  # freed by reference counting: no cycle through hooks
    assert len(mon.to_pandas()) > 0


def test_monitor_dropped_while_attached_removes_its_hooks():
    net = make_net()
    mon = netviz.watch(net, optimizer=torch.optim.SGD(net.parameters(), lr=0.1))
    del mon  # no reference cycle: freed at once, its finalizer removes the hooks
    assert hook_count(net) == 0


def test_monitor_does_not_keep_model_alive_while_attached_after_del_of_both():
    net = make_net()
    ref = weakref.ref(net)
    mon = netviz.watch(net)
    del net, mon
    gc.collect()
    assert ref() is None


def test_memory_stays_flat_over_many_steps():
    net = make_net()
    with netviz.watch(net, probes=ALL) as mon:
        for _ in range(300):
            net(torch.randn(2, 4)).sum().backward()
            mon.step()
            # nothing from closed steps is held on the device side
            assert mon._buffer.empty and mon._buffer.pending <= 1
    df = mon.to_pandas()
    per_step = df.groupby("step").size()
    # step 0 has no update_ratio yet; every later step has the same rows
    assert per_step.iloc[1:].nunique() == 1 and len(per_step) == 300
    assert per_step.iloc[0] == per_step.iloc[1] - 2


def test_no_host_synchronisation_during_forward_and_backward(scalar_counter):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(5, 1, 16, dropout=0.0, batch_first=True)
    net = nn.Sequential(nn.Conv1d(5, 5, 3, padding=1), nn.ReLU(inplace=True))
    with netviz.watch(net, probes=ALL) as mon, netviz.watch(layer, probes=ALL) as mon2:
        x = torch.randn(2, 5, 8)
        counter = scalar_counter
        with counter:
            out = layer(net(x).transpose(1, 2))
            out.square().mean().backward()
        assert counter.ops > 50  # the mode really saw the probed computation
        assert counter.count == 0
        mon.step()
        mon2.step()
    assert len(mon.to_pandas()) and len(mon2.to_pandas())


def test_step_flush_is_one_transfer(monkeypatch):
    """All statistics of a step reach the host through one device->host copy."""
    import netviz.capture.step_buffer as monitor_module

    calls = []
    real = monitor_module._to_host

    def counting(buffer):
        calls.append(tuple(buffer.shape))
        return real(buffer)

    monkeypatch.setattr(monitor_module, "_to_host", counting)
    net = make_net()
    with netviz.watch(net, probes=ALL) as mon:
        for _ in range(3):
            net(torch.randn(3, 4)).sum().backward()
            mon.step()
    assert len(calls) == 3  # one per recorded step, whatever the number of modules
    assert all(len(shape) == 1 for shape in calls)


def test_per_step_tensor_hooks_do_not_pile_up():
    rnn = nn.RNN(3, 4)
    with netviz.watch(rnn, probes=["timestep_grad", "activation_stats"]) as mon:
        counts = []
        for _ in range(5):
            out, _ = rnn(torch.randn(6, 2, 3))
            out[-1].sum().backward()
            mon.step()
            counts.append(len(mon._handles))
    assert len(set(counts)) == 1  # the same number of handles after every step
    assert sorted(mon.to_pandas().query("probe == 'timestep_grad'").step.unique().tolist()) == [
        0,
        1,
        2,
        3,
        4,
    ]
