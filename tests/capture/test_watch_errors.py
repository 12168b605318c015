"""Bad input to ``watch`` and ``load``: each error says what was wrong and what is accepted."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

import netviz


def net():
    return nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 1)))


def test_model_must_be_a_module():
    with pytest.raises(TypeError, match=r"`model` must be a torch.nn.Module, got function"):
        netviz.watch(lambda x: x)
    with pytest.raises(TypeError, match=r"got Tensor"):
        netviz.watch(torch.zeros(2))


def test_unknown_probe_lists_known_ones():
    with pytest.raises(
        ValueError, match=r"unknown probe 'grad_nrom'; known probes: .*activation_stats.*grad_norm"
    ):
        netviz.watch(net(), probes=["grad_nrom"])


def test_probe_entries_must_be_names_or_probes():
    with pytest.raises(
        TypeError, match=r"`probes` entries must be names \(str\) or Probe objects, got int"
    ):
        netviz.watch(net(), probes=["grad_norm", 3])
    with pytest.raises(ValueError, match=r"`probes` is empty"):
        netviz.watch(net(), probes=[])
    with pytest.raises(ValueError, match=r"given more than once"):
        netviz.watch(net(), probes=["grad_norm", "grad_norm"])


@pytest.mark.parametrize("every", [0, -1, 1.5, "2", True])
def test_every_must_be_positive_int(every):
    with pytest.raises(ValueError, match=r"`every` must be an int >= 1, got"):
        netviz.watch(net(), every=every)


def test_selection_matching_nothing_names_close_modules():
    with pytest.raises(ValueError, match=r"match no module name in the model; close names: '2.0'"):
        netviz.watch(net(), modules="2.1")
    with pytest.raises(
        ValueError, match=r"selects no module of type Conv2d; the model has types: Linear, ReLU"
    ):
        netviz.watch(net(), modules=nn.Conv2d)
    with pytest.raises(ValueError, match=r"predicate .* selected no module"):
        netviz.watch(net(), modules=lambda n, m: False)


def test_selection_of_wrong_kind():
    with pytest.raises(TypeError, match=r"`modules` must be None, a glob or list of globs"):
        netviz.watch(net(), modules=3)
    with pytest.raises(TypeError, match=r"`modules` must be None, a glob or list of globs"):
        netviz.watch(net(), modules=["0", 1])
    with pytest.raises(TypeError, match=r"nn.Module subclasses"):
        netviz.watch(net(), modules=(int,))


def test_optimizer_type_checked():
    with pytest.raises(
        TypeError,
        match=r"`optimizer` must be a torch.optim.Optimizer \(or a wrapper holding one as "
        r"`.optimizer`\) or None, got list",
    ):
        netviz.watch(net(), optimizer=[])


def test_failed_validation_attaches_nothing():
    m = net()
    with pytest.raises(ValueError):
        netviz.watch(m, modules="nothing*")
    assert all(not mod._forward_hooks for mod in m.modules())


def test_save_and_load_errors(tmp_path):
    m = net()
    with netviz.watch(m) as mon:
        m(torch.ones(1, 2))
        mon.step()
    with pytest.raises(
        ValueError, match=r"cannot tell the file format .* use one of .parquet, .pq, .csv"
    ):
        mon.save(tmp_path / "run.json")
    with pytest.raises(FileNotFoundError, match=r"no record file"):
        netviz.load(tmp_path / "missing.csv")
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(ValueError, match=r"not a netviz record table: missing column\(s\)"):
        netviz.load(tmp_path / "other.csv")
