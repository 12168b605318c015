"""`modules=` on recorded names selects exactly what `watch`'s selector selects on the model."""

from __future__ import annotations

import pytest
from torch import nn

from netviz.capture.selection import named_modules, select_modules
from netviz.errors import NetvizTypeError, NetvizValueError
from netviz.records.selection import select_names


def _model() -> nn.Module:
    return nn.Sequential(
        nn.Sequential(nn.Linear(2, 3), nn.ReLU()),
        nn.Linear(3, 3),
        nn.Sequential(nn.Linear(3, 1), nn.Sigmoid()),
    )


@pytest.mark.parametrize(
    "pattern",
    ["*", "0.*", "?", "[02]", "2.1", ["1", "0.0"], ("2.*", "1"), "", ["", "1"], "0*"],
)
def test_same_names_as_watch_selects_on_the_model(pattern):
    model = _model()
    names = [n for n, _ in named_modules(model)]
    want = [n for n, _ in select_modules(model, pattern)]
    assert select_names(names, pattern) == want


def test_none_selects_all_in_the_given_order_and_duplicates_go():
    assert select_names(["b", "a", "b"], None) == ["b", "a"]
    assert select_names(["b", "a"], ["a", "b"]) == ["b", "a"]  # order of the names, as watch


def test_no_match_names_close_names():
    with pytest.raises(NetvizValueError, match=r"close names: 'enc\.0'") as err:
        select_names(["enc.0", "dec.0"], "enc.O", what="the records")
    assert "in the records" in str(err.value)
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (nn.Linear, "needs the model"),
        ((nn.Linear, nn.ReLU), "needs the model"),
        (lambda name, module: True, "needs the model"),
        (3, "glob or a list of globs"),
        ([1, 2], "glob or a list of globs"),
        ([], "glob or a list of globs"),
    ],
)
def test_selectors_that_need_the_model_or_are_wrong_are_refused(selector, message):
    with pytest.raises(NetvizTypeError, match=message):
        select_names(["0", "1"], selector)
