"""Plots of filters, feature maps, attention and positional encodings: inspect the artists."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

import netviz.plot as nvp
from netviz.capture.tensorfile import save_tensors
from netviz.layermath import sinusoidal_encoding


def _data(ax) -> np.ndarray:
    (image,) = ax.images
    return np.ma.getdata(image.get_array())


def test_filters_rgb_composed_around_grey():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 4)
    axes = nvp.filters(conv).axes
    assert axes.shape == (2, 3)
    w = conv.weight.detach().numpy().astype(np.float64)
    m = np.abs(w).max()
    for i in range(5):
        expected = 0.5 + w[i].transpose(1, 2, 0) / (2 * m)
        np.testing.assert_allclose(_data(axes.flat[i]), expected)
    assert not axes.flat[5].axison  # the unused cell is switched off
    assert len(axes[0, 0].figure.axes) == 6  # no colorbar for RGB


def test_filters_single_channel_symmetric_scale():
    conv = nn.Conv2d(1, 4, 3)
    axes = nvp.filters(conv, title="conv1").axes
    w = conv.weight.detach().numpy().astype(np.float64)
    m = np.abs(w).max()
    for i in range(4):
        np.testing.assert_allclose(_data(axes.flat[i]), w[i, 0])
        assert axes.flat[i].images[0].get_clim() == pytest.approx((-m, m))
        assert axes.flat[i].images[0].get_cmap().name == "RdBu_r"
    assert axes[0, 0].figure._suptitle.get_text() == "conv1"


def test_filters_many_inputs_grid_rows_out_cols_in():
    w = torch.randn(3, 5, 2, 2)
    axes = nvp.filters(w, max_inputs=4).axes
    assert axes.shape == (3, 4)
    np.testing.assert_allclose(_data(axes[2, 3]), w[2, 3].numpy(), rtol=1e-6)
    assert axes[0, 2].get_title() == "in 2"


def test_filters_into_given_axes_and_1d_3d():
    fig, ax = plt.subplots()
    axes = nvp.filters(nn.Conv1d(2, 4, 5), ax=ax).axes
    assert ax not in fig.axes and all(a.figure is fig for a in axes.flat)
    assert _data(axes.flat[0]).shape == (2, 5)
    conv3 = nn.Conv3d(1, 2, 3)
    axes = nvp.filters(conv3).axes
    np.testing.assert_allclose(
        _data(axes.flat[1]), conv3.weight[1, 0, 1].detach().numpy(), rtol=1e-6
    )
    with pytest.raises(ValueError, match="3 to 5 dims"):
        nvp.filters(torch.zeros(2, 2))


def test_feature_maps_rows_labels_and_data(tmp_path):
    acts = {
        "conv": torch.rand(2, 3, 5, 5),
        "relu": torch.randn(2, 10, 4, 4),
        "fc": torch.rand(2, 7),
    }
    axes = nvp.feature_maps(acts, item=1, max_channels=4).axes
    assert axes.shape == (3, 4)
    assert axes[0, 0].get_ylabel() == "conv\n(3, 5, 5)"
    assert axes[2, 0].get_ylabel() == "fc\n(7,)"
    np.testing.assert_allclose(_data(axes[0, 2]), acts["conv"][1, 2].numpy(), rtol=1e-6)
    np.testing.assert_allclose(_data(axes[1, 3]), acts["relu"][1, 3].numpy(), rtol=1e-6)
    np.testing.assert_allclose(_data(axes[2, 0]), acts["fc"][1][None].numpy(), rtol=1e-6)
    assert not axes[0, 3].axison
    # diverging, symmetric scale for a layer with negative values
    lo, hi = axes[1, 0].images[0].get_clim()
    assert lo == pytest.approx(-hi)
    path = save_tensors(acts, tmp_path / "acts.pt")
    again = nvp.feature_maps(path, modules=["fc"])
    assert isinstance(again, nvp.PlotGrid) and again.axes.shape == (1, 1)
    assert again.figure is again.axes[0, 0].figure
    # globs as in watch; rows keep the dict's order whatever the pattern order
    both = nvp.feature_maps(acts, modules=["fc", "c*"])
    assert [a.get_ylabel().split("\n")[0] for a in both.axes[:, 0]] == ["conv", "fc"]
    with pytest.raises(ValueError, match="match no module name in the activations"):
        nvp.feature_maps(acts, modules=["nope"])
    with pytest.raises(TypeError, match="needs the model"):
        nvp.feature_maps(acts, modules=nn.Conv2d)


def test_attention_grid_values_ticks_and_masked_blank(tmp_path):
    torch.manual_seed(0)
    w = torch.softmax(torch.randn(2, 3, 4, 4), dim=-1)
    w[0, :, :, 3] = 0.0  # masked key
    w[0, :, 0] = float("nan")  # fully masked row
    att = {"layers.0.self_attn": w, "layers.1.self_attn": w.flip(-1)}
    tokens = ["the", "cat", "sat", "<pad>"]
    axes = nvp.attention(att, tokens=tokens).axes
    assert axes.shape == (2, 3)  # rows = layers, columns = heads
    image = axes[1, 2].images[0]
    arr = image.get_array()
    np.testing.assert_allclose(np.ma.getdata(arr)[1:], w.flip(-1)[0, 2, 1:].numpy(), rtol=1e-6)
    assert arr.mask[0].all() and arr.mask[:, 0].all()  # NaN row and zero column blank
    assert not arr.mask[1:, 1:].any()
    assert image.get_clim() == (0.0, 1.0)
    assert [t.get_text() for t in axes[1, 0].get_yticklabels()] == tokens
    assert [t.get_text() for t in axes[1, 1].get_xticklabels()] == tokens
    assert axes[0, 0].get_ylabel() == "layers.0.self_attn"
    assert axes[0, 1].get_title() == "head 1"
    path = save_tensors(att, tmp_path / "att.npz")
    one = nvp.attention(path, modules="layers.1.*", heads=[2, 0], item=1, hide_zeros=False).axes
    assert one.shape == (1, 2)
    np.testing.assert_allclose(_data(one[0, 0]), w.flip(-1)[1, 2].numpy(), rtol=1e-6)


def test_attention_single_tensor_wraps_heads_and_cross_tokens():
    w = torch.softmax(torch.randn(5, 2, 3), dim=-1)
    axes = nvp.attention(w, tokens=(["a", "b"], ["x", "y", "z"]), ncols=2).axes
    assert axes.shape == (3, 2)
    assert not axes[2, 1].axison
    assert [t.get_text() for t in axes[2, 0].get_xticklabels()] == ["x", "y", "z"]
    assert [t.get_text() for t in axes[1, 1].get_xticklabels()] == ["x", "y", "z"]
    with pytest.raises(ValueError, match="3 query tokens"):
        nvp.attention(w, tokens=["a", "b", "c"])
    with pytest.raises(ValueError, match="head 9"):
        nvp.attention(w, heads=[9])


def test_positional_encoding_and_similarity():
    pe = sinusoidal_encoding(30, 16)
    ax = nvp.positional_encoding(pe)
    np.testing.assert_allclose(_data(ax), pe.numpy(), rtol=1e-6)
    lo, hi = ax.images[0].get_clim()
    assert lo == -hi and ax.get_xlabel() == "dimension" and ax.get_ylabel() == "position"
    ax = nvp.position_similarity(pe)
    p = pe.double().numpy()
    np.testing.assert_allclose(_data(ax), p @ p.T, rtol=1e-6)
    ax = nvp.position_similarity({"pe": pe}, normalize=True)
    np.testing.assert_allclose(np.diag(_data(ax)), np.ones(30), rtol=1e-6)
    with pytest.raises(ValueError, match="one table"):
        nvp.positional_encoding({"a": pe, "b": pe})
    with pytest.raises(ValueError, match=r"\(positions, dim\)"):
        nvp.positional_encoding(torch.zeros(2, 3, 4))


def test_plot_attention_name_stays_callable_after_submodule_import():
    import importlib

    importlib.import_module("netviz.plot.attention_maps")
    w = torch.softmax(torch.randn(2, 2), dim=-1)
    for _ in range(2):  # importing the submodule must not shadow the function
        axes = nvp.attention(w).axes
        np.testing.assert_allclose(_data(axes[0, 0]), w.numpy(), rtol=1e-6)


def test_filters_in_an_axes_keep_the_parent_figure_title():
    import matplotlib.pyplot as plt

    fig, (_, right) = plt.subplots(1, 2)
    fig.suptitle("Parent title")
    nvp.filters(torch.nn.Conv2d(1, 4, 3), ax=right, title="conv1")
    assert fig._suptitle.get_text() == "Parent title"
    assert "conv1" in [t.get_text() for a in fig.axes for t in a.texts]
