"""Where plot functions draw: one Axes (:func:`get_ax`) or a grid (:func:`grid_axes`).

:class:`PlotGrid` is what every multi-axes plot function returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from netviz.errors import NetvizTypeError

if TYPE_CHECKING:
    from typing import TypeAlias

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure
    from matplotlib.gridspec import GridSpecBase

    #: Where a plot function draws: a new figure (``None``), a figure or an Axes.
    Target: TypeAlias = "Axes | Figure | SubFigure | None"

__all__ = ["PlotGrid", "get_ax", "grid_axes"]


@dataclass(frozen=True, eq=False)
class PlotGrid:
    """The axes of a multi-axes plot, as the netviz plot functions return them.

    Attributes
    ----------
    figure
        The figure (or subfigure) the grid was drawn in.
    axes
        A 2-D numpy object array of :class:`matplotlib.axes.Axes`, rows first;
        cells the plot did not use are switched off (``axis("off")``) but stay
        in the array, so ``axes.shape`` is the grid's shape.

    Examples
    --------
    >>> import torch, netviz
    >>> grid = netviz.plot.filters(torch.nn.Conv2d(1, 4, 3))
    >>> grid.axes.shape, grid.figure is grid.axes[0, 0].figure
    ((2, 2), True)
    """

    figure: Figure | SubFigure
    axes: np.ndarray

    def __iter__(self) -> Iterator[Axes]:
        """The axes in reading order (``axes.flat``), unused cells included."""
        return iter(self.axes.flat)

    def __len__(self) -> int:
        return int(self.axes.size)


def bare(ax: Axes) -> None:
    """No ticks, no frame: an image cell."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def get_ax(ax: Target = None, figsize: tuple[float, float] | None = None) -> Axes:
    """``ax`` if given, else a new figure's single axes (a Figure gives its first axes)."""
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.figure import FigureBase

    if ax is None:
        _, new = plt.subplots(figsize=figsize)
        return new
    if isinstance(ax, FigureBase):
        return ax.axes[0] if ax.axes else ax.add_subplot()
    if isinstance(ax, Axes):
        return ax
    raise NetvizTypeError(
        f"`ax` must be None, a matplotlib Axes or Figure, got {type(ax).__name__}"
    )


def grid_axes(ax: Target, rows: int, cols: int, cell: tuple[float, float] = (1.1, 1.1)) -> PlotGrid:
    """A ``(rows, cols)`` grid of new axes.

    ``ax=None``: a new figure sized to the grid; a ``Figure``: axes over the
    whole figure; an ``Axes``: its area is split into the grid (the axes
    itself is removed).
    """
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.figure import FigureBase

    if ax is None:
        size = (min(cell[0] * cols + 1.4, 14.0), min(cell[1] * rows + 1.0, 14.0))
        new = plt.figure(figsize=size)
        fig: Figure | SubFigure = new
        spec: GridSpecBase = new.add_gridspec(rows, cols)
    elif isinstance(ax, FigureBase):
        fig = ax
        spec = ax.add_gridspec(rows, cols)
    elif isinstance(ax, Axes):
        parent = ax.get_subplotspec()
        if parent is None or not isinstance(ax.figure, FigureBase):
            raise NetvizTypeError("`ax` must be a subplot (made by subplots/add_subplot) to split")
        fig = ax.figure
        spec = parent.subgridspec(rows, cols)
        ax.remove()
    else:
        raise NetvizTypeError(
            f"`ax` must be None, a matplotlib Axes or Figure, got {type(ax).__name__}"
        )
    axes = np.empty((rows, cols), dtype=object)
    for i in range(rows):
        for j in range(cols):
            axes[i, j] = fig.add_subplot(spec[i, j])
    return PlotGrid(fig, axes)
