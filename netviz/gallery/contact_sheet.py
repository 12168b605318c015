"""The gallery's ``index.html``: one card per figure with its ID, title and lecture topic.

The page is static, self-contained (inline CSS, relative links to the figure
files beside it) and deterministic (no dates), so it is byte-identical across
builds like the figures.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Sequence
from pathlib import Path

from netviz.gallery.builder import FigureResult
from netviz.gallery.catalog import Script
from netviz.gallery.texmath import tex_to_html

__all__ = ["SECTIONS", "existing_files", "plain_text", "summary_html", "write_index"]

#: Catalogue sections (docs/FIGURES): letter -> heading.
SECTIONS = {
    "A": "Perceptrons and MLPs",
    "B": "Depth, gradients, initialisation",
    "C": "Optimisation",
    "D": "Convolutions",
    "E": "Sequences and attention",
    "F": "Representation learning",
}

_CSS = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 1em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em; background: #fff; }
.card img { width: 100%; height: auto; display: block; }
.card h3 { font-size: 1.05em; margin: 0.4em 0 0.2em; }
.topic { color: #555; font-size: 0.9em; margin: 0 0 0.3em; }
.summary { font-size: 0.85em; color: #333; }
.failed { border-color: #d55e00; background: #fff6f0; }
.failed pre { white-space: pre-wrap; font-size: 0.75em; color: #a33; }
.extra { font-size: 0.85em; }
.math { font-family: "DejaVu Serif", "Cambria Math", "STIX Two Math", serif; white-space: nowrap; }
.math sub, .math sup { font-size: 0.75em; } .unbuilt { color: #555; font-size: 0.9em; }
"""


def plain_text(rst: str) -> str:
    """Strip the reStructuredText markup of a docstring summary for the HTML page.

    >>> plain_text("The bowl :math:`L(w) = w^2` with ``torch.optim.SGD``, *exactly*.")
    'The bowl L(w) = w^2 with torch.optim.SGD, exactly.'
    """
    text = re.sub(r":[\w-]+:`([^`]*)`", r"\1", rst)
    text = re.sub(r"``([^`]*)``", r"\1", text)
    return re.sub(r"\*([^*\s][^*]*)\*", r"\1", text)


def summary_html(rst: str) -> str:
    """A docstring summary as HTML: TeX math (``:math:`...```) rendered as Unicode text with
    sub- and superscripts (:func:`~netviz.gallery.texmath.tex_to_html`), ````code```` as
    ``<code>``, ``*emphasis*`` as ``<em>``, other roles as their text.

    >>> summary_html("The bowl :math:`L(w) = w^2` with ``torch.optim.SGD``, *exactly*.")
    'The bowl <span class="math"><i>L</i>(<i>w</i>) = <i>w</i><sup>2</sup></span> with <code>torch.optim.SGD</code>, <em>exactly</em>.'
    """
    out = []
    for i, part in enumerate(re.split(r":math:`([^`]*)`", rst)):
        if i % 2:
            out.append(f'<span class="math">{tex_to_html(part)}</span>')
            continue
        text = html.escape(re.sub(r":[\w-]+:`([^`]*)`", r"\1", part), quote=False)
        text = re.sub(r"``([^`]*)``", r"<code>\1</code>", text)
        out.append(re.sub(r"\*([^*\s][^*]*)\*", r"<em>\1</em>", text))
    return "".join(out)


def existing_files(out: str | os.PathLike, stem: str, fmt: str) -> list[str]:
    """Names of figure files of ``stem`` already in ``out`` (``stem.fmt``, ``stem_2.fmt``, ...)."""
    out = Path(out)
    if not out.is_dir():
        return []
    pattern = re.compile(rf"^{re.escape(stem)}(?:_(\d+))?\.{re.escape(fmt)}$")
    found = []
    for p in out.iterdir():
        m = pattern.match(p.name)
        if m:
            found.append((int(m.group(1) or 1), p.name))
    return [name for _, name in sorted(found)]


def _card(script: Script, files: list[str], error: str | None, fmt: str) -> str:
    e = html.escape
    head = f"<h3>{e(script.id)} \u00b7 {e(script.title)}</h3>"
    topic = f'<p class="topic">Lecture topic: {e(script.topic)}</p>'
    summary = f'<p class="summary">{summary_html(script.summary)}</p>' if script.summary else ""
    if error is not None:
        body = f"<p><b>Build failed.</b></p><pre>{e(error)}</pre>"
        return f'<div class="card failed" id="{e(script.id)}">{head}{topic}{body}{summary}</div>'
    if not files:
        body = "<p><i>Not built yet.</i></p>"
        return f'<div class="card" id="{e(script.id)}">{head}{topic}{body}{summary}</div>'
    first, extra = files[0], files[1:]
    if fmt == "pdf":
        img = f'<p><a href="{e(first)}">{e(first)}</a></p>'
    else:
        img = f'<a href="{e(first)}"><img src="{e(first)}" alt="{e(script.id)} {e(script.title)}" loading="lazy"></a>'
    more = ""
    if extra:
        links = ", ".join(f'<a href="{e(f)}">{e(f)}</a>' for f in extra)
        more = f'<p class="extra">More figures: {links}</p>'
    return f'<div class="card" id="{e(script.id)}">{head}{topic}{img}{more}{summary}</div>'


def _headline(scripts: Sequence[Script], results: Sequence[FigureResult], unbuilt: list) -> str:
    """What the page shows: all figures, or (``--only``) how many were built now."""
    total, now = len(scripts), len(results)
    failed = sum(not r.ok for r in results)
    fail = f", {failed} failed" if failed else ""
    if not results or now == total:
        shown = total - len(unbuilt)
        return f"{total} figures{fail}." if shown == total else f"{shown} of {total} figures{fail}."
    earlier = total - now - len(unbuilt)
    text = f"{now} of {total} figures built in this run{fail}"
    if earlier:
        text += f"; {earlier} shown from an earlier build"
    return text + (f"; {len(unbuilt)} not built yet." if unbuilt else ".")


def write_index(
    out: str | os.PathLike,
    scripts: Sequence[Script],
    results: Sequence[FigureResult] = (),
    fmt: str = "png",
    title: str = "netviz lecture-figure gallery",
) -> Path:
    """Write ``out/index.html`` for ``scripts``; return its path.

    A script built now shows its new files or its error (from ``results``);
    one not built now shows the files a previous build left in ``out``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    by_id = {r.script.id: r for r in results}
    cards: dict[str, tuple[list[str], str | None]] = {}
    for s in scripts:
        res = by_id.get(s.id)
        if res is not None and not res.ok:
            cards[s.id] = ([], res.error)
        else:
            cards[s.id] = (res.files if res is not None else existing_files(out, s.stem, fmt), None)
    unbuilt = [s for s in scripts if not cards[s.id][0] and cards[s.id][1] is None]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{_headline(scripts, results, unbuilt)} Regenerated from code with "
        "<code>netviz gallery build</code>; click a figure for the full-size file.</p>",
    ]
    if unbuilt:
        names = ", ".join(
            f'<span title="{html.escape(s.title)}">{html.escape(s.id)}</span>' for s in unbuilt
        )
        parts.append(f'<p class="unbuilt">Not built yet: {names}.</p>')
    section = None
    for s in (s for s in scripts if s not in unbuilt):
        letter = s.id[0]
        if letter != section:
            if section is not None:
                parts.append("</div>")
            heading = SECTIONS.get(letter, "")
            parts.append(
                f"<h2>{letter}. {html.escape(heading)}</h2>" if heading else f"<h2>{letter}</h2>"
            )
            parts.append('<div class="grid">')
            section = letter
        files, error = cards[s.id]
        parts.append(_card(s, files, error, fmt))
    if section is not None:
        parts.append("</div>")
    parts.append("</body></html>\n")
    path = out / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
