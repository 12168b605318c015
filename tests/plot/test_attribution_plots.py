"""netviz.plot.attribution and token_attribution, checked through their artists."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba

import netviz
from netviz.plot import attribution, token_attribution


@pytest.fixture
def image_and_attr():
    img = np.zeros((6, 6))
    img[1:5, 2:4] = 1.0
    attr = np.zeros((6, 6))
    attr[1, 2], attr[4, 3] = 2.0, -1.0
    return img, attr


def test_signed_map_is_symmetric_and_keeps_the_values(image_and_attr):
    img, attr = image_and_attr
    ax = attribution(attr, image=img, kind="signed")
    (shown,) = ax.images
    assert np.array_equal(np.asarray(shown.get_array()), attr)
    assert shown.get_clim() == (-2.0, 2.0)
    assert shown.get_cmap().name == "RdBu_r"
    # white (the colour map's middle) means zero
    assert np.allclose(shown.to_rgba(np.array([0.0]))[0][:3], shown.get_cmap()(0.5)[:3])
    cbar = ax.figure.axes[-1]
    assert "attribution" in cbar.get_ylabel()
    assert ax.get_xticks().size == 0 and ax.get_yticks().size == 0


def test_abs_map_shows_magnitudes(image_and_attr):
    img, attr = image_and_attr
    ax = attribution(attr, image=img, kind="abs", colorbar=False)
    (shown,) = ax.images
    assert np.array_equal(np.asarray(shown.get_array()), np.abs(attr))
    assert shown.get_clim() == (0.0, 2.0) and shown.get_cmap().name == "inferno"
    assert len(ax.figure.axes) == 1


def test_blend_draws_the_grey_image_under_a_transparent_map(image_and_attr):
    img, attr = image_and_attr
    _, axes = plt.subplots(1, 2)
    out = attribution(
        torch.tensor(attr)[None, None], axes[1], image=img * 16, alpha=0.5, title="IG"
    )
    assert out is axes[1] and len(axes[0].images) == 0
    grey, overlay = out.images
    assert np.array_equal(np.asarray(grey.get_array()), img)  # rescaled to 0..1
    assert grey.get_cmap().name == "gray_r" and overlay.get_cmap().name == "RdBu_r"
    # opacity alpha * |attr| / max: 0.5 at the strongest pixel, 0 where attr is 0
    assert np.allclose(overlay.get_alpha(), 0.5 * np.abs(attr) / 2.0)
    assert out.get_title() == "IG"


def test_a_non_negative_blend_uses_a_sequential_map(image_and_attr):
    img, attr = image_and_attr
    ax = attribution(np.abs(attr), image=img)
    overlay = ax.images[-1]
    assert overlay.get_cmap().name == "Reds" and overlay.get_clim() == (0.0, 2.0)
    assert ax.figure.axes[-1].get_ylabel() == "attribution"


def test_percentile_and_vmax_set_the_scale(image_and_attr):
    img, attr = image_and_attr
    assert attribution(attr, image=img, kind="signed", vmax=0.5).images[0].get_clim() == (-0.5, 0.5)
    clim = attribution(attr, image=img, kind="signed", percentile=50).images[0].get_clim()
    assert clim == (-1.0, 1.0)  # all-zero pixels: the fallback scale of 1
    clim = attribution(attr + 1e-3, image=img, kind="signed", percentile=99).images[0].get_clim()
    assert clim[1] == pytest.approx(np.percentile(np.abs(attr + 1e-3), 99))


def test_an_attribution_result_and_rgb_images_are_accepted():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 2, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(32, 2)
    )
    x = torch.rand(1, 3, 4, 4)
    res = netviz.attribution(model, x, 0, "input_x_gradient")
    ax = attribution(res, image=x[0])
    grey, overlay = ax.images
    assert np.allclose(np.asarray(overlay.get_array()), res.attr[0].sum(0).numpy())
    assert np.asarray(grey.get_array()).shape == (4, 4)


@pytest.mark.parametrize(
    ("image", "attr", "kwargs", "message"),
    [
        (np.zeros((4, 4)), np.zeros((5, 5)), {}, "upsample layer attributions"),
        (np.zeros((4, 4)), np.zeros((2, 2, 4, 4)), {}, "expected one image"),
        (None, np.zeros((4, 4)), {"kind": "blend"}, "pass the image"),
        (np.zeros((4, 4)), np.zeros((4, 4)), {"kind": "hot"}, "`kind` must be one of"),
        (np.zeros((4, 4)), np.zeros((4, 4)), {"alpha": 2}, "`alpha`"),
        (np.zeros((4, 4)), np.zeros((4, 4)), {"vmax": 0}, "`vmax` must be positive"),
    ],
)
def test_bad_image_arguments_are_explained(image, attr, kwargs, message):
    # NetvizValueError is a ValueError: code catching ValueError keeps working
    with pytest.raises(ValueError, match=message):
        attribution(attr, image=image, **kwargs)


def test_tokens_are_coloured_cells_in_order():
    tokens = ["the", "cat", "sat", "on", "a", "mat"]
    scores = np.array([0.1, 2.0, -1.0, 0.0, 0.5, -2.0])
    ax = token_attribution(scores, tokens=tokens, ncols=4)
    assert [t.get_text() for t in ax.texts] == tokens
    positions = [t.get_position() for t in ax.texts]
    assert positions == [(0, 0), (1, 0), (2, 0), (3, 0), (0, 1), (1, 1)]
    (cells,) = ax.images
    grid = np.asarray(cells.get_array(), dtype=float)
    assert grid.shape == (2, 4) and np.isnan(grid[1, 2:]).all()
    assert np.array_equal(grid.flat[:6], scores)
    assert cells.get_clim() == (-2.0, 2.0)
    red, blue = cells.to_rgba(np.array([2.0, -2.0]))
    assert red[0] > red[2] and blue[2] > blue[0]  # positive red, negative blue
    # dark cells get white text
    assert to_rgba(ax.texts[1].get_color()) == to_rgba("white")
    assert to_rgba(ax.texts[0].get_color()) == to_rgba("black")
    assert ax.figure.axes[-1].get_ylabel() == "attribution"


def test_token_layer_attribution_is_summed_over_the_embedding():
    attr = torch.arange(12.0).reshape(1, 3, 4)
    ax = token_attribution(attr, tokens=["a", "b", "c"], colorbar=False)
    grid = np.asarray(ax.images[0].get_array(), dtype=float)
    assert np.array_equal(grid[0], [6.0, 22.0, 38.0])
    with pytest.raises(ValueError, match="2 tokens but 3"):
        token_attribution(attr, tokens=["a", "b"])
    with pytest.raises(ValueError, match="one score per token"):
        token_attribution(np.zeros((1, 1, 1, 1)), tokens=["a"])


def test_default_kind_blends_over_an_image_and_is_signed_without_one(image_and_attr):
    img, attr = image_and_attr
    blended = attribution(attr, image=img, colorbar=False)
    assert len(blended.images) == 2  # grey image, then the map over it
    assert blended.images[0].get_cmap().name == "gray_r"
    alone = attribution(attr, colorbar=False)
    (shown,) = alone.images
    assert np.array_equal(np.asarray(shown.get_array()), attr)
    assert shown.get_clim() == (-2.0, 2.0)  # signed: symmetric around 0
