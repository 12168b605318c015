"""capture_attention on stock nn.TransformerEncoder / Decoder / Transformer, train and eval."""

from __future__ import annotations

import pytest
import torch
from _attention_reference import hook_counts, mha_reference
from torch import nn

from netviz.capture.attention import AttentionCapture, capture_attention


def _record_inputs(model: nn.Module) -> tuple[list, list]:
    """Our own pre-hooks on every MHA: the (module, args, kwargs) of each call."""
    seen: list = []
    handles = []
    for m in model.modules():
        if isinstance(m, nn.MultiheadAttention):

            def pre(mod, args, kwargs):
                seen.append((mod, args, dict(kwargs)))

            handles.append(m.register_forward_pre_hook(pre, with_kwargs=True))
    return seen, handles


def _references(seen) -> list[torch.Tensor]:
    out = []
    for mod, args, kwargs in seen:
        q, k = args[0], args[1]
        out.append(
            mha_reference(
                mod,
                q,
                k,
                attn_mask=kwargs.get("attn_mask"),
                key_padding_mask=kwargs.get("key_padding_mask"),
            )
        )
    return out


def _encoder(batch_first=True, layers=2):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, batch_first=batch_first)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=batch_first)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
def test_encoder_eval_no_grad_fast_path_bypassed_and_restored():
    enc = _encoder().eval()
    x = torch.randn(3, 6, 16)
    kpm = torch.zeros(3, 6, dtype=torch.bool)
    kpm[1, -2:] = True  # left-aligned padding: the fused nested-tensor path would run
    assert torch.backends.mha.get_fastpath_enabled()
    with torch.no_grad():
        fused = enc(x, src_key_padding_mask=kpm)
        seen, handles = _record_inputs(enc)
        try:
            assert not seen  # the fused path skips the submodules: hooks never fire
            with AttentionCapture(enc) as cap:
                out = enc(x, src_key_padding_mask=kpm)
                assert not torch.backends.mha.get_fastpath_enabled()
        finally:
            for h in handles:
                h.remove()
    assert torch.backends.mha.get_fastpath_enabled()
    assert list(cap.weights) == ["layers.0.self_attn", "layers.1.self_attn"]
    for got, want in zip(cap.weights.values(), _references(seen)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        assert torch.all(got[1, :, :, -2:] == 0)
    # Outputs: bit-identical to the unfused path, equal to the fused one up to rounding.
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad():
            unfused = enc(x, src_key_padding_mask=kpm)
    finally:
        torch.backends.mha.set_fastpath_enabled(True)
    assert torch.equal(out, unfused)
    torch.testing.assert_close(out[~kpm], fused[~kpm], rtol=1e-4, atol=1e-5)
    assert hook_counts(enc) == 0


def test_fast_path_setting_left_off_if_user_turned_it_off():
    enc = _encoder().eval()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad():
            capture_attention(enc, torch.randn(2, 4, 16))
        assert not torch.backends.mha.get_fastpath_enabled()
    finally:
        torch.backends.mha.set_fastpath_enabled(True)


@pytest.mark.parametrize("batch_first", [True, False])
def test_encoder_train_mode_with_mask_matches_and_outputs_unchanged(batch_first):
    enc = _encoder(batch_first=batch_first).train()
    shape = (2, 5, 16) if batch_first else (5, 2, 16)
    x = torch.randn(*shape)
    causal = nn.Transformer.generate_square_subsequent_mask(5)
    torch.manual_seed(7)
    want = enc(x, mask=causal, is_causal=True)
    seen, handles = _record_inputs(enc)
    torch.manual_seed(7)
    try:
        with AttentionCapture(enc) as cap:
            got = enc(x, mask=causal, is_causal=True)
    finally:
        for h in handles:
            h.remove()
    assert torch.equal(got, want)  # same dropout masks: the capture draws no random numbers
    assert len(cap.weights) == 2
    for p, ref in zip(cap.weights.values(), _references(seen)):
        torch.testing.assert_close(p, ref)
        assert torch.all(p.triu(1) == 0)
        assert p.shape == (2, 4, 5, 5)


def test_decoder_self_and_cross_attention():
    torch.manual_seed(0)
    layer = nn.TransformerDecoderLayer(16, 2, 32, batch_first=True)
    dec = nn.TransformerDecoder(layer, 2).eval()
    tgt, memory = torch.randn(2, 4, 16), torch.randn(2, 7, 16)
    causal = nn.Transformer.generate_square_subsequent_mask(4)
    mkpm = torch.zeros(2, 7, dtype=torch.bool)
    mkpm[0, 5:] = True
    seen, handles = _record_inputs(dec)
    try:
        with torch.no_grad():
            att = capture_attention(dec, tgt, memory, tgt_mask=causal, memory_key_padding_mask=mkpm)
    finally:
        for h in handles:
            h.remove()
    assert list(att) == [
        "layers.0.self_attn",
        "layers.0.multihead_attn",
        "layers.1.self_attn",
        "layers.1.multihead_attn",
    ]
    for p, ref in zip(att.values(), _references(seen)):
        torch.testing.assert_close(p, ref)
    assert att["layers.0.self_attn"].shape == (2, 2, 4, 4)
    assert att["layers.0.multihead_attn"].shape == (2, 2, 4, 7)
    assert torch.all(att["layers.1.multihead_attn"][0, :, :, 5:] == 0)
    assert hook_counts(dec) == 0


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_full_transformer(mode):
    torch.manual_seed(0)
    model = nn.Transformer(16, 2, 1, 1, 32, batch_first=True)
    model.train(mode == "train")
    src, tgt = torch.randn(2, 5, 16), torch.randn(2, 3, 16)
    ctx = torch.no_grad() if mode == "eval" else torch.enable_grad()
    torch.manual_seed(1)
    with ctx:
        want = model(src, tgt)
    torch.manual_seed(1)
    with ctx, AttentionCapture(model) as cap:
        got = model(src, tgt)
    assert list(cap.weights) == [
        "encoder.layers.0.self_attn",
        "decoder.layers.0.self_attn",
        "decoder.layers.0.multihead_attn",
    ]
    assert cap.weights["decoder.layers.0.multihead_attn"].shape == (2, 2, 3, 5)
    if mode == "train":
        assert torch.equal(got, want)
    else:
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    for p in cap.weights.values():
        torch.testing.assert_close(p.sum(-1), torch.ones(p.shape[:-1]))
    assert torch.backends.mha.get_fastpath_enabled()
    assert hook_counts(model) == 0


def test_exception_leaves_nothing_behind():
    enc = _encoder().eval()

    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = enc

        def forward(self, x):
            self.enc(x)
            raise RuntimeError("boom")

    model = Boom()
    original = torch.nn.functional.scaled_dot_product_attention
    with torch.no_grad(), pytest.raises(RuntimeError, match="boom"):
        capture_attention(model, torch.randn(1, 3, 16))
    assert hook_counts(model) == 0
    assert torch.nn.functional.scaled_dot_product_attention is original
    assert torch.backends.mha.get_fastpath_enabled()
