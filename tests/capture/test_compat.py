"""Every private PyTorch internal of ``netviz._compat`` against the installed PyTorch.

These fail loudly when an internal moves, instead of a hook silently
misbehaving in a user's run.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from netviz import _compat


def test_in_backward_is_true_only_inside_the_autograd_engine():
    seen = []
    lin = nn.Linear(3, 3)
    lin.register_forward_hook(lambda *a: seen.append(_compat.in_backward()))
    x = torch.randn(2, 3, requires_grad=True)
    y = checkpoint(lin, x, use_reentrant=True)  # forward: outside backward
    y.sum().backward()  # recomputation: inside backward
    assert seen == [False, True]
    assert not _compat.in_backward()


def test_grad_scaler_internals():
    net = nn.Linear(3, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=8.0)
    scaler.scale(net(torch.ones(2, 3)).sum()).backward()
    assert float(_compat.grad_scaler_scale(scaler)) == 8.0
    scaler.unscale_(opt)
    assert _compat.grad_scaler_stage_unscaled(scaler, opt)
    scaler.step(opt)
    assert not _compat.grad_scaler_stage_unscaled(scaler, opt)
    assert _compat.grad_scaler_found_inf(scaler, opt).tolist() == [0.0]
    scaler.update()
    net.weight.grad.fill_(float("inf"))
    scaler.step(opt)
    assert _compat.grad_scaler_found_inf(scaler, opt).tolist() == [1.0]
    disabled = torch.amp.GradScaler("cpu", enabled=False)
    assert _compat.grad_scaler_scale(disabled) is None


def test_optimizer_unscales_itself_marks_fused_optimizers():
    p = [nn.Parameter(torch.zeros(2))]
    assert _compat.optimizer_unscales_itself(torch.optim.Adam(p, fused=True))
    assert not _compat.optimizer_unscales_itself(torch.optim.Adam(p))


def test_own_parameters_equals_parameters_recurse_false():
    mha = nn.MultiheadAttention(8, 2)
    assert _compat.own_parameters(mha) == list(mha.parameters(recurse=False))
    lin = nn.Linear(2, 2, bias=False)
    assert _compat.own_parameters(lin) == [lin.weight]
