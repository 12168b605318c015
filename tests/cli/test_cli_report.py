"""``netviz report RECORDS -o FILE`` on a saved real run, and its errors."""

from __future__ import annotations

import subprocess
import sys

import torch
from torch import nn

import netviz
from netviz.cli import main


def saved_run(path):
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with netviz.watch(
        net, probes=("grad_norm", "activation_stats", "weight_stats"), every=2, optimizer=opt
    ) as mon:
        for _ in range(6):
            opt.zero_grad()
            net(torch.randn(16, 4)).pow(2).mean().backward()
            opt.step()
    return mon.save(path)


def test_cli_writes_a_report_with_the_files_metadata(tmp_path, capsys):
    records = saved_run(tmp_path / "run.parquet")
    out = tmp_path / "sub" / "r.html"
    rc = main(["report", str(records), "-o", str(out), "--meta", "dataset=random", "--no-script"])
    assert rc == 0
    text = out.read_text()
    assert "<dt>every</dt><dd>2</dd>" in text  # from the Parquet metadata, not inferred
    assert "<dt>steps run</dt><dd>6</dd>" in text
    assert "<dt>dataset</dt><dd>random</dd>" in text
    assert "<script" not in text and 'id="updates"' in text
    captured = capsys.readouterr()
    assert "Reading" in captured.err and f"wrote {out}" in captured.out


def test_cli_errors_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing.parquet"), "-o", str(tmp_path / "x.html")]) == 2
    assert "no record file" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["report", str(bad), "-o", str(tmp_path / "x.html")]) == 2
    assert "missing column" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_cli_help_lists_report():
    out = subprocess.run([sys.executable, "-m", "netviz", "--help"], capture_output=True, text=True)
    assert "report" in out.stdout
