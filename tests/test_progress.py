"""Progress bars: drawn only on a terminal, with tqdm, and TQDM_DISABLE unset."""

from __future__ import annotations

import io

import pytest

from netviz._progress import bar_enabled, progress


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_no_bar_off_a_terminal(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert not bar_enabled(io.StringIO())
    assert not progress(3, "x", file=io.StringIO()).drawn


@pytest.mark.parametrize("value", ["1", "true", "True", "yes"])
def test_tqdm_disable_is_respected(monkeypatch, value):
    monkeypatch.setenv("TQDM_DISABLE", value)
    assert not bar_enabled(FakeTerminal())


def test_bar_on_a_terminal(monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.setenv("TQDM_DISABLE", "0")
    term = FakeTerminal()
    assert bar_enabled(term) and not bar_enabled(term, enabled=False)
    with progress(4, "gallery", file=term) as bar:
        assert bar.drawn
        bar.update(1, "A1")
        bar.note("A2")  # refreshes at once
    assert "gallery" in term.getvalue() and "1/4" in term.getvalue() and "A2" in term.getvalue()


def test_write_prints_without_a_bar(capsys, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    with progress(1, "x", file=io.StringIO()) as bar:
        bar.write("hello")
        bar.update()
    assert capsys.readouterr().out == "hello\n"


def test_multi_batch_diagnose_shows_its_batches_on_a_terminal(monkeypatch):
    pytest.importorskip("tqdm")
    import sys

    import torch

    import netviz

    monkeypatch.setenv("TQDM_DISABLE", "0")
    term = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", term)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    batches = [(torch.randn(8, 4), torch.randint(0, 2, (8,))) for _ in range(3)]
    netviz.diagnose(net, batches)
    out = term.getvalue()
    assert "netviz diagnose: batches" in out and "0/3" in out  # a bar of the 3 batches
    term2 = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", term2)
    netviz.diagnose(net, batches[0][0], batches[0][1])  # one batch: no bar
    assert "netviz diagnose" not in term2.getvalue()
