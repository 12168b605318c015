"""Notebook display of a :class:`~netviz.Monitor` and of a records summary.

``_repr_html_`` returns plain HTML (a table, inline styles only, no script:
notebooks that are not trusted, GitHub and nbviewer strip scripts);
``_repr_pretty_`` gives IPython consoles the same as text.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from netviz.reporting.data import run_facts, summary_table
from netviz.reporting.page import e

__all__ = ["RecordsSummary", "monitor_html", "monitor_text", "summarize"]

#: Rows shown by the notebook display of a summary (the rest are counted).
MAX_ROWS = 40

_TABLE = 'style="border-collapse:collapse;font-size:0.9em"'
_CELL = 'style="text-align:left;padding:0.1em 0.6em;border-bottom:1px solid #ddd"'


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _html_table(columns: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th {_CELL}>{e(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td {_CELL}>{e(_fmt(v))}</td>" for v in r) + "</tr>" for r in rows
    )
    return f"<table {_TABLE}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _text_table(columns: list[str], rows: list[list[Any]]) -> str:
    cells = [columns] + [[_fmt(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


class RecordsSummary:
    """Per module and main statistic: last, min and max over a run (:func:`summarize`).

    Attributes
    ----------
    table
        The summary as a DataFrame (:func:`netviz.reporting.data.summary_table`).
    facts
        ``(label, value)`` rows about the run (steps, probes, phases, ...).
    """

    def __init__(self, table: pd.DataFrame, facts: list[tuple[str, str]]):
        self.table = table
        self.facts = facts

    def _rows(self) -> tuple[list[str], list[list[Any]]]:
        columns = [c for c in self.table.columns if c != "order"]
        rows = self.table[columns].head(MAX_ROWS).values.tolist()
        return columns, rows

    def _more(self) -> str:
        n = len(self.table) - MAX_ROWS
        return f"... {n} more rows (see .table)" if n > 0 else ""

    def _repr_html_(self) -> str:
        facts = "; ".join(f"<b>{e(k)}</b>: {e(v)}" for k, v in self.facts)
        more = f"<p>{e(self._more())}</p>" if self._more() else ""
        if self.table.empty:
            return f"<div><p>{facts}</p><p>No main statistics recorded.</p></div>"
        return f"<div><p>{facts}</p>{_html_table(*self._rows())}{more}</div>"

    def __str__(self) -> str:
        facts = "\n".join(f"{k}: {v}" for k, v in self.facts)
        if self.table.empty:
            return facts + "\nNo main statistics recorded."
        more = self._more()
        return f"{facts}\n\n{_text_table(*self._rows())}" + (f"\n{more}" if more else "")

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text("RecordsSummary(...)" if cycle else str(self))

    def __repr__(self) -> str:
        return f"<netviz RecordsSummary: {len(self.table)} rows>"


def summarize(records: Any) -> RecordsSummary:
    """A :class:`RecordsSummary` of a record table, a Monitor or a Report (displays in notebooks).

    >>> df = pd.DataFrame({"step": [0, 1], "module": "fc", "call": 0, "probe": "grad_norm",
    ...                    "stat": "l2", "value": [2.0, 1.0]})
    >>> print(summarize(df).table[["module", "statistic", "last", "min", "max"]].to_string(index=False))
    module    statistic  last  min  max
        fc grad_norm.l2   1.0  1.0  2.0
    """
    from netviz.reporting.inputs import read_inputs

    df, _meta, _, _ = read_inputs(records, snapshots={})
    return RecordsSummary(summary_table(df), run_facts(df, {}))


def _monitor_facts(monitor: Any) -> list[tuple[str, str]]:
    meta = monitor._report_metadata()
    facts = [
        ("state", "attached" if monitor.attached else "detached"),
        ("model", str(meta["model"])),
        ("probes", ", ".join(meta["probes"])),
        ("modules", str(len(meta["modules"] or []) or "(detached)")),
        ("steps run", str(meta["steps"])),
        ("every", str(meta["every"])),
    ]
    snaps = monitor.snapshots()
    if snaps:
        facts.append(("steps with snapshots", str(len(snaps))))
    return facts


def monitor_html(monitor: Any) -> str:
    """The notebook display of a Monitor: its state and the summary of its records."""
    facts = _html_table(["", ""], [[k, v] for k, v in _monitor_facts(monitor)])
    summary = summarize(monitor)
    body = summary._repr_html_() if len(summary.table) else "<p>No records yet.</p>"
    return f"<div><p><b>netviz.Monitor</b></p>{facts}{body}</div>"


def monitor_text(monitor: Any) -> str:
    """The console display of a Monitor (IPython's pretty printer)."""
    lines = [repr(monitor)]
    summary = summarize(monitor)
    if len(summary.table):
        lines += ["", str(summary)]
    return "\n".join(lines)
