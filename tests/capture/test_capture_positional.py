"""sinusoidal_encoding against the formula, the rotation property, positional_encoding_weights."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from netviz.capture.positional import positional_encoding_weights
from netviz.layermath import sinusoidal_encoding


@pytest.mark.parametrize(("length", "dim", "base"), [(7, 6, 10000.0), (5, 20, 100.0), (1, 2, 2.0)])
def test_interleaved_sincos_equals_formula(length, dim, base):
    pe = sinusoidal_encoding(length, dim, base=base, dtype=torch.float64)
    assert pe.shape == (length, dim)
    for t in range(length):
        for i in range(dim // 2):
            w = 1.0 / base ** (2 * i / dim)
            assert pe[t, 2 * i].item() == pytest.approx(math.sin(t * w), abs=1e-12)
            assert pe[t, 2 * i + 1].item() == pytest.approx(math.cos(t * w), abs=1e-12)


def test_concatenated_layout_is_a_permutation_of_interleaved():
    a = sinusoidal_encoding(9, 8, dtype=torch.float64)
    b = sinusoidal_encoding(9, 8, interleave=False, dtype=torch.float64)
    assert torch.equal(b[:, :4], a[:, 0::2])
    assert torch.equal(b[:, 4:], a[:, 1::2])


def test_sin_only_form_of_the_notes():
    pe = sinusoidal_encoding(50, 128, kind="sin", dtype=torch.float64)
    for t in (0, 1, 17, 49):
        for k in (0, 1, 64, 127):
            w = 1.0 / 10000 ** (k / 128)
            assert pe[t, k].item() == pytest.approx(math.sin(w * t), abs=1e-12)
    assert sinusoidal_encoding(4, 3, kind="sin").shape == (4, 3)  # odd dim is fine here


def test_dtype_and_device_follow_arguments():
    pe = sinusoidal_encoding(3, 4, dtype=torch.float16, device=torch.device("cpu"))
    assert pe.dtype == torch.float16 and pe.device.type == "cpu"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"length": 0, "dim": 4}, "length"),
        ({"length": 3, "dim": 5}, "even"),
        ({"length": 3, "dim": 4, "base": 0}, "base"),
        ({"length": 3, "dim": 4, "kind": "cos"}, "kind"),
        ({"length": 2.0, "dim": 4}, "length"),
        ({"length": 2, "dim": True}, "dim"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sinusoidal_encoding(**kwargs)


def _rotation(k: int, dim: int, base: float) -> torch.Tensor:
    """Block-diagonal R(k) with PE[t + k] = R(k) PE[t] (angle-addition formulas)."""
    r = torch.zeros(dim, dim, dtype=torch.float64)
    for i in range(dim // 2):
        a = k / base ** (2 * i / dim)
        c, s = math.cos(a), math.sin(a)
        # sin(x + a) = sin x cos a + cos x sin a ; cos(x + a) = cos x cos a - sin x sin a
        r[2 * i, 2 * i], r[2 * i, 2 * i + 1] = c, s
        r[2 * i + 1, 2 * i], r[2 * i + 1, 2 * i + 1] = -s, c
    return r


@given(
    t=st.integers(0, 200),
    k=st.integers(0, 200),
    half=st.integers(1, 16),
    base=st.sampled_from([10.0, 100.0, 10000.0]),
)
def test_shift_is_a_fixed_rotation(t, k, half, base):
    dim = 2 * half
    pe = sinusoidal_encoding(t + k + 1, dim, base=base, dtype=torch.float64)
    r = _rotation(k, dim, base)
    torch.testing.assert_close(pe[t + k], r @ pe[t], atol=1e-9, rtol=0)
    # R(k) is orthogonal: the norm of every position is the same (d / 2).
    assert pe[t].norm().item() == pytest.approx(math.sqrt(half), abs=1e-9)


# ------------------------------------------------------ positional_encoding_weights
class Learned(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok_emb = nn.Embedding(50, 8)
        self.pos_emb = nn.Embedding(12, 8)


class Buffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 8)
        self.register_buffer("pe", sinusoidal_encoding(20, 8)[:, None, :])  # (max_len, 1, d)


class GPT2Like(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(30, 4)
        self.wpe = nn.Embedding(10, 4)


class Param(nn.Module):
    def __init__(self):
        super().__init__()
        self.position_embeddings = nn.Parameter(torch.randn(1, 6, 4))


def test_learned_embedding_found():
    m = Learned()
    pe = positional_encoding_weights(m, length=5)
    assert torch.equal(pe, m.pos_emb.weight[:5].detach())
    assert not pe.requires_grad


def test_registered_buffer_squeezed():
    m = Buffer()
    pe = positional_encoding_weights(m)
    assert torch.equal(pe, sinusoidal_encoding(20, 8))


def test_gpt2_and_parameter_names():
    g = GPT2Like()
    assert torch.equal(positional_encoding_weights(g), g.wpe.weight.detach())
    p = Param()
    assert torch.equal(positional_encoding_weights(p), p.position_embeddings[0].detach())


def test_bert_like_integer_position_ids_are_not_a_candidate():
    class Embeddings(nn.Module):
        def __init__(self):
            super().__init__()
            self.word_embeddings = nn.Embedding(30, 4)
            self.position_embeddings = nn.Embedding(16, 4)
            self.register_buffer("position_ids", torch.arange(16)[None])

    class Bert(nn.Module):
        def __init__(self):
            super().__init__()
            self.embeddings = Embeddings()

    m = Bert()
    pe = positional_encoding_weights(m)
    assert torch.equal(pe, m.embeddings.position_embeddings.weight.detach())


def test_ambiguous_lists_candidates_and_name_picks():
    class Both(nn.Module):
        def __init__(self):
            super().__init__()
            self.pos = nn.Embedding(4, 2)
            self.register_buffer("pe", torch.zeros(4, 2))

    with pytest.raises(ValueError, match=r"\['pe', 'pos'\]"):
        positional_encoding_weights(Both())
    m = Both()
    assert torch.equal(positional_encoding_weights(m, name="pos"), m.pos.weight.detach())
    assert torch.equal(positional_encoding_weights(m, name="pe"), torch.zeros(4, 2))


def test_errors():
    with pytest.raises(ValueError, match="found no positional encoding"):
        positional_encoding_weights(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="candidates"):
        positional_encoding_weights(Learned(), name="nope")
    with pytest.raises(ValueError, match="exceeds the 12 positions"):
        positional_encoding_weights(Learned(), length=13)
    with pytest.raises(TypeError, match=r"nn\.Module"):
        positional_encoding_weights(torch.zeros(3, 3))

    class ThreeD(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("pe", torch.zeros(2, 3, 4))

    with pytest.raises(ValueError, match=r"expected \(length, dim\)"):
        positional_encoding_weights(ThreeD())
