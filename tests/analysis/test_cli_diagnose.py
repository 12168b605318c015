"""``netviz diagnose``: in-process through ``netviz.cli.main`` and once as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from netviz.cli import main
from netviz.cli.diagnose import load_target

ROOT = Path(__file__).resolve().parents[2]
SIGMOID7 = str(ROOT / "examples" / "sigmoid7.py")


def test_file_target_prints_the_report(capsys):
    assert main(["diagnose", SIGMOID7]) == 0
    out = capsys.readouterr().out
    assert out.startswith("netviz diagnosis of SevenLayer")
    assert "[WARNING] vanishing gradients at `inp`" in out


def test_named_function_and_figures(tmp_path, capsys):
    assert (
        main(["diagnose", f"{SIGMOID7}:build_skip", "--out", str(tmp_path), "--format", "svg"]) == 0
    )
    out = capsys.readouterr().out
    assert "No problems found" in out
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["gradient_flow.svg"]
    assert (tmp_path / "gradient_flow.svg").read_text().lstrip().startswith("<?xml")


def test_fail_on_sets_the_exit_status(capsys):
    assert main(["diagnose", SIGMOID7, "--fail-on", "warning"]) == 1
    assert main(["diagnose", SIGMOID7, "--fail-on", "error"]) == 0  # a warning only
    assert main(["diagnose", f"{SIGMOID7}:build_skip", "--fail-on", "warning"]) == 0
    capsys.readouterr()


def test_module_target_and_dict_return(tmp_path, monkeypatch, capsys):
    pkg = tmp_path / "nvdiag_target_pkg.py"
    pkg.write_text(
        "import torch\n"
        "def make():\n"
        "    net = torch.nn.Sequential(torch.nn.Linear(4, 2))\n"
        "    return {'model': net, 'inputs': torch.randn(3, 4)}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["diagnose", "nvdiag_target_pkg:make", "--eval"]) == 0
    out = capsys.readouterr().out
    assert "eval mode" in out


@pytest.mark.parametrize(
    ("target", "match"),
    [
        ("does/not/exist.py", "does not exist"),
        (f"{SIGMOID7}:nope", "no function 'nope'"),
        ("no_such_module_xyz:build", "No module named"),
    ],
)
def test_bad_targets_exit_2_with_a_message(target, match, capsys):
    assert main(["diagnose", target]) == 2
    assert match in capsys.readouterr().err


def test_bad_return_value_exits_2(tmp_path, capsys):
    f = tmp_path / "bad.py"
    f.write_text("def build():\n    return 3\n")
    assert main(["diagnose", str(f)]) == 2
    assert "must return (model, inputs" in capsys.readouterr().err


def test_load_target_default_function_name():
    assert load_target(SIGMOID7).__name__ == "build"


@pytest.mark.slow
def test_subprocess_entry_point():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "netviz", "diagnose", SIGMOID7, "--fail-on", "warning"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "vanishing gradients at `inp`" in proc.stdout


def test_recurrent_target_writes_the_timestep_figure(tmp_path, capsys):
    f = tmp_path / "rnn_target.py"
    f.write_text(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.rnn = torch.nn.RNN(2, 8)\n"
        "        self.head = torch.nn.Linear(8, 2)\n"
        "    def forward(self, x):\n"
        "        return self.head(self.rnn(x)[0][-1])\n"
        "def build():\n"
        "    torch.manual_seed(0)\n"
        "    return Net(), torch.randn(12, 4, 2), torch.randint(0, 2, (4,))\n"
    )
    assert main(["diagnose", str(f), "--out", str(tmp_path / "fig")]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in (tmp_path / "fig").iterdir()) == [
        "gradient_flow.png",
        "timestep_gradients.png",
    ]


def test_docs_show_the_real_output(capsys):
    doc = (ROOT / "docs" / "diagnose.md").read_text()
    for target in (SIGMOID7, f"{SIGMOID7}:build_skip"):
        main(["diagnose", target])
        assert capsys.readouterr().out.strip() in doc
