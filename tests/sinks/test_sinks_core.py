"""Sinks without any tracker: dispatch, failures, keep=False, the Parquet stream, series."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from _integration_helpers import mlp, table, train

import netviz
from netviz.sinks.mlflow import check_name, mlflow_name
from netviz.sinks.series import moment_histograms, resolve_series, step_scalars

REPO = Path(__file__).resolve().parents[2]


def test_callable_sink_gets_every_step_once_equal_to_the_records():
    net = mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    got: list[tuple[int, pd.DataFrame]] = []
    with netviz.watch(net, optimizer=opt, sinks=lambda s, t: got.append((s, t))) as mon:
        train(net, opt, 4)
    # detach hands over the last step too (its copy was still pending)
    assert [s for s, _ in got] == [0, 1, 2, 3]
    records = mon.to_pandas()
    for step, frame in got:
        expected = records[records.step == step].reset_index(drop=True)
        pd.testing.assert_frame_equal(frame.reset_index(drop=True), expected)


def test_add_sink_later_gets_only_later_steps_and_every_is_respected():
    net = mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    seen: list[int] = []
    with netviz.watch(net, optimizer=opt, every=2) as mon:
        train(net, opt, 3)  # steps 0 and 2 recorded; 0 is stored when step 2 flushes
        mon.add_sink(lambda s, t: seen.append(s))
        train(net, opt, 3)  # steps 3..5: 4 recorded
    assert seen == [2, 4]  # step 0 reached the store before the sink was added


def test_failing_sink_warns_once_and_loses_no_record():
    net = mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    calls = []

    def broken(step, frame):
        calls.append(step)
        raise OSError("disk full")

    good: list[int] = []
    sinks = [broken, lambda s, t: good.append(s)]
    with (
        pytest.warns(RuntimeWarning, match="disk full") as caught,
        netviz.watch(net, optimizer=opt, sinks=sinks) as mon,
    ):
        train(net, opt, 3)
    assert len([w for w in caught if "disk full" in str(w.message)]) == 1
    assert calls == [0, 1, 2] and good == [0, 1, 2]  # the other sink still got everything
    assert sorted(mon.to_pandas().step.unique()) == [0, 1, 2]


def test_keep_false_keeps_steps_a_sink_failed_to_take():
    net = mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    def flaky(step, frame):
        if step == 1:
            raise ValueError("tracker offline")

    with (
        pytest.warns(RuntimeWarning, match="tracker offline"),
        netviz.watch(net, optimizer=opt, sinks=[flaky], keep=False) as mon,
    ):
        train(net, opt, 3)
    with pytest.warns(RuntimeWarning, match="only the 1 step"):
        kept = mon.to_pandas()
    assert kept.step.unique().tolist() == [1]


def test_keep_false_without_failures_holds_nothing_and_says_where_records_are():
    net = mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with netviz.watch(net, optimizer=opt, sinks=[lambda s, t: None], keep=False) as mon:
        train(net, opt, 2)
    with pytest.raises(RuntimeError, match="keep=False"):
        mon.to_pandas()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"keep": False}, ValueError, "needs a sink"),
        ({"sinks": "tensorboard"}, TypeError, "sinks"),
        ({"sinks": [42]}, TypeError, "callable"),
        ({"sinks": [print], "keep": "no"}, TypeError, "keep"),
    ],
)
def test_bad_sink_arguments_are_refused_clearly(kwargs, error, match):
    with pytest.raises(error, match=match):
        netviz.watch(mlp(), **kwargs)


def _grow_per_value(keep: bool, steps: int) -> float:
    net = torch.nn.Sequential(*[torch.nn.Linear(16, 16) for _ in range(20)])
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    counted = []
    sinks = [lambda s, t: counted.append(len(t))]
    with netviz.watch(net, optimizer=opt, sinks=sinks, keep=keep):
        train_x = torch.randn(8, 16)
        for _ in range(10):  # warm up: interned strings, allocator caches
            opt.zero_grad()
            net(train_x).sum().backward()
            opt.step()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        n0 = sum(counted)
        for _ in range(steps):
            opt.zero_grad()
            net(train_x).sum().backward()
            opt.step()
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        values = sum(counted) - n0
    return grown / values


def test_keep_false_memory_stays_flat():
    kept = _grow_per_value(True, 100)
    streamed = _grow_per_value(False, 100)
    assert kept > 20  # bytes per value held for the whole run (measured about 45)
    # keep=False: about 3 bytes per value, none of it records (the sink's list of
    # counts, and about 200 bytes per step that torch keeps outside netviz's store)
    assert streamed < 0.15 * kept, (kept, streamed)


def test_parquet_folder_is_readable_while_running_and_equals_the_records(tmp_path):
    net = mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    folder = tmp_path / "run.parquet"
    sink = netviz.sinks.Parquet(folder, steps_per_file=2)
    probes = ["grad_norm", "activation_stats", "weight_stats"]
    with netviz.watch(net, probes=probes, optimizer=opt, sinks=[sink]) as mon:
        train(net, opt, 6)
        # steps 0..4 are stored (5 is pending); parts close every 2 steps
        mid = netviz.load(folder)
        assert sorted(mid.step.unique()) == [0, 1, 2, 3]
        assert sorted(p.name for p in folder.glob("part-*.parquet")) == [
            "part-00000.parquet",
            "part-00001.parquet",
        ]
        assert list(folder.glob(".part-00002.parquet.inprogress"))
    assert not list(folder.glob(".*inprogress"))  # detach closed the open part
    pd.testing.assert_frame_equal(netviz.load(folder), mon.to_pandas())
    import pyarrow.parquet as pq

    # one row group per recorded step
    assert [pq.ParquetFile(p).num_row_groups for p in sorted(folder.glob("part-*"))] == [2, 2, 2]


@pytest.mark.slow
def test_parquet_after_a_crash_keeps_every_closed_part(tmp_path):
    folder = tmp_path / "crash.parquet"
    script = textwrap.dedent(
        f"""
        import os, torch, netviz
        net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        mon = netviz.watch(net, optimizer=opt, keep=False,
                           sinks=[netviz.sinks.Parquet({str(folder)!r}, steps_per_file=3)])
        for i in range(8):
            opt.zero_grad(); net(torch.randn(16, 4)).sum().backward(); opt.step()
        os._exit(3)  # dies without detach: no cleanup, no flush
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], env=env, timeout=120)
    assert done.returncode == 3
    # steps 0..6 were stored (7 pending); parts of 3 steps: 0-2 and 3-5 closed, 6 in progress
    records = netviz.load(folder)
    assert sorted(records.step.unique()) == [0, 1, 2, 3, 4, 5]
    assert list(folder.glob(".part-00002.parquet.inprogress"))
    assert set(records.probe) == {"grad_norm", "activation_stats"}


def test_parquet_refuses_to_mix_runs(tmp_path):
    folder = tmp_path / "run.parquet"
    net = mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with netviz.watch(net, optimizer=opt, sinks=[netviz.sinks.Parquet(folder)]):
        train(net, opt, 2)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        netviz.sinks.Parquet(folder)
    netviz.sinks.Parquet(folder, overwrite=True)
    assert not list(folder.glob("part-*"))
    (tmp_path / "file.parquet").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="is a file"):
        netviz.sinks.Parquet(tmp_path / "file.parquet")
    with pytest.raises(ValueError, match="steps_per_file"):
        netviz.sinks.Parquet(tmp_path / "x", steps_per_file=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="without netviz record parts"):
        netviz.load(tmp_path / "empty")


ROWS = [
    # step, phase, micro, module, call, order, probe, stat, value
    (3, "train", 0, "enc.0", 0, 1, "activation_stats", "mean", 1.0),
    (3, "train", 1, "enc.0", 0, 1, "activation_stats", "mean", 3.0),
    (3, "train", 0, "enc.0", 0, 1, "activation_stats", "max", 5.0),
    (3, "train", 1, "enc.0", 0, 1, "activation_stats", "max", 7.0),
    (3, "train", 0, "enc.0", 0, 1, "activation_stats", "min", -2.0),
    (3, "train", 1, "enc.0", 0, 1, "activation_stats", "min", -4.0),
    (3, "train", 0, "enc.0", 0, 1, "activation_stats", "numel", 10.0),
    (3, "train", 1, "enc.0", 0, 1, "activation_stats", "numel", 10.0),
    (3, "train", 0, "enc.1", 0, 2, "activation_stats", "std", 2.0),
    (3, "train", 1, "enc.1", 0, 2, "activation_stats", "std", float("nan")),
    (3, "train", 0, "enc.1", 0, 2, "activation_stats", "zero_frac", float("inf")),
    (3, "train", 1, "enc.1", 0, 2, "activation_stats", "zero_frac", 0.5),
    (3, "eval", 0, "enc.0", 0, 1, "activation_stats", "mean", 9.0),
    (3, "train", -1, "", 0, 0, "grad_norm", "l2", 0.25),
    (3, "train", -1, "enc.0", 0, 1, "grad_norm", "l2", 0.5),
]


def test_step_scalars_reduce_micro_batches_by_hand():
    got = step_scalars(table(ROWS), resolve_series("all"))
    assert got == {
        "netviz/activation_stats.mean/enc.0": 2.0,  # mean of 1 and 3
        "netviz/activation_stats.max/enc.0": 7.0,
        "netviz/activation_stats.min/enc.0": -4.0,
        "netviz/activation_stats.numel/enc.0": 20.0,
        "netviz/activation_stats.std/enc.1": got["netviz/activation_stats.std/enc.1"],
        "netviz/activation_stats.zero_frac/enc.1": math.inf,  # not averaged away
        "netviz/eval/activation_stats.mean/enc.0": 9.0,
        "netviz/grad_norm.l2/(root)": 0.25,
        "netviz/grad_norm.l2/enc.0": 0.5,
    }
    assert math.isnan(got["netviz/activation_stats.std/enc.1"])  # a NaN micro-batch shows


def test_step_scalars_ignore_row_order_and_select_compact_series():
    frame = table(ROWS)
    shuffled = frame.sample(frac=1.0, random_state=3)
    compact = resolve_series("compact")
    a, b = step_scalars(frame, compact), step_scalars(shuffled, compact)
    assert a.keys() == b.keys()
    assert all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)
    assert "netviz/activation_stats.max/enc.0" not in a  # not in the compact set
    assert "netviz/grad_norm.l2/enc.0" in a
    assert set(step_scalars(frame, resolve_series(["grad_norm"]))) == {
        "netviz/grad_norm.l2/(root)",
        "netviz/grad_norm.l2/enc.0",
    }


@pytest.mark.parametrize("bad", ["some", ["a.b.c"], [""], 3])
def test_series_must_be_named_clearly(bad):
    with pytest.raises(ValueError, match="series"):
        resolve_series(bad)


def test_moment_histogram_mass_and_moments_by_hand():
    rows = [
        (0, "train", m, "a", 0, 0, "activation_stats", stat, v)
        for m, stats in enumerate(
            [
                {
                    "min": -1.0,
                    "max": 2.0,
                    "numel": 10,
                    "mean": 0.5,
                    "std": 1.0,
                    "nonfinite_frac": 0.0,
                },
                {
                    "min": -3.0,
                    "max": 1.0,
                    "numel": 10,
                    "mean": -0.5,
                    "std": 2.0,
                    "nonfinite_frac": 0.2,
                },
            ]
        )
        for stat, v in stats.items()
    ]
    (hist,) = moment_histograms(table(rows))
    assert hist.tag == "netviz/activation_hist/a"
    assert hist.num == 18  # 10 + 8 finite values
    assert hist.sum == pytest.approx(10 * 0.5 + 8 * -0.5)
    assert hist.sum_squares == pytest.approx(10 * (1 + 0.25) + 8 * (4 + 0.25))
    assert (hist.min, hist.max) == (-3.0, 2.0)
    np.testing.assert_array_equal(hist.edges, [-3.0, 2.0])
    np.testing.assert_array_equal(hist.counts, [18])


def test_mlflow_names_map_the_root_and_brackets_and_reject_the_rest():
    assert mlflow_name("grad_norm", "l2", "") == "netviz/grad_norm.l2/_root_"
    assert mlflow_name("grad_norm", "l2", "blocks[0] x") == "netviz/grad_norm.l2/blocks_0_ x"
    assert mlflow_name("grad_norm", "l2", "a/b") == "netviz/grad_norm.l2/a_b"
    check_name("netviz/grad_norm.l2/enc.0", "m")
    for bad in ["a//b", "/lead", "trail/", "weird[0]", ""]:
        with pytest.raises(ValueError, match="MLflow would reject"):
            check_name(bad, "module 'x'")


def test_import_netviz_imports_no_framework():
    code = (
        "import sys, netviz, netviz.sinks, netviz.integrations; "
        "print(sorted(m for m in ('tensorboard', 'wandb', 'mlflow', 'lightning', "
        "'pytorch_lightning', 'transformers', 'accelerate', 'tensorboardX') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("bad", [0, 1, True, "binned", None])
def test_histograms_option_takes_only_auto_moments_or_false(tmp_path, bad):
    # 0 == False in Python: 0 was let through as False before
    with pytest.raises(netviz.NetvizValueError, match=r"'auto'.*'moments' or False"):
        netviz.sinks.TensorBoard(tmp_path / "tb", histograms=bad)


def test_histograms_false_gives_none_and_moments_gives_one_per_module(tmp_path):
    rows = [
        ("activation_stats", s, v)
        for s, v in [
            ("min", -1.0),
            ("max", 2.0),
            ("numel", 4.0),
            ("mean", 0.5),
            ("std", 1.0),
            ("nonfinite_frac", 0.0),
        ]
    ]
    frame = table([(0, "train", 0, "enc.0", 0, 0, p, s, v) for p, s, v in rows])
    off = netviz.sinks.TensorBoard(tmp_path / "off", histograms=False)
    on = netviz.sinks.TensorBoard(tmp_path / "on", histograms="moments")
    try:
        assert off.histograms(frame) == []
        (hist,) = on.histograms(frame)
        assert (hist.tag, hist.num, hist.min, hist.max) == (
            "netviz/activation_hist/enc.0",
            4.0,
            -1.0,
            2.0,
        )
    finally:
        off.close()
        on.close()
