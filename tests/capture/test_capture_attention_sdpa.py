"""capture_attention on modules calling scaled_dot_product_attention, and record_attention."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F
from _attention_reference import hook_counts, sdpa_reference
from torch import nn
from torch.nn.functional import scaled_dot_product_attention as sdpa_by_name

from netviz.capture.attention import AttentionCapture, capture_attention, record_attention

BUILTIN = torch._C._nn.scaled_dot_product_attention


class SelfAttention(nn.Module):
    """GPT-style causal self-attention through F.scaled_dot_product_attention."""

    def __init__(self, dim=16, heads=4, by_name=False):
        super().__init__()
        self.heads, self.by_name = heads, by_name
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.last_qk = None

    def forward(self, x):
        n, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (z.view(n, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        self.last_qk = (q.detach(), k.detach())
        fn = sdpa_by_name if self.by_name else F.scaled_dot_product_attention
        y = fn(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(n, t, d))


class Block(nn.Module):
    def __init__(self, by_name=False):
        super().__init__()
        self.ln = nn.LayerNorm(16)
        self.attn = SelfAttention(by_name=by_name)
        self.mlp = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))

    def forward(self, x):
        x = x + self.attn(self.ln(x))
        return x + self.mlp(x)


class GPT(nn.Module):
    def __init__(self, by_name=False):
        super().__init__()
        self.blocks = nn.Sequential(Block(by_name), Block(by_name))

    def forward(self, x):
        return self.blocks(x)


@pytest.mark.parametrize("by_name", [False, True], ids=["F.sdpa", "imported-by-name"])
def test_gpt_blocks_attributed_to_calling_module(by_name):
    model = GPT(by_name=by_name).eval()
    x = torch.randn(2, 5, 16)
    want_out = model(x)
    with AttentionCapture(model) as cap:
        out = model(x)
        assert F.scaled_dot_product_attention is not BUILTIN
        assert sys.modules[__name__].sdpa_by_name is not BUILTIN
    assert torch.equal(out, want_out)
    assert list(cap.weights) == ["blocks.0.attn", "blocks.1.attn"]
    for i in range(2):
        q, k = model.blocks[i].attn.last_qk
        got = cap.weights[f"blocks.{i}.attn"]
        torch.testing.assert_close(got, sdpa_reference(q, k, is_causal=True))
        assert got.shape == (2, 4, 5, 5)
    assert F.scaled_dot_product_attention is BUILTIN
    assert sys.modules[__name__].sdpa_by_name is BUILTIN
    assert hook_counts(model) == 0


class Raw(nn.Module):
    """Calls SDPA directly in the root module, with whatever arguments it is given."""

    def forward(self, q, k, v, *args, **kwargs):
        return F.scaled_dot_product_attention(q, k, v, *args, **kwargs)


def _qkv(heads=2, kv_heads=None, length=3, source=5, dim=8):
    kv_heads = kv_heads or heads
    return (
        torch.randn(2, heads, length, dim),
        torch.randn(2, kv_heads, source, dim),
        torch.randn(2, kv_heads, source, dim),
    )


def test_causal_with_longer_key_is_top_left_aligned():
    q, k, v = _qkv(length=3, source=5)
    p = capture_attention(Raw(), q, k, v, is_causal=True)[""]
    torch.testing.assert_close(p, sdpa_reference(q, k, is_causal=True))
    assert torch.all(p[..., 0, 1:] == 0) and torch.all(p[..., 2, 3:] == 0)


def test_bool_mask_true_means_attend_and_float_mask_is_added():
    q, k, v = _qkv()
    keep = torch.rand(3, 5) > 0.4
    keep[:, 0] = True
    p = capture_attention(Raw(), q, k, v, attn_mask=keep)[""]
    torch.testing.assert_close(p, sdpa_reference(q, k, attn_mask=keep))
    assert torch.all(p[..., ~keep] == 0)
    bias = torch.randn(2, 1, 3, 5)
    p = capture_attention(Raw(), q, k, v, bias)[""]  # positional attn_mask
    torch.testing.assert_close(p, sdpa_reference(q, k, attn_mask=bias))


def test_scale_and_dropout_arguments():
    q, k, v = _qkv()
    p = capture_attention(Raw(), q, k, v, None, 0.0, False, scale=0.05)[""]
    torch.testing.assert_close(p, sdpa_reference(q, k, scale=0.05))


def test_grouped_query_attention():
    q, k, v = _qkv(heads=4, kv_heads=2)
    p = capture_attention(Raw(), q, k, v, enable_gqa=True)[""]
    k_rep = k.repeat_interleave(2, dim=1)
    torch.testing.assert_close(p, sdpa_reference(q, k_rep))
    assert p.shape == (2, 4, 3, 5)


def test_three_dim_inputs_get_a_head_axis():
    q, k = torch.randn(2, 3, 8), torch.randn(2, 4, 8)
    p = capture_attention(Raw(), q, k, k)[""]
    assert p.shape == (2, 1, 3, 4)
    torch.testing.assert_close(p[:, 0], sdpa_reference(q, k))


def test_sdpa_inside_multihead_attention_is_counted_once():
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = torch.randn(1, 3, 8)
    att = capture_attention(mha, x, x, x, need_weights=False)
    assert list(att) == [""]


def test_sdpa_patch_removed_after_exception_and_nested_captures():
    class Boom(nn.Module):
        def forward(self, q, k, v):
            F.scaled_dot_product_attention(q, k, v)
            raise ValueError("boom")

    q, k, v = _qkv()
    with pytest.raises(ValueError, match="boom"):
        capture_attention(Boom(), q, k, v)
    assert F.scaled_dot_product_attention is BUILTIN
    outer_model, inner_model = Raw(), Raw()
    with AttentionCapture(outer_model) as outer:
        with AttentionCapture(inner_model) as inner:
            inner_model(q, k, v)
        outer_model(q, k, v)
    assert F.scaled_dot_product_attention is BUILTIN
    # Each capture records only calls made inside its own model's forward.
    assert list(inner.weights) == [""] and list(outer.weights) == [""]
    with AttentionCapture(outer_model) as outer:
        F.scaled_dot_product_attention(q, k, v)  # plain code, not the model
        outer_model(q, k, v)
        outer_model(q, k, v)
    assert list(outer.weights) == ["#0", "#1"]  # the root module is "", twice


class Custom(nn.Module):
    """Computes its own softmax and hands it to netviz."""

    def __init__(self, mode):
        super().__init__()
        self.mode = mode
        self.inner = nn.Identity()

    def forward(self, x):
        p = torch.softmax(x @ x.transpose(-2, -1), dim=-1)
        if self.mode == "module":
            record_attention(self, p)
        elif self.mode == "name":
            record_attention("my.attention", p)
        else:
            record_attention(None, p)
        out = p @ x
        p.zero_()  # later in-place change must not reach the capture
        return self.inner(out)


@pytest.mark.parametrize(
    ("mode", "key"), [("module", "c"), ("name", "my.attention"), ("none", "c")]
)
def test_record_attention_extension_point(mode, key):
    model = nn.Sequential()
    model.add_module("c", Custom(mode))
    x = torch.randn(2, 3, 4)
    att = capture_attention(model, x)
    assert list(att) == [key]
    want = torch.softmax(x @ x.transpose(-2, -1), dim=-1)
    torch.testing.assert_close(att[key], want[None])  # (heads, L, S) -> batch of 1


def test_record_attention_outside_capture_is_a_no_op():
    model = Custom("module")
    out = model(torch.randn(2, 3, 4))
    assert out.shape == (2, 3, 4)
    record_attention("x", torch.rand(3, 3))  # nothing active: nothing happens


def test_record_attention_rejects_bad_input():
    with AttentionCapture(nn.Linear(2, 2)):
        with pytest.raises(ValueError, match=r"\(batch, heads, L, S\)"):
            record_attention("x", torch.rand(1, 1, 1, 2, 2))
        with pytest.raises(TypeError, match="module_or_name"):
            record_attention(3, torch.rand(2, 2))


def test_capture_attention_rejects_non_module():
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        capture_attention(lambda x: x, torch.randn(2))


def test_sdpa_patches_removed_out_of_order_restore_the_builtin():
    from netviz.capture._sdpa import SdpaPatch

    calls: list[str] = []
    a = SdpaPatch(lambda args, kwargs: calls.append("a"))
    b = SdpaPatch(lambda args, kwargs: calls.append("b"))
    q, k, v = _qkv()
    want = BUILTIN(q, k, v)
    a.remove()  # first in, first out
    assert torch.equal(F.scaled_dot_product_attention(q, k, v), want)
    assert calls == ["b"]  # a passes calls through once removed
    b.remove()
    assert F.scaled_dot_product_attention is BUILTIN


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_results_stay_on_the_model_device(device):
    torch.manual_seed(0)
    gpt = GPT().to(device)
    mha = nn.MultiheadAttention(16, 4, batch_first=True).to(device)
    x = torch.randn(2, 5, 16, device=device)
    causal = torch.ones(5, 5, dtype=torch.bool, device=device).triu(1)
    for model, args, kwargs in ((gpt, (x,), {}), (mha, (x, x, x), {"attn_mask": causal})):
        att = capture_attention(model, *args, **kwargs)
        for p in att.values():
            assert p.device.type == device
            torch.testing.assert_close(p.sum(-1), torch.ones(p.shape[:-1], device=device))
            assert torch.all(p.triu(1) == 0)
