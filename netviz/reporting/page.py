"""The report page: inline CSS, an optional small inline script, and HTML helpers.

Everything is in the one file: figures are ``data:`` URIs, there is no font,
stylesheet or script to fetch, and the page is complete with JavaScript off
(every layer's figure is shown, one below the other). The script only adds:
a selector above each group of per-layer figures (showing one at a time),
zoom on attention heads and feature maps (click), and sortable tables
(click a column head).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["choice_group", "figure", "page", "section", "table"]

CSS = """
:root { --fg: #222; --muted: #555; --line: #ddd; --bad: #b00020; --warn: #9a6700; }
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; color: var(--fg);
  margin: 0 auto; max-width: 1100px; padding: 1em 1.5em 3em; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid var(--line);
  margin-top: 1.8em; } h3 { font-size: 1.05em; margin: 1em 0 0.3em; }
nav a { margin-right: 0.8em; } .muted, figcaption, .needs { color: var(--muted); font-size: 0.9em; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.2em 1.2em; }
dl.facts dt { font-weight: bold; } dl.facts dd { margin: 0; }
img.fig { max-width: 100%; height: auto; display: block; }
figure { margin: 0.6em 0 1.2em; }
.finding { border-left: 4px solid var(--line); padding: 0.3em 0.8em; margin: 0.5em 0; }
.finding.error { border-color: var(--bad); } .finding.warning { border-color: var(--warn); }
.sev { font-weight: bold; text-transform: uppercase; font-size: 0.8em; }
.error .sev { color: var(--bad); } .warning .sev { color: var(--warn); }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; white-space: pre-wrap; }
table { border-collapse: collapse; font-size: 0.85em; } th, td { border-bottom: 1px solid var(--line);
  padding: 0.2em 0.6em; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; } table.sortable th[aria-sort]::after { content: " ↕"; color: #999; }
.heads { display: flex; flex-wrap: wrap; gap: 0.6em; }
.head { text-align: center; font-size: 0.8em; color: var(--muted); }
.head img { width: 96px; height: 96px; image-rendering: pixelated; display: block; border: 1px solid var(--line);
  cursor: zoom-in; } .head.zoomed img { width: 384px; height: 384px; cursor: zoom-out; }
.picker { margin: 0.4em 0; } .picker select { font-size: 0.95em; }
.choice.hidden { display: none; }
"""

# No framework: about forty lines. Each group's first choice stays visible.
SCRIPT = """
(function () {
  document.querySelectorAll(".choices").forEach(function (group) {
    var choices = group.querySelectorAll(":scope > .choice");
    if (choices.length < 2) return;
    var label = document.createElement("label"), select = document.createElement("select");
    select.dataset.kind = group.dataset.kind;
    label.className = "picker"; label.textContent = group.dataset.label + " ";
    select.setAttribute("aria-label", group.dataset.label);
    choices.forEach(function (c) {
      var o = document.createElement("option"); o.value = c.dataset.key; o.textContent = c.dataset.key;
      select.appendChild(o);
    });
    function show() {
      choices.forEach(function (c) { c.classList.toggle("hidden", c.dataset.key !== select.value); });
    }
    select.addEventListener("change", show);
    label.appendChild(select); group.parentNode.insertBefore(label, group); show();
  });
  document.querySelectorAll(".head").forEach(function (h) {
    h.addEventListener("click", function () { h.classList.toggle("zoomed"); });
  });
  document.querySelectorAll("table.sortable").forEach(function (t) {
    t.querySelectorAll("th").forEach(function (th, i) {
      th.setAttribute("aria-sort", "none");
      th.addEventListener("click", function () {
        var body = t.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        var up = th.getAttribute("aria-sort") !== "ascending";
        function key(r) { var c = r.cells[i], v = c.dataset.v; return v !== undefined ? parseFloat(v) : c.textContent; }
        rows.sort(function (a, b) {
          var x = key(a), y = key(b), d = (typeof x === "number" && typeof y === "number") ? x - y
            : String(x).localeCompare(String(y));
          if (isNaN(d)) d = isNaN(x) ? 1 : -1;
          return up ? d : -d;
        });
        t.querySelectorAll("th").forEach(function (o) { o.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", up ? "ascending" : "descending");
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
"""

e = html.escape


def figure(uri: str, alt: str, caption: str | None = None) -> str:
    """An inline figure (``<img>`` with a ``data:`` URI) and its caption."""
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure><img class="fig" src="{uri}" alt="{e(alt)}">{cap}</figure>'


def choice_group(label: str, items: Sequence[tuple[str, str]], kind: str) -> str:
    """Per-layer blocks ``(key, html)``: all shown without JavaScript; with it, a selector
    labelled ``label`` shows one at a time."""
    parts = [f'<div class="choices" data-kind="{e(kind)}" data-label="{e(label)}">']
    for key, body in items:
        parts.append(f'<div class="choice" data-key="{e(key)}"><h3>{e(key)}</h3>{body}</div>')
    parts.append("</div>")
    return "".join(parts)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = "" if value != value else f"{value:.4g}"
        v = "NaN" if value != value else repr(value)
        return f'<td class="num" data-v="{v}">{text}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num" data-v="{value}">{value}</td>'
    return f"<td>{e(str(value))}</td>"


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "sortable") -> str:
    """A table; numeric cells carry their value in ``data-v`` for sorting."""
    head = "".join(f"<th>{e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def section(key: str, title: str, needs: str, body: str) -> str:
    """A report section with its anchor and a note of the records it is built from."""
    return (
        f'<section id="{e(key)}" data-section="{e(key)}"><h2>{e(title)}</h2>'
        f'<p class="needs">From: {e(needs)}</p>{body}</section>'
    )


def page(title: str, sections: Sequence[tuple[str, str, str]], script: bool = True) -> str:
    """The whole document; ``sections`` are ``(key, title, html)``."""
    nav = " ".join(f'<a href="#{e(k)}">{e(t)}</a>' for k, t, _ in sections)
    js = f"<script>{SCRIPT}</script>" if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{e(title)}</h1><nav>{nav}</nav>"
        + "".join(body for _, _, body in sections)
        + f"{js}</body></html>\n"
    )
