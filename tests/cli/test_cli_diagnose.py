"""``netviz diagnose``: in-process through ``netviz.cli.main`` and once as a subprocess."""

from __future__ import annotations

import importlib.util
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


def test_a_model_that_raises_exits_3_naming_the_module(tmp_path, capsys):
    f = tmp_path / "broken.py"
    f.write_text(
        "import torch\n"
        "def build():\n"
        "    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(5, 2))\n"
        "    return net, torch.randn(8, 4)\n"
    )
    assert main(["diagnose", str(f), "--fail-on", "warning"]) == 3
    err = capsys.readouterr().err
    assert "forward raised RuntimeError in `2` (Linear)" in err
    assert "Traceback" not in err and len(err.splitlines()) <= 3


def test_a_build_that_raises_or_returns_a_bad_batch_exits_2(tmp_path, capsys):
    f = tmp_path / "nobuild.py"
    f.write_text("def build():\n    raise OSError('no data here')\n")
    assert main(["diagnose", str(f)]) == 2
    assert "no data here" in capsys.readouterr().err
    g = tmp_path / "badbatch.py"
    g.write_text("import torch\ndef build():\n    return torch.nn.Linear(4, 2), 3\n")
    assert main(["diagnose", str(g)]) == 2
    assert "`inputs` must be" in capsys.readouterr().err


def test_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["diagnose", "--help"])
    out = capsys.readouterr().out
    for code in ("0", "1", "2", "3"):
        assert f"\n  {code}  " in out
    assert "the model raised" in out


def test_figure_shows_the_statistic_the_report_quotes(tmp_path, capsys):
    import matplotlib.pyplot as plt

    from netviz import diagnose

    spec = importlib.util.spec_from_file_location("s7", SIGMOID7)
    s7 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(s7)
    report = diagnose(*s7.build())
    ax = report.plot()
    assert ax.get_ylabel() == "gradient RMS"
    f = report.findings[0]
    # the plotted points are the RMS values the message quotes
    ys = dict(zip([t.get_text() for t in ax.get_xticklabels()], ax.get_lines()[0].get_ydata()))
    assert ys["inp"] == pytest.approx(f.evidence["input_side"])
    assert ys["out"] == pytest.approx(f.evidence["output_side"])
    plt.close(ax.figure)
    assert main(["diagnose", SIGMOID7, "--out", str(tmp_path)]) == 0
    assert (tmp_path / "gradient_flow.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()


def test_docs_nan_example_prints_what_the_docs_show(capsys):
    doc = (ROOT / "docs" / "diagnose.md").read_text()
    section = doc.split("## A NaN during training")[1]
    code = section.split("```python\n")[1].split("```")[0]
    exec(compile(code, "diagnose.md", "exec"), {"__name__": "__docs__"})
    out = capsys.readouterr().out.strip()
    assert out.startswith("netviz diagnosis of records (8 recorded steps)")
    assert out in doc
