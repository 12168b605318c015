"""Reports of a run: one self-contained HTML file, and notebook displays.

:func:`report` (also ``netviz.report``) writes the file; :func:`summarize`
gives a per-module summary that displays itself in Jupyter. This package
sits on top of analysis and plot; nothing below imports it, except the
notebook display of a :class:`netviz.Monitor` (``netviz.reporting.display``,
which reads records only). The names are imported on first use, so importing
``netviz.reporting.display`` runs nothing of the report builder.

(It is not called ``netviz.report`` because a submodule of that name would
replace the function ``netviz.report`` in the package namespace when imported.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netviz._leaf import lazy_names

if TYPE_CHECKING:  # for type checkers only; at run time see __getattr__
    from netviz.reporting.build import SECTIONS, build_html, report
    from netviz.reporting.display import RecordsSummary, summarize

__all__ = ["SECTIONS", "RecordsSummary", "build_html", "report", "summarize"]

_LAZY: dict[str, str] = {
    "SECTIONS": "netviz.reporting.build",
    "RecordsSummary": "netviz.reporting.display",
    "build_html": "netviz.reporting.build",
    "report": "netviz.reporting.build",
    "summarize": "netviz.reporting.display",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
