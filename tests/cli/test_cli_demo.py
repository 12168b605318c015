"""``netviz demo`` writes records, a figure and a report; ``netviz`` without a command helps."""

from __future__ import annotations

import pytest

import netviz
from netviz.cli import main


def test_demo_writes_figure_records_and_report(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--steps", "20"]) == 0
    df = netviz.load(tmp_path / "d" / "records.csv")
    assert sorted(df.step.unique().tolist()) == [0, 5, 10, 15]  # every=5
    assert set(df.probe) == {"grad_norm", "activation_stats", "weight_stats"}
    png = (tmp_path / "d" / "grad_norm.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "netviz diagnosis" in (tmp_path / "d" / "report.txt").read_text()
    assert "records:" in capsys.readouterr().out


def test_demo_rejects_bad_steps(tmp_path):
    with pytest.raises(SystemExit, match="--steps must be >= 1"):
        main(["demo", "--out", str(tmp_path), "--steps", "0"])


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out
