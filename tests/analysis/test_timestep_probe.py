"""The ``timestep_grad`` probe against step-by-step references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import netviz


def _loss(out: torch.Tensor, h_n: torch.Tensor) -> torch.Tensor:
    # uses every output step and the final state, so both gradient paths matter
    return (out**3).sum() + (h_n**2).sum()


def _recorded(mon) -> np.ndarray:
    df = mon.to_pandas()
    assert set(df.probe) == {"timestep_grad"} and set(df.stat) == {"l2"}
    return df.sort_values("call").value.to_numpy()


def _stepwise_reference(m: nn.RNNBase, x: torch.Tensor) -> np.ndarray:
    """Total ||dL/dh_t|| from calling the module one step at a time.

    With one step per call, the last layer's ``h_t`` leaves the module twice:
    as the output ``o_t`` (direct path) and inside the state (recurrent path).
    The total gradient is the sum of the two.
    """
    state, outs, hs = None, [], []
    for t in range(x.shape[0]):
        o, state = m(x[t : t + 1], state)
        h = state[0] if isinstance(state, tuple) else state
        o.retain_grad()
        h.retain_grad()
        outs.append(o)
        hs.append(h)
    out = torch.cat(outs)
    h_n = hs[-1]
    _loss(out, h_n).backward()
    return np.array(
        [torch.linalg.vector_norm(o.grad[0] + h.grad[-1]).item() for o, h in zip(outs, hs)]
    )


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("layers", [1, 2])
def test_fused_modules_match_stepwise_reference(kind, layers):
    torch.manual_seed(1)
    m = getattr(nn, kind)(4, 5, num_layers=layers)
    x = torch.randn(6, 3, 4)
    with netviz.watch(m, probes="timestep_grad") as mon:
        out, fin = m(x)
        _loss(out, fin[0] if isinstance(fin, tuple) else fin).backward()
    got = _recorded(mon)
    m.zero_grad()
    want = _stepwise_reference(m, x)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_batch_first_matches_time_major():
    torch.manual_seed(2)
    m = nn.GRU(3, 4)
    mb = nn.GRU(3, 4, batch_first=True)
    mb.load_state_dict(m.state_dict())
    x = torch.randn(5, 2, 3)
    runs = []
    for mod, inp in ((m, x), (mb, x.transpose(0, 1))):
        with netviz.watch(mod, probes="timestep_grad") as mon:
            out, _ = mod(inp)
            # weight steps differently so that a time/batch mix-up would show
            w = torch.arange(1.0, 6.0).reshape(5, 1, 1)
            w = w if not mod.batch_first else w.transpose(0, 1)
            (out * w).pow(2).sum().backward()
        runs.append(_recorded(mon))
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-6)


def test_bidirectional_against_cells():
    torch.manual_seed(3)
    m = nn.RNN(3, 4, bidirectional=True)
    x = torch.randn(5, 2, 3)
    with netviz.watch(m, probes="timestep_grad") as mon:
        out, _ = m(x)
        (out**2).sum().backward()
    got = _recorded(mon)
    # reference: two RNNCells with the same weights, hidden states retained
    cells = []
    for sfx in ("_l0", "_l0_reverse"):
        c = nn.RNNCell(3, 4)
        c.weight_ih.data = getattr(m, "weight_ih" + sfx).data
        c.weight_hh.data = getattr(m, "weight_hh" + sfx).data
        c.bias_ih.data = getattr(m, "bias_ih" + sfx).data
        c.bias_hh.data = getattr(m, "bias_hh" + sfx).data
        cells.append(c)
    fwd, bwd = [None] * 5, [None] * 5
    h = torch.zeros(2, 4)
    for t in range(5):
        h = cells[0](x[t], h)
        h.retain_grad()
        fwd[t] = h
    h = torch.zeros(2, 4)
    for t in reversed(range(5)):
        h = cells[1](x[t], h)
        h.retain_grad()
        bwd[t] = h
    out_ref = torch.stack([torch.cat([f, b], -1) for f, b in zip(fwd, bwd)])
    torch.testing.assert_close(out_ref, out.detach())
    (out_ref**2).sum().backward()
    want = [torch.cat([f.grad, b.grad], -1).norm().item() for f, b in zip(fwd, bwd)]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_cells_record_one_row_per_call():
    torch.manual_seed(4)
    cell = nn.LSTMCell(3, 4)
    x = torch.randn(6, 2, 3)
    hs = []
    with netviz.watch(cell, probes="timestep_grad") as mon:
        state = None
        for t in range(6):
            state = cell(x[t], state)
            state[0].retain_grad()
            hs.append(state[0])
        hs[-1].sum().backward()
    df = mon.to_pandas()
    # the watched model is the cell itself: each call is one forward pass (micro-batch)
    assert sorted(df.micro) == list(range(6)) and set(df.call) == {0}
    got = df.sort_values("micro").value.to_numpy()
    np.testing.assert_allclose(got, [h.grad.norm().item() for h in hs], rtol=1e-6)


def test_only_hn_used_gives_gradient_at_every_step():
    # a classifier on h_n: output[t] receives no gradient directly, yet every
    # h_t does through the recurrence, and the replay must pick that up
    torch.manual_seed(5)
    m = nn.RNN(3, 4)
    with netviz.watch(m, probes="timestep_grad") as mon:
        _, h_n = m(torch.randn(7, 2, 3))
        h_n.sum().backward()
    got = _recorded(mon)
    assert len(got) == 7 and np.all(got > 0)


def test_spectral_radius_controls_gradient_through_time():
    def run(scale: float) -> np.ndarray:
        torch.manual_seed(6)
        m = nn.RNN(2, 16, bias=False)
        q, _ = torch.linalg.qr(torch.randn(16, 16))
        with torch.no_grad():
            m.weight_hh_l0.copy_(scale * q)
        x = 1e-3 * torch.randn(30, 4, 2)  # small inputs keep tanh in its linear range
        with netviz.watch(m, probes="timestep_grad") as mon:
            out, _ = m(x)
            out[-1].sum().backward()
        return _recorded(mon)

    small, large = run(0.5), run(1.5)
    assert small[0] / small[-1] < 1e-6  # 0.5**29 ~ 2e-9 (times tanh' <= 1)
    assert large[0] / large[-1] > 1e3


def test_packed_sequence_errors_clearly():
    m = nn.GRU(3, 4)
    x = torch.randn(5, 2, 3)
    packed = pack_padded_sequence(x, torch.tensor([5, 3]))
    with netviz.watch(m, probes="timestep_grad"), pytest.raises(ValueError, match="PackedSequence"):
        m(packed)


def test_no_grad_forward_records_nothing_and_ignores_other_modules():
    net = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    with netviz.watch(net, probes="timestep_grad") as mon:
        net(torch.randn(2, 3)).sum().backward()
    assert mon.to_pandas().empty
    m = nn.RNN(3, 4)
    with netviz.watch(m, probes="timestep_grad") as mon, torch.no_grad():
        m(torch.randn(5, 2, 3))
    assert mon.to_pandas().empty


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported:UserWarning")
@pytest.mark.parametrize(
    ("kind", "kwargs"),
    [
        ("LSTM", {"proj_size": 3, "num_layers": 2}),
        ("RNN", {"nonlinearity": "relu", "num_layers": 3}),
    ],
)
def test_projection_relu_and_deep_stacks_match_reference(kind, kwargs):
    torch.manual_seed(7)
    m = getattr(nn, kind)(4, 5, **kwargs)
    x = torch.randn(6, 3, 4)
    with netviz.watch(m, probes="timestep_grad") as mon:
        out, fin = m(x)
        _loss(out, fin[0] if isinstance(fin, tuple) else fin).backward()
    got = _recorded(mon)
    m.zero_grad()
    np.testing.assert_allclose(got, _stepwise_reference(m, x), rtol=1e-5)


def test_initial_state_and_unbatched_input():
    torch.manual_seed(8)
    m = nn.GRU(3, 4, num_layers=2)
    x = torch.randn(5, 3)  # unbatched (T, features)
    h0 = torch.randn(2, 4)
    with netviz.watch(m, probes="timestep_grad") as mon:
        out, h_n = m(x, h0)
        _loss(out, h_n).backward()
    got = _recorded(mon)
    # reference: the batched call with a batch of one gives the same norms
    mb = nn.GRU(3, 4, num_layers=2)
    mb.load_state_dict(m.state_dict())
    with netviz.watch(mb, probes="timestep_grad") as mon_b:
        out_b, h_n_b = mb(x[:, None], h0[:, None])
        _loss(out_b, h_n_b).backward()
    np.testing.assert_allclose(got, _recorded(mon_b), rtol=1e-6)


def test_probe_draws_no_random_numbers():
    m = nn.LSTM(3, 4, num_layers=3)
    x = torch.randn(5, 2, 3)
    before = torch.get_rng_state()
    with netviz.watch(m, probes="timestep_grad") as mon:
        m(x)[0].sum().backward()
    assert torch.equal(torch.get_rng_state(), before)
    assert len(mon.to_pandas()) == 5


@pytest.mark.parametrize("kind", ["LSTM", "GRUCell"])
def test_no_host_synchronisation_in_the_hooks(kind, scalar_counter):
    from netviz.capture.probes import UnitActivity

    torch.manual_seed(9)
    m = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Tanh())
    rnn = nn.LSTM(3, 4, num_layers=2, bidirectional=True) if kind == "LSTM" else nn.GRUCell(3, 4)
    x = torch.randn(5, 2, 3)
    with (
        netviz.watch(rnn, probes="timestep_grad") as mon,
        netviz.watch(m, probes=[UnitActivity()]) as mon2,
    ):
        counter = scalar_counter
        with counter:
            z = m(x)
            if kind == "LSTM":
                out = rnn(z)[0]
            else:
                h, hs = None, []
                for t in range(5):
                    h = rnn(z[t], h)
                    hs.append(h)
                out = torch.stack(hs)
            out.square().mean().backward()
        assert counter.ops > 50 and counter.count == 0
    assert len(mon.to_pandas()) == 5 and len(mon2.to_pandas()) == 2
