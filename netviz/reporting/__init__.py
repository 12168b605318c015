"""Reports of a run: one self-contained HTML file, and notebook displays.

:func:`report` (also ``netviz.report``) writes the file; :func:`summarize`
gives a per-module summary that displays itself in Jupyter. This package
sits on top of analysis and plot; nothing below imports it.

(It is not called ``netviz.report`` because a submodule of that name would
replace the function ``netviz.report`` in the package namespace when imported.)
"""

from netviz.reporting.build import SECTIONS, build_html, report
from netviz.reporting.display import RecordsSummary, summarize

__all__ = ["SECTIONS", "RecordsSummary", "build_html", "report", "summarize"]
