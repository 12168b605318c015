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
