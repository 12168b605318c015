"""The curated public API: every listed name resolves, and no submodule shadows a function."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import netviz
import netviz.plot


def test_every_public_name_resolves():
    for name in netviz.__all__:
        assert getattr(netviz, name) is not None, name
    for name in netviz.plot.__all__:
        assert getattr(netviz.plot, name) is not None, name
    assert netviz.__all__ == sorted(netviz.__all__)


#: The plot functions of netviz.plot (everything else it exports is the look or PlotGrid).
PLOT_FUNCTIONS = sorted(
    set(netviz.plot.__all__)
    - {"CMAP_DIVERGING", "CMAP_SEQUENTIAL", "PALETTE", "PlotGrid", "savefig", "style"}
)


def test_plot_functions_are_data_then_ax_then_keywords():
    assert len(PLOT_FUNCTIONS) == 14
    for name in PLOT_FUNCTIONS:
        params = list(inspect.signature(getattr(netviz.plot, name)).parameters.values())
        assert [p.name for p in params[:2]] == ["data", "ax"], name
        assert params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, name
        assert params[1].default is None, name
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[2:]), name


def test_plot_signatures_have_real_types():
    for name in PLOT_FUNCTIONS:
        fn = getattr(netviz.plot, name)
        annotations = fn.__annotations__
        params = inspect.signature(fn).parameters
        assert set(params) | {"return"} == set(annotations), name  # every parameter annotated
        for key, text in annotations.items():
            assert "Any" not in str(text), (name, key, text)
        assert annotations["return"] in ("Axes", "PlotGrid", "Axes | PlotGrid"), name


def test_plot_selection_is_called_modules_everywhere():
    for name in PLOT_FUNCTIONS:
        params = inspect.signature(getattr(netviz.plot, name)).parameters
        assert not {"layers", "module", "records", "weights", "pe"} & set(params), name


def test_multi_axes_plots_return_a_plot_grid():
    import torch

    grid = netviz.plot.filters(torch.nn.Conv2d(1, 4, 3))
    assert isinstance(grid, netviz.plot.PlotGrid)
    assert grid.axes.shape == (2, 2) and grid.figure is grid.axes[0, 0].figure
    assert list(grid) == list(grid.axes.flat) and len(grid) == 4


def test_renamed_names_are_gone_and_the_new_ones_are_there():
    for old in ("conv_filters", "capture_positional_encoding"):
        assert not hasattr(netviz, old), old
    assert netviz.conv_filter_weights.__module__ == "netviz.capture.filters"
    assert netviz.positional_encoding_weights.__module__ == "netviz.capture.positional"
    assert netviz.sinusoidal_encoding is netviz.layermath.sinusoidal_encoding
    assert netviz.sinusoidal_encoding.__module__ == "netviz.layermath.positional"
    assert callable(netviz.snapshot_tensors)


def test_functions_stay_callable_after_importing_every_submodule():
    for info in pkgutil.walk_packages(netviz.__path__, "netviz."):
        if info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
    for name in (
        "watch",
        "summary",
        "diagnose",
        "capture_attention",
        "sinusoidal_encoding",
        "load",
        "report",
    ):
        assert callable(getattr(netviz, name)) and not isinstance(
            getattr(netviz, name), type(netviz)
        ), name
    for name in netviz.plot.__all__:
        assert not isinstance(getattr(netviz.plot, name), type(netviz)), name


def test_import_netviz_does_not_import_matplotlib():
    code = "import sys, netviz; netviz.watch; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
