"""capture_attention on nn.MultiheadAttention against a hand computation from its weights."""

from __future__ import annotations

import pytest
import torch
from _attention_reference import hook_counts, mha_reference
from torch import nn

from netviz.capture.attention import AttentionCapture, capture_attention


class Wrap(nn.Module):
    """Calls its attention the way a user model would, and returns both outputs."""

    def __init__(self, mha: nn.MultiheadAttention, **call_kwargs):
        super().__init__()
        self.att = mha
        self.call_kwargs = call_kwargs

    def forward(self, q, k, v):
        return self.att(q, k, v, **self.call_kwargs)


def _mha(**kw) -> nn.MultiheadAttention:
    torch.manual_seed(1)
    kw.setdefault("embed_dim", 12)
    kw.setdefault("num_heads", 3)
    return nn.MultiheadAttention(**kw).double()


def _x(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def _check_rows(p: torch.Tensor) -> None:
    sums = p.sum(-1)
    finite = ~torch.isnan(sums)
    assert finite.any()
    torch.testing.assert_close(sums[finite], torch.ones_like(sums[finite]))


CASES = {
    "need_weights_false": dict(call=dict(need_weights=False)),
    "averaged": dict(call=dict(need_weights=True, average_attn_weights=True)),
    "bool_mask": dict(mask="bool"),
    "float_mask": dict(mask="float"),
    "key_padding": dict(kpm=True),
    "bool_mask_and_key_padding": dict(mask="bool", kpm=True),
    "seq_first": dict(module=dict(batch_first=False)),
    "kdim_vdim": dict(module=dict(kdim=5, vdim=7)),
    "mask_3d": dict(mask="3d"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_mha_matches_hand_computation(case):
    spec = CASES[case]
    module_kw = dict(batch_first=True) | spec.get("module", {})
    mha = _mha(**module_kw)
    n, length, source = 2, 4, 6
    kdim = module_kw.get("kdim", 12)
    vdim = module_kw.get("vdim", 12)
    if mha.batch_first:
        q, k, v = _x(n, length, 12), _x(n, source, kdim), _x(n, source, vdim)
    else:
        q, k, v = _x(length, n, 12), _x(source, n, kdim), _x(source, n, vdim)
    call = dict(spec.get("call", {}))
    mask = None
    if spec.get("mask") == "bool":
        mask = torch.rand(length, source) < 0.3
        mask[:, 0] = False  # no fully masked row
    elif spec.get("mask") == "float":
        mask = torch.randn(length, source, dtype=torch.float64)
    elif spec.get("mask") == "3d":
        mask = torch.randn(n * 3, length, source, dtype=torch.float64)
    kpm = None
    if spec.get("kpm"):
        kpm = torch.zeros(n, source, dtype=torch.bool)
        kpm[0, -2:] = True
        kpm[1, -1] = True
    if mask is not None:
        call["attn_mask"] = mask
    if kpm is not None:
        call["key_padding_mask"] = kpm
    model = Wrap(mha, **call)
    expected_out = model(q, k, v)
    with AttentionCapture(model) as cap:
        out = model(q, k, v)
    # The caller gets exactly what it asked for.
    assert torch.equal(out[0], expected_out[0])
    if expected_out[1] is None:
        assert out[1] is None
    else:
        assert torch.equal(out[1], expected_out[1])
    assert list(cap.weights) == ["att"]
    got = cap.weights["att"]
    want = mha_reference(mha, q, k, attn_mask=mask, key_padding_mask=kpm)
    assert got.shape == (n, 3, length, source)
    torch.testing.assert_close(got, want)
    _check_rows(got)
    if case == "averaged":  # the caller's averaged weights are the mean over our heads
        torch.testing.assert_close(out[1], got.mean(1))
    if kpm is not None:
        assert torch.all(got[0, :, :, -2:] == 0)
    assert hook_counts(model) == 0


def test_unbatched_input_gives_batch_of_one():
    mha = _mha(batch_first=True)
    q, k = _x(4, 12), _x(5, 12)
    kpm = torch.tensor([False, False, False, True, False])
    att = capture_attention(mha, q, k, k, key_padding_mask=kpm)
    assert list(att) == [""]
    torch.testing.assert_close(att[""], mha_reference(mha, q, k, key_padding_mask=kpm))
    assert att[""].shape == (1, 3, 4, 5)


def test_fully_masked_row_is_nan_others_sum_to_one():
    mha = _mha(batch_first=True)
    x = _x(2, 3, 12)
    kpm = torch.tensor([[True, True, True], [False, True, False]])
    p = capture_attention(mha, x, x, x, key_padding_mask=kpm)[""]
    assert torch.isnan(p[0]).all()
    _check_rows(p[1])
    assert torch.all(p[1, :, :, 1] == 0)


def test_is_causal_with_mask_in_train_mode_does_not_change_outputs_or_rng():
    mha = _mha(batch_first=True, dropout=0.5).train()
    x = _x(2, 5, 12)
    causal = nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
    model = Wrap(mha, attn_mask=causal, is_causal=True, need_weights=False)
    torch.manual_seed(3)
    want = model(x, x, x)[0]
    after_want = torch.rand(3)
    torch.manual_seed(3)
    with AttentionCapture(model) as cap:
        got = model(x, x, x)[0]
    after_got = torch.rand(3)
    assert torch.equal(got, want)
    assert torch.equal(after_got, after_want)  # no random numbers drawn by the capture
    p = cap.weights["att"]
    torch.testing.assert_close(p, mha_reference(mha, x, x, attn_mask=causal))
    assert torch.all(p.triu(1) == 0)  # probabilities before dropout


def test_repeated_calls_get_call_index_keys():
    mha = _mha(batch_first=True)

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.att = mha

        def forward(self, x, y):
            return self.att(x, x, x)[0] + self.att(x, y, y)[0]

    x, y = _x(1, 3, 12), _x(1, 4, 12)
    att = capture_attention(Twice(), x, y)
    assert list(att) == ["att#0", "att#1"]
    torch.testing.assert_close(att["att#0"], mha_reference(mha, x, x))
    torch.testing.assert_close(att["att#1"], mha_reference(mha, x, y))


def test_modules_selector_filters():
    a, b = _mha(batch_first=True), _mha(batch_first=True)
    model = nn.ModuleDict({"a": a, "b": b})

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = model

        def forward(self, x):
            return self.blocks["a"](x, x, x)[0] + self.blocks["b"](x, x, x)[0]

    x = _x(1, 3, 12)
    assert list(capture_attention(Two(), x, modules="blocks.b")) == ["blocks.b"]
    assert list(capture_attention(Two(), x, modules="blocks")) == ["blocks.a", "blocks.b"]
    with pytest.raises(ValueError, match="match no module"):
        capture_attention(Two(), x, modules="nope")


def test_grad_still_flows_in_train_mode():
    mha = _mha(batch_first=True).train()
    x = _x(2, 3, 12).requires_grad_()
    model = Wrap(mha, need_weights=False)
    with AttentionCapture(model) as cap:
        model(x, x, x)[0].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert not cap.weights["att"].requires_grad


def test_unrecomputable_call_warns_and_model_still_runs():
    class OddMHA(nn.MultiheadAttention):
        def forward(self, x, *, scale=1.0):  # another signature than nn.MultiheadAttention
            return super().forward(x, x, x, need_weights=False)

    m = OddMHA(12, 3, batch_first=True).double()
    x = _x(1, 3, 12)
    with pytest.warns(RuntimeWarning, match="could not recompute the attention of module ''"):
        att = capture_attention(m, x, scale=2.0)
    assert att == {}


def test_capture_object_reattach_and_argument_checks():
    mha = _mha(batch_first=True)
    x = _x(1, 2, 12)
    cap = AttentionCapture(mha)
    with cap:
        mha(x, x, x)
    with pytest.raises(RuntimeError, match="already attached"), cap:
        cap.attach()
    with cap:
        mha(x, x, x)
        mha(x, x, x)
    assert list(cap.weights) == ["#0", "#1"]  # a fresh capture each time it is entered
    with pytest.raises(ValueError, match="either `modules` or `keep`"):
        AttentionCapture(mha, modules="*", keep=lambda name: True)
