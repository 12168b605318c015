"""Every private PyTorch internal of ``netviz._compat`` against the installed PyTorch.

These fail loudly when an internal moves, instead of a hook silently
misbehaving in a user's run.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from netviz import _compat
from netviz.errors import TorchCompatError


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


# --- every private name still exists and behaves as netviz relies on ---------------------------


def test_private_names_exist_in_the_installed_torch():
    """Fails loudly (naming the internal) where a torch release moved one of them."""
    import torch.distributed.tensor.placement_types as placement_types
    import torch.utils._python_dispatch as python_dispatch

    required = {
        "torch._C._current_graph_task_id": getattr(torch._C, "_current_graph_task_id", None),
        "torch._C._nn.scaled_dot_product_attention": getattr(
            torch._C._nn, "scaled_dot_product_attention", None
        ),
        "torch._foreach_norm": getattr(torch, "_foreach_norm", None),
        "torch._foreach_sub": getattr(torch, "_foreach_sub", None),
        "torch._foreach_copy_": getattr(torch, "_foreach_copy_", None),
        "torch._is_functional_tensor": getattr(torch, "_is_functional_tensor", None),
        "torch._C._functorch.is_functorch_wrapped_tensor": getattr(
            torch._C._functorch, "is_functorch_wrapped_tensor", None
        ),
        "torch._C._functorch.get_unwrapped": getattr(torch._C._functorch, "get_unwrapped", None),
        "torch._C._DisableFuncTorch": getattr(torch._C, "_DisableFuncTorch", None),
        "torch.utils._python_dispatch._disable_current_modes": getattr(
            python_dispatch, "_disable_current_modes", None
        ),
        "placement_types._StridedShard": getattr(placement_types, "_StridedShard", None),
    }
    missing = [name for name, value in required.items() if value is None]
    assert not missing, f"moved in torch {torch.__version__}: {missing}"
    # netviz binds the real functions, not its fallbacks
    assert _compat.foreach_norm is torch._foreach_norm
    assert _compat.foreach_sub is torch._foreach_sub
    assert _compat.foreach_copy_ is torch._foreach_copy_
    assert _compat.is_functional_tensor is torch._is_functional_tensor
    assert _compat.is_functorch_wrapped_tensor is torch._C._functorch.is_functorch_wrapped_tensor
    assert _compat.SDPA_BUILTIN is torch._C._nn.scaled_dot_product_attention


def test_module_private_attributes_exist():
    m = nn.Linear(2, 2)
    for name in _compat.HOOK_DICTS:
        assert isinstance(getattr(m, name, None), dict), f"nn.Module.{name} moved"
    assert isinstance(m._parameters, dict)
    assert isinstance(nn.MultiheadAttention(4, 2)._qkv_same_embed_dim, bool)
    sgd = torch.optim.SGD(m.parameters(), lr=0.1)
    assert isinstance(torch.amp.GradScaler("cpu")._per_optimizer_states, dict)
    assert not hasattr(sgd, "_step_supports_amp_scaling") or not sgd._step_supports_amp_scaling


def test_sdpa_builtin_equals_the_public_function():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4, generator=g) for _ in range(3))
    mask = torch.rand(5, 5, generator=g) > 0.3
    mask[:, 0] = True
    for kwargs in ({}, {"is_causal": True}, {"attn_mask": mask}, {"scale": 0.7}):
        want = torch.nn.functional.scaled_dot_product_attention(q, k, v, **kwargs)
        assert torch.equal(_compat.SDPA_BUILTIN(q, k, v, **kwargs), want), kwargs


def test_sdpa_patch_sees_calls_and_restores_the_builtin():
    F = torch.nn.functional
    before = F.scaled_dot_product_attention
    seen = []
    patch = _compat.SdpaPatch(lambda args, kwargs: seen.append(kwargs))
    try:
        assert F.scaled_dot_product_attention is patch.function is not before
        q = torch.randn(1, 2, 3, 4)
        out = F.scaled_dot_product_attention(q, q, q, is_causal=True)
        assert torch.equal(out, before(q, q, q, is_causal=True))
    finally:
        patch.remove()
    assert F.scaled_dot_product_attention is before
    assert seen == [{"is_causal": True}]


def test_foreach_kernels_match_per_tensor_torch():
    a = [torch.randn(3, 4), torch.randn(5)]
    b = [torch.randn(3, 4), torch.randn(5)]
    for got, t in zip(_compat.foreach_norm(a), a):
        assert torch.allclose(got, torch.linalg.vector_norm(t))
    norms32 = _compat.foreach_norm([t.half() for t in a], dtype=torch.float32)
    assert [n.dtype for n in norms32] == [torch.float32, torch.float32]
    for got, x, y in zip(_compat.foreach_sub(a, b), a, b):
        assert torch.equal(got, x - y)
    dst = [torch.zeros(3, 4), torch.zeros(5)]
    _compat.foreach_copy_(dst, a)
    assert all(torch.equal(d, s) for d, s in zip(dst, a))


def test_mha_packed_in_proj_matches_the_parameters():
    packed = nn.MultiheadAttention(4, 2)
    separate = nn.MultiheadAttention(4, 2, kdim=3, vdim=5)
    assert _compat.mha_packed_in_proj(packed) and packed.in_proj_weight is not None
    assert not _compat.mha_packed_in_proj(separate) and separate.q_proj_weight is not None


def test_mha_packed_in_proj_falls_back_without_the_private_flag():
    packed, separate = nn.MultiheadAttention(4, 2), nn.MultiheadAttention(4, 2, kdim=3)
    for m in (packed, separate):
        del m._qkv_same_embed_dim
    assert _compat.mha_packed_in_proj(packed) and not _compat.mha_packed_in_proj(separate)


def test_module_hook_dicts_see_registered_hooks():
    m = nn.Linear(2, 2)
    h = m.register_forward_hook(lambda *a: None)
    k = m.register_forward_pre_hook(lambda *a, **kw: None, with_kwargs=True)
    tables = _compat.module_hook_dicts(m)
    assert h.id in tables["_forward_hooks"] and k.id in tables["_forward_pre_hooks"]
    assert k.id in tables["_forward_pre_hooks_with_kwargs"]
    h.remove()
    assert h.id not in tables["_forward_hooks"]


@pytest.mark.slow  # torch.compile imports torch._dynamo (about 2 s)
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compiled_original_is_the_eager_module():
    lin = nn.Linear(2, 2)
    assert _compat.compiled_original(torch.compile(lin)) is lin
    assert _compat.compiled_original(lin) is None
    from torch._dynamo.eval_frame import OptimizedModule

    class Renamed(OptimizedModule):  # as if a release stored the module under another name
        def __init__(self):
            pass

        def __getattr__(self, name):
            raise AttributeError(name)

    broken = Renamed()
    with pytest.raises(TorchCompatError, match=r"_orig_mod.* in PyTorch "):
        _compat.compiled_original(broken)


def test_functorch_wrappers_are_seen_and_unwrapped():
    seen = []

    def f(x):
        seen.append(_compat.is_functorch_wrapped_tensor(x))
        with _compat.disable_func_torch():
            whole = _compat.functorch_unwrap(x)
            total = whole.sum()
        seen.append((tuple(whole.shape), float(total), _compat.is_functorch_wrapped_tensor(total)))
        return x

    torch.func.vmap(f)(torch.arange(10.0).reshape(5, 2))
    assert seen == [True, ((5, 2), 45.0, False)]
    assert not _compat.is_functorch_wrapped_tensor(torch.ones(2))


def test_functional_and_fake_tensors_are_recognised():
    from torch._subclasses.fake_tensor import FakeTensorMode

    seen = []

    def g(x):
        seen.append(_compat.is_functional_tensor(x))
        return x + 1

    torch.func.functionalize(g)(torch.ones(2))
    assert seen == [True] and not _compat.is_functional_tensor(torch.ones(2))
    with FakeTensorMode():
        fake = torch.ones(2)
    assert _compat.is_fake(fake) and not _compat.is_fake(torch.ones(2))


def test_disable_current_modes_hides_a_dispatch_mode():
    from torch.utils._python_dispatch import TorchDispatchMode

    calls = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            calls.append(func)
            return func(*args, **(kwargs or {}))

    x = torch.ones(3)
    with Record():
        x + 1
        n = len(calls)
        with _compat.disable_current_modes():
            x + 1
    assert n >= 1 and len(calls) == n


def test_jagged_has_lengths_only_for_views_with_holes():
    t = torch.arange(12.0).reshape(3, 4)
    holes = torch.nested.narrow(
        t, 1, torch.tensor([0, 1, 0]), torch.tensor([2, 2, 3]), layout=torch.jagged
    )
    packed = torch.nested.nested_tensor([torch.ones(2), torch.ones(3)], layout=torch.jagged)
    assert _compat.jagged_has_lengths(holes) and not _compat.jagged_has_lengths(packed)


def test_shard_placements():
    from torch.distributed.tensor.placement_types import Partial, Replicate, Shard, _StridedShard

    assert _compat.is_shard_placement(Shard(0))
    assert _compat.is_shard_placement(_StridedShard(0, split_factor=2))
    assert not _compat.is_shard_placement(Replicate())
    assert not _compat.is_shard_placement(Partial())


def test_process_group_timeout_reads_init_process_group_timeout():
    import torch.distributed as dist

    if dist.is_initialized():  # pragma: no cover - another test left a group
        pytest.skip("a process group is already initialised")
    dist.init_process_group(
        "gloo", store=dist.HashStore(), rank=0, world_size=1, timeout=timedelta(seconds=123)
    )
    try:
        assert _compat.process_group_timeout() == timedelta(seconds=123)
    finally:
        dist.destroy_process_group()


def test_tensorboard_file_writer(tmp_path):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(log_dir=str(tmp_path)) as writer:
        assert _compat.is_summary_writer(writer)
        assert _compat.tensorboard_file_writer(writer) is writer._get_file_writer()
    with pytest.raises(TorchCompatError, match=r"_get_file_writer.* in PyTorch "):
        _compat.tensorboard_file_writer(object())


@pytest.mark.slow  # importing lightning takes seconds
def test_unwrap_optimizer_reads_lightning_and_accelerate_wrappers():
    pytest.importorskip("lightning")
    from lightning.pytorch.core.optimizer import LightningOptimizer

    sgd = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    assert _compat.unwrap_optimizer(LightningOptimizer(sgd)) is sgd

    class Accelerated:
        optimizer = LightningOptimizer(sgd)

    assert _compat.unwrap_optimizer(Accelerated()) is sgd
    assert _compat.unwrap_optimizer(sgd) is sgd
    assert _compat.unwrap_optimizer(object()) is None


# --- the one shared switch helper -------------------------------------------------------------


def test_fastpath_disabled_restores_after_an_exception():
    assert torch.backends.mha.get_fastpath_enabled()
    with pytest.raises(KeyError), _compat.fastpath_disabled() as changed:
        assert changed and not torch.backends.mha.get_fastpath_enabled()
        raise KeyError("boom")
    assert torch.backends.mha.get_fastpath_enabled()
    with _compat.fastpath_disabled(False) as changed:
        assert not changed and torch.backends.mha.get_fastpath_enabled()


def test_fastpath_disabled_keeps_a_switch_already_off():
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with _compat.fastpath_disabled() as changed:
            assert not changed
        assert not torch.backends.mha.get_fastpath_enabled()
    finally:
        torch.backends.mha.set_fastpath_enabled(True)


def test_summary_restores_the_fast_path_when_the_forward_raises():
    import netviz

    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.TransformerEncoderLayer(8, 2, batch_first=True)

        def forward(self, x):
            assert not torch.backends.mha.get_fastpath_enabled()  # off during the pass
            self.enc(x)
            raise KeyError("user error")

    with pytest.raises(RuntimeError, match="forward pass failed"):
        netviz.summary(Bad(), (1, 3, 8))
    assert torch.backends.mha.get_fastpath_enabled()


def test_conv_transpose_kernel_choice_matches_pytorch():
    """``conv_transpose_accepts_empty`` mirrors ATen's oneDNN choice: checked on empty outputs.

    Each case has an output size of exactly 0 along one dimension; PyTorch
    returns an empty tensor where it picks oneDNN and refuses elsewhere.
    """
    import itertools

    conv_t = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
    before = torch.get_num_threads()
    checked = {True: 0, False: 0}
    try:
        for nd, k, s, groups, batch, threads in itertools.product(
            (1, 2), (1, 3, 4), (1, 2), (1, 2), (None, 1, 2, 16), (1, 2)
        ):
            torch.set_num_threads(threads)
            # input 1 along the first dimension: output (1-1)*s - 2p + (k-1) + 1 = k - 2p
            if k % 2:
                continue  # no integer padding gives exactly 0; covered by the even kernel
            module = conv_t[nd](2 * groups, 2, k, stride=s, padding=k // 2, groups=groups)
            shape = (*(() if batch is None else (batch,)), 2 * groups, 1, *(3,) * (nd - 1))
            try:
                with torch.no_grad():
                    out = module(torch.zeros(shape))
                accepted = out.shape[-nd] == 0
            except RuntimeError:
                accepted = False
            assert _compat.conv_transpose_accepts_empty(module, shape) == accepted, (
                nd,
                k,
                s,
                groups,
                batch,
                threads,
            )
            checked[accepted] += 1
        for dtype in (torch.float64, torch.bfloat16):
            module = nn.ConvTranspose1d(1, 1, 4, padding=2).to(dtype)
            try:
                accepted = module(torch.zeros(1, 1, 1, dtype=dtype)).shape[-1] == 0
            except RuntimeError:
                accepted = False
            assert _compat.conv_transpose_accepts_empty(module, (1, 1, 1)) == accepted, dtype
            checked[accepted] += 1
    finally:
        torch.set_num_threads(before)
    assert checked[True] >= 5 and checked[False] >= 5, checked  # both sides of the rule seen


def test_tensor_version_counts_in_place_changes():
    x = torch.zeros(3)
    v0 = _compat.tensor_version(x)
    x.add_(1)
    assert _compat.tensor_version(x) == v0 + 1
    assert _compat.tensor_version(x.clone()) == 0
