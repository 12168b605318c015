"""capture_activations, conv_filter_weights and save_tensors/load_tensors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from _attention_reference import hook_counts
from torch import nn

from netviz.capture.activations import call_keys, capture_activations
from netviz.capture.filters import conv_filter_weights, conv_weight
from netviz.capture.tensorfile import load_tensors, save_tensors


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(4, 6, 3),
        nn.Flatten(),
        nn.Linear(6 * 4 * 4, 3),
    )


def test_outputs_equal_manual_forward_and_survive_inplace_ops():
    net = _cnn()
    x = torch.randn(5, 1, 6, 6)
    acts = capture_activations(net, x)
    assert list(acts) == ["0", "1", "2", "3", "4"]
    conv0 = net[0](x)
    torch.testing.assert_close(acts["0"], conv0)  # not overwritten by the in-place ReLU
    assert (acts["0"] < 0).any()
    torch.testing.assert_close(acts["1"], conv0.clamp_min(0))
    torch.testing.assert_close(acts["4"], net(x))
    assert not acts["4"].requires_grad
    assert hook_counts(net) == 0


def test_limits_on_batch_and_channels():
    net = _cnn()
    x = torch.randn(5, 1, 6, 6)
    acts = capture_activations(net, x, modules=nn.Conv2d, max_batch=2, max_channels=3)
    assert {k: tuple(v.shape) for k, v in acts.items()} == {"0": (2, 3, 6, 6), "2": (2, 3, 4, 4)}
    torch.testing.assert_close(acts["2"], net[2](net[1](net[0](x)))[:2, :3])
    assert acts["0"].is_contiguous()  # a copy, not a view into the full output


def test_module_called_twice_gets_call_keys():
    lin = nn.Linear(3, 3)

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = lin

        def forward(self, x):
            return self.lin(self.lin(x))

    x = torch.randn(2, 3)
    acts = capture_activations(Twice(), x, modules="lin")
    assert list(acts) == ["lin#0", "lin#1"]
    torch.testing.assert_close(acts["lin#1"], lin(lin(x)))


def test_tuple_outputs_use_first_tensor_and_no_tensor_outputs_are_skipped():
    class Pair(nn.Module):
        def forward(self, x):
            return {"a": (x * 2, x * 3)}

    class NoTensor(nn.Module):
        def forward(self, x):
            return None

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.pair, self.none = Pair(), NoTensor()

        def forward(self, x):
            self.none(x)
            return self.pair(x)

    x = torch.randn(2)
    acts = capture_activations(Net(), x, modules=["pair", "none"])
    assert list(acts) == ["pair"]
    torch.testing.assert_close(acts["pair"], x * 2)


def test_transformer_encoder_submodules_seen_in_eval_no_grad():
    layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
    enc = nn.TransformerEncoder(layer, 1).eval()
    with torch.no_grad():
        acts = capture_activations(enc, torch.randn(2, 3, 8), modules="layers.0.linear1")
    assert acts["layers.0.linear1"].shape == (2, 3, 16)
    assert torch.backends.mha.get_fastpath_enabled()


def test_hooks_removed_after_exception():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(3, 3))
    with pytest.raises(RuntimeError):
        capture_activations(net, torch.randn(1, 2))
    assert hook_counts(net) == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"max_batch": 0}, "max_batch"), ({"max_channels": 1.5}, "max_channels")],
)
def test_bad_limits(kwargs, match):
    with pytest.raises(ValueError, match=match):
        capture_activations(nn.Linear(2, 2), torch.randn(1, 2), **kwargs)


def test_call_keys_scheme():
    assert call_keys([("a", 1), ("b", 2), ("a", 3), ("a", 4)]) == {
        "a#0": 1,
        "b": 2,
        "a#1": 3,
        "a#2": 4,
    }


# --------------------------------------------------------------- conv_filter_weights
def test_conv_filter_weights_rgb_layout():
    conv = nn.Conv2d(3, 5, (2, 4))
    f = conv_filter_weights(conv)
    assert f.shape == (5, 2, 4, 3)
    for o in range(5):
        for c in range(3):
            assert torch.equal(f[o, :, :, c], conv.weight[o, c].detach())
    f[0, 0, 0, 0] = 100.0  # a copy
    assert conv.weight[0, 0, 0, 0] != 100.0


@pytest.mark.parametrize(
    ("conv", "shape"),
    [
        (nn.Conv2d(1, 6, 3), (6, 1, 3, 3)),
        (nn.Conv2d(4, 6, 3, groups=2), (6, 2, 3, 3)),
        (nn.Conv1d(2, 4, 7), (4, 2, 7)),
        (nn.Conv3d(3, 2, 3), (2, 3, 3, 3, 3)),
        (nn.ConvTranspose2d(2, 5, 3), (5, 2, 3, 3)),
    ],
)
def test_conv_filter_weights_layouts(conv, shape):
    f = conv_filter_weights(conv)
    assert f.shape == shape
    w = conv.weight.detach()
    if isinstance(conv, nn.ConvTranspose2d):
        assert torch.equal(f[3, 1], w[1, 3])  # output channel 3 from input channel 1
    else:
        assert torch.equal(f.reshape(w.shape), w)


def test_conv_filter_weights_bad_input():
    with pytest.raises(ValueError, match="weight"):
        conv_filter_weights(nn.ReLU())
    with pytest.raises(ValueError, match="3-D"):
        conv_filter_weights(nn.Linear(2, 3))
    with pytest.raises(ValueError, match="groups"):
        conv_filter_weights(nn.ConvTranspose2d(4, 4, 3, groups=2))
    with pytest.raises(TypeError, match="convolution module"):
        conv_filter_weights([1, 2])
    assert conv_weight(torch.ones(2, 3, 4)).shape == (2, 3, 4)


# ------------------------------------------------------------------ tensorfile
@pytest.mark.parametrize("suffix", [".pt", ".npz"])
def test_save_load_round_trip(tmp_path, suffix):
    data = {"layers.0.self_attn": torch.rand(1, 2, 3, 3), "b#1": torch.arange(4)}
    path = save_tensors(data, tmp_path / f"sub/att{suffix}")
    back = load_tensors(path)
    assert list(back) == list(data)
    for k in data:
        assert torch.equal(back[k], data[k])


def test_load_refuses_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"x": np.float64}, path)  # a pickled class: not a tensor
    with pytest.raises(pickle.UnpicklingError):
        load_tensors(path)
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="str: Tensor"):
        load_tensors(tmp_path / "list.pt")


def test_save_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"\.pt or \.npz"):
        save_tensors({"a": torch.zeros(1)}, tmp_path / "a.txt")
    with pytest.raises(TypeError, match="entry 'a'"):
        save_tensors({"a": [1, 2]}, tmp_path / "a.pt")
