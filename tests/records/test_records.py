"""Record tables: schema, Parquet/CSV round trips, and the moment kernels behind them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import netviz
from netviz.capture.stats import MOMENT_FIELDS, finalize_moments, merge_moments, tensor_moments
from netviz.records import COLUMNS, validate_frame


@pytest.fixture
def records():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    with netviz.watch(model, probes=["activation_stats", "grad_stats", "weight_stats"]) as mon:
        for i in range(3):
            x = torch.randn(5, 3)
            if i == 1:
                x[0, 0] = float("nan")  # NaN and Inf must survive the files
            model(x).sum().backward()
            mon.step()
    return mon


def test_schema(records):
    df = records.to_pandas()
    assert tuple(df.columns) == COLUMNS
    assert df.step.dtype == np.int64 and df.call.dtype == np.int64 and df.value.dtype == np.float64
    assert df.value.isna().any()  # the NaN step is recorded, not dropped


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_is_exact(records, tmp_path, suffix):
    df = records.to_pandas()
    path = records.save(tmp_path / f"sub/run{suffix}")
    back = netviz.load(path)
    pd.testing.assert_frame_equal(back, df)


def test_root_module_name_survives_csv(tmp_path):
    lin = nn.Linear(2, 2)
    with netviz.watch(lin) as mon:
        lin(torch.ones(1, 2)).sum().backward()
        mon.step()
    back = netviz.load(mon.save(tmp_path / "r.csv"))
    assert set(back.module) == {""}


def test_csv_is_text_and_loading_never_unpickles(tmp_path, records):
    path = records.save(tmp_path / "r.csv")
    head = path.read_text().splitlines()[0]
    assert head == ",".join(COLUMNS)


finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)
special = st.sampled_from([float("nan"), float("inf"), float("-inf"), 0.0])


@given(st.lists(st.one_of(finite, special), min_size=1, max_size=40), st.integers(1, 4))
def test_moments_match_direct_computation_and_merge_over_parts(values, parts):
    x = torch.tensor(values, dtype=torch.float32)
    got = dict(
        zip(
            ("mean", "std", "min", "max", "abs_mean", "zero_frac", "nonfinite_frac", "numel"),
            finalize_moments(tensor_moments(x).numpy()[None])[0],
        )
    )
    xd = x.double()
    fin = xd[torch.isfinite(xd)]
    assert got["numel"] == len(values)
    assert got["zero_frac"] == pytest.approx((xd == 0).double().mean().item())
    assert got["nonfinite_frac"] == pytest.approx((~torch.isfinite(xd)).double().mean().item())
    if fin.numel():
        assert got["mean"] == pytest.approx(fin.mean().item(), rel=1e-5, abs=1e-4)
        assert got["std"] == pytest.approx(fin.std(correction=0).item(), rel=1e-4, abs=1e-3)
        assert got["min"] == fin.min().item() and got["max"] == fin.max().item()
        assert got["abs_mean"] == pytest.approx(fin.abs().mean().item(), rel=1e-5, abs=1e-4)
    else:
        assert np.isnan([got["mean"], got["std"], got["min"], got["max"], got["abs_mean"]]).all()
    # merging the moments of chunks equals the moments of the whole
    chunks = [c for c in torch.tensor_split(x, parts) if c.numel()]
    merged = merge_moments(np.stack([tensor_moments(c).numpy()[None] for c in chunks]))
    whole = finalize_moments(tensor_moments(x).numpy()[None])
    np.testing.assert_allclose(finalize_moments(merged), whole, rtol=1e-4, atol=1e-3)


def test_moment_layout_is_documented():
    assert MOMENT_FIELDS == (
        "numel",
        "nonfinite",
        "sum",
        "centre",
        "dev",
        "min",
        "max",
        "l1",
        "nonzero",
    )


@given(
    st.lists(st.one_of(finite, special), min_size=1, max_size=60),
    st.integers(1, 16),
)
def test_chunked_moments_with_scratch_equal_whole_tensor_moments(values, chunk):
    from netviz.capture.stats import Scratch

    x = torch.tensor(values, dtype=torch.float32).reshape(-1, 1)
    whole = finalize_moments(tensor_moments(x).numpy()[None])
    chunked = finalize_moments(tensor_moments(x, Scratch(chunk=chunk)).numpy()[None])
    np.testing.assert_allclose(chunked, whole, rtol=1e-4, atol=1e-3)


def test_scratch_rejects_bad_chunk():
    from netviz.capture.stats import Scratch

    with pytest.raises(ValueError, match="`chunk` must be >= 1"):
        Scratch(chunk=0)


def test_extremes_are_exact_with_nonfinite_values_and_equal_finite_ones():
    # the float32 mean of equal values can round below them: it must never be
    # reported as the minimum (regression: found by Hypothesis in CI)
    v = 171.18637084960938
    x = torch.tensor([v, v, v, float("nan")], dtype=torch.float32)
    got = finalize_moments(tensor_moments(x).numpy()[None])[0]
    assert got[2] == torch.tensor(v, dtype=torch.float32).item()
    assert got[3] == torch.tensor(v, dtype=torch.float32).item()


def test_grid_append_gives_one_row_per_kept_cell():
    from netviz.records import RecordStore

    values = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, np.nan]])
    keep = np.array([[True, False, True], [True, True, True]])
    keys = {
        "module": ["a", "b.c"],
        "call": [0, 1],
        "phase": [0, 1],
        "micro": [2, -1],
        "order": [1, 0],
    }
    grid = RecordStore()
    grid.append_grids(7, [(keys, "p", ("x", "y", "z"), values, keep, -1)], skipped=True)
    want = pd.DataFrame(
        {
            "step": [7] * 5,
            "skipped": [True] * 5,
            "phase": ["train", "train", "eval", "eval", "eval"],
            "micro": [2, 2, -1, -1, -1],
            "module": ["a", "a", "b.c", "b.c", "b.c"],
            "call": [0, 0, 1, 1, 1],
            "order": [1, 1, 0, 0, 0],
            "probe": ["p"] * 5,
            "stat": ["x", "z", "x", "y", "z"],
            "value": [1.0, 3.0, 4.0, 5.0, np.nan],
        }
    )
    pd.testing.assert_frame_equal(grid.to_pandas(), validate_frame(want))
    assert len(grid) == 5 and grid.steps == [7]


def _unreadable(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "data", "kind", "cause"),
    [
        ("run.parquet", b"PAR1 but not really", "Parquet", "ArrowInvalid"),
        ("run.csv", b'step,module\n0,"never closed\n', "CSV", "ParserError"),
        ("run.csv", b"", "CSV", "EmptyDataError"),
        ("run.csv", b"\xff\xfe\x00\x81binary", "CSV", "UnicodeDecodeError"),
    ],
)
def test_a_file_its_reader_cannot_parse_is_a_record_error_naming_it(
    tmp_path, name, data, kind, cause
):
    path = _unreadable(tmp_path, name, data)
    with pytest.raises(netviz.RecordError) as info:
        netviz.load(path)
    message = str(info.value)
    assert str(path) in message and f"not a readable {kind} file" in message
    assert type(info.value.__cause__).__name__ == cause  # the reader's own error, chained
    assert isinstance(info.value, ValueError)


def test_load_metadata_of_a_corrupt_parquet_file_is_a_record_error(tmp_path):
    from netviz.records.io import load_metadata

    path = _unreadable(tmp_path, "run.parquet", b"not parquet")
    with pytest.raises(netviz.RecordError, match="not a readable Parquet file"):
        load_metadata(path)


def test_a_corrupt_part_of_a_parquet_folder_is_a_record_error(tmp_path):
    folder = tmp_path / "run.parquet"
    folder.mkdir()
    (folder / "part-00000.parquet").write_bytes(b"truncated")
    with pytest.raises(netviz.RecordError, match="not a readable Parquet file"):
        netviz.load(folder)
