"""The contact sheet: TeX math as offline HTML, and what an ``--only`` build says."""

from __future__ import annotations

import html.parser
import re

import pytest

from netviz.gallery.catalog import default_src, find_scripts
from netviz.gallery.contact_sheet import summary_html, write_index
from netviz.gallery.texmath import tex_to_html


@pytest.mark.parametrize(
    ("tex", "expected"),
    [
        (
            r"w \leftarrow w + \eta\,(t - \hat y)\,x",
            "<i>w</i> ← <i>w</i> + η\u2009(<i>t</i> − <i>y</i>\u0302)\u2009<i>x</i>",
        ),
        (r"w \sim \mathcal N(0, 0.01^2)", "<i>w</i> ∼ 𝒩(0, 0.01<sup>2</sup>)"),
        (r"\mathrm{var}(w) = 2/\mathrm{fan_{in}}", "var(<i>w</i>) = 2/fan<sub>in</sub>"),
        (r"\sqrt{d_k} = 8", "√(<i>d</i><sub><i>k</i></sub>) = 8"),
        (r"\lambda_0 e^{-kt}", "λ<sub>0</sub> <i>e</i><sup>−<i>kt</i></sup>"),
        (
            r"\left\lfloor \frac{W + 2P}{S} \right\rfloor + 1",
            "⌊ (<i>W</i> + 2<i>P</i>)/<i>S</i> ⌋ + 1",
        ),
        (r"\mathbb{R}^{4}", "ℝ<sup>4</sup>"),
        (r"\operatorname{diag}(p) - p p^\top", "diag(<i>p</i>) − <i>p</i> <i>p</i><sup>⊤</sup>"),
        (r"a < b", "<i>a</i> &lt; <i>b</i>"),  # escaped
        (r"\unknowncmd x", "unknowncmd <i>x</i>"),
    ],
)
def test_tex_to_html_by_hand(tex, expected):
    assert tex_to_html(tex) == expected


class Balanced(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag, tag


def test_every_gallery_summary_renders_without_tex():
    scripts = find_scripts(default_src())
    with_math = [s for s in scripts if ":math:`" in s.summary]
    assert len(with_math) >= 20
    for s in scripts:
        out = summary_html(s.summary)
        assert "\\" not in out and ":math:" not in out and "`" not in out, (s.id, out)
        parser = Balanced()
        parser.feed(out)
        assert parser.stack == [], s.id


def write(folder, sid, title):
    (folder / f"{sid}_x.py").write_text(
        f'"""\n{sid} · {title}\n{"=" * (len(sid) + 3 + len(title))}\n\n'
        '*Lecture topic:* Testing (notes 000)\n\nThe bowl :math:`L(w) = w^2`.\n"""\n',
        encoding="utf-8",
    )


def test_only_build_says_how_many_were_built(tmp_path):
    from netviz.gallery.builder import FigureResult

    src = tmp_path / "src"
    src.mkdir()
    for sid in ("A1", "A2", "B1"):
        write(src, sid, f"Figure {sid}")
    scripts = find_scripts(src)
    out = tmp_path / "out"
    out.mkdir()
    (out / "A1_x.png").write_bytes(b"")
    results = [FigureResult(scripts[0], True, 0.1, files=["A1_x.png"])]
    page = write_index(out, scripts, results).read_text(encoding="utf-8")
    assert "1 of 3 figures built in this run; 2 not built yet." in page
    assert re.search(
        r"Not built yet: <span title=\"Figure A2\">A2</span>, <span[^>]*>B1</span>\.", page
    )
    assert len(re.findall(r'<div class="card', page)) == 1
    assert '<span class="math"><i>L</i>(<i>w</i>) = <i>w</i><sup>2</sup></span>' in page
    (out / "B1_x.png").write_bytes(b"")  # left by an earlier build
    page = write_index(out, scripts, results).read_text(encoding="utf-8")
    assert (
        "1 of 3 figures built in this run; 1 shown from an earlier build; 1 not built yet." in page
    )
    full = [FigureResult(s, True, 0.1, files=[f"{s.id}_x.png"]) for s in scripts]
    page = write_index(out, scripts, full).read_text(encoding="utf-8")
    assert "<p>3 figures. Regenerated" in page and "Not built yet" not in page
