"""Image-level checks of the gallery figures fixed for slides (issue 18).

Each listed figure is run in fast mode and its laid-out artists are inspected
with :func:`figure_layout.layout_problems` (matplotlib's own window extents): no text
outside the figure, no overlapping text boxes, every axis with tick labels
labelled. A self-test shows that the checker finds each kind of problem.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from figure_layout import layout_problems

#: Figures checked, with the axes (indices in fig.get_axes()) whose tick labels
#: are self-explanatory, per figure number.
FIXED: dict[str, dict[int, tuple[int, ...]]] = {
    sid: {}
    for sid in (
        "A1", "A3", "A5", "B1", "B3", "B6", "C1", "C2", "C4", "C5",
        "D3", "D4", "D5", "D7", "D11", "D12", "D13", "E4", "E6", "E7", "E8", "F1",
    )
}  # fmt: skip


def test_the_checker_finds_each_kind_of_problem():
    fig, (a, b) = plt.subplots(1, 2, figsize=(4, 2))
    a.plot([0, 1], [0, 1])
    a.set_xlabel("x")  # no y label
    b.set_xlabel("time")
    b.set_ylabel("loss")
    b.text(0.5, 0.5, "here", transform=b.transAxes)
    b.text(0.5, 0.5, "there", transform=b.transAxes)  # on top of "here"
    fig.text(0.99, 0.5, "cut off at the edge")
    problems = layout_problems(fig)
    assert any("'here' overlaps" in p and "'there'" in p for p in problems), problems
    assert any("'cut off at the edge' sticks out" in p for p in problems), problems
    assert any("axes 0" in p and "y axis has no label" in p for p in problems), problems
    assert not any("axes 1" in p and "no label" in p for p in problems), problems
    assert layout_problems(fig, unlabelled_ok=[0]) != problems


@pytest.mark.slow
@pytest.mark.parametrize("sid", sorted(FIXED))
def test_fixed_figure_has_no_layout_problems(run_gallery, sid):
    run_gallery(sid)
    figures = [plt.figure(n) for n in plt.get_fignums()]
    assert figures
    for k, fig in enumerate(figures, start=1):
        problems = layout_problems(fig, unlabelled_ok=FIXED[sid].get(k, ()))
        assert problems == [], f"{sid} figure {k}: {problems}"
