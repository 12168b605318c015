"""Gradient and activation plots: gradient flow, activations per layer, statistics over steps.

Every function takes ``data`` first, ``ax=None`` (a new figure) or an Axes
second, everything else by keyword; it draws inside
:func:`netviz.plot.theme.style` and returns the Axes it drew on. ``modules=``
picks layers by name with the globs of :func:`netviz.watch`. Inputs are
record tables (``netviz.watch(...).to_pandas()``), a :class:`netviz.Report`, a
:class:`netviz.Monitor`, or, where stated, tensors.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from netviz.analysis.order import as_records, module_order
from netviz.errors import NetvizTypeError, NetvizValueError
from netviz.plot._axes import get_ax
from netviz.plot.theme import style
from netviz.records.selection import select_names

if TYPE_CHECKING:
    from typing import TypeAlias

    import torch
    from matplotlib.axes import Axes
    from torch import nn

    from netviz.plot._axes import Target
    from netviz.plot._types import Records

    #: A run for :func:`gradient_flow`: records, a model after ``backward()``,
    #: or ``{layer: gradient tensor}``.
    FlowData: TypeAlias = "Records | nn.Module | Mapping[str, torch.Tensor | np.ndarray]"
    Selector: TypeAlias = "str | Sequence[str] | None"

__all__ = [
    "activation_distributions",
    "gradient_flow",
    "stat_over_steps",
    "timestep_gradients",
]

#: At most this many entries per layer are drawn from a gradient tensor
#: (evenly spaced picks after sorting, so the distribution's shape is kept).
MAX_ENTRIES = 4000

#: Gradient statistics tried in order when ``stat`` is not given.
_GRAD_DEFAULTS = (("grad_norm", "l2"), ("grad_stats", "l2"))


def _is_module(x: Any) -> bool:
    try:
        from torch import nn
    except ImportError:  # pragma: no cover
        return False
    return isinstance(x, nn.Module)


def _entries(t: Any) -> np.ndarray:
    """Absolute values of a tensor's finite entries, thinned to :data:`MAX_ENTRIES`."""
    a = np.abs(np.asarray(t.detach().float().cpu() if hasattr(t, "detach") else t, dtype=float))
    a = np.sort(a[np.isfinite(a)].ravel())
    if a.size > MAX_ENTRIES:
        a = a[np.linspace(0, a.size - 1, MAX_ENTRIES).round().astype(int)]
    return a


def _grad_rows(records: pd.DataFrame, stat: str | None, probe: str | None) -> pd.DataFrame:
    if stat is None and probe is None:
        for p, s in _GRAD_DEFAULTS:
            rows = records[(records.probe == p) & (records.stat == s)]
            if len(rows):
                return rows
        raise NetvizValueError(
            "the records hold no gradient statistics: record them with "
            "netviz.watch(model, probes=['grad_norm']) (or 'grad_stats')"
        )
    rows = records
    if probe is not None:
        rows = rows[rows.probe == probe]
    if stat is not None:
        rows = rows[rows.stat == stat]
    if rows.empty:
        have = sorted(set(zip(records.probe, records.stat)))
        raise NetvizValueError(f"no records with probe={probe!r}, stat={stat!r}; available: {have}")
    return rows


def _flow_frame(data: Any, stat: str | None, probe: str | None) -> tuple[pd.DataFrame, list[str]]:
    """``(tidy frame with columns layer, value; layer order)`` of one run."""
    if _is_module(data):
        parts, order = [], []
        for name, mod in data.named_modules():
            grads = [p.grad for p in mod.parameters(recurse=False) if p.grad is not None]
            if not grads:
                continue
            vals = np.concatenate([_entries(g) for g in grads])
            order.append(name)
            parts.append(pd.DataFrame({"layer": name, "value": vals}))
        if not parts:
            raise NetvizValueError(
                "`data` is a module without gradients: call loss.backward() first "
                "(parameters with .grad None are skipped)"
            )
        return pd.concat(parts, ignore_index=True), order
    if isinstance(data, Mapping) and all(hasattr(v, "shape") for v in data.values()):
        order = [str(k) for k in data]
        parts = [pd.DataFrame({"layer": str(k), "value": _entries(v)}) for k, v in data.items()]
        return pd.concat(parts, ignore_index=True), order
    records = as_records(data, name="data")
    rows = _grad_rows(records, stat, probe)
    order = [m for m in module_order(records) if m in set(rows.module)]
    return pd.DataFrame({"layer": rows.module.to_numpy(), "value": rows.value.to_numpy()}), order


def _runs(data: Any, compare: Any, label: str | None) -> dict[str, Any]:
    runs: dict[str, Any] = {}
    if data is not None:
        runs[label or "model"] = data
    if compare is not None:
        if not isinstance(compare, Mapping):
            raise NetvizTypeError(
                f"`compare` must be a dict of label -> records, got {type(compare).__name__}"
            )
        runs.update({str(k): v for k, v in compare.items()})
    if not runs:
        raise NetvizValueError("nothing to plot: give `data` or `compare`")
    return runs


def gradient_flow(
    data: FlowData | None,
    ax: Target = None,
    *,
    compare: Mapping[str, FlowData] | None = None,
    label: str | None = None,
    stat: str | None = None,
    probe: str | None = None,
    modules: Selector = None,
) -> Axes:
    """Gradient magnitude per layer, input side on the left, on a log scale.

    The lecture's "gradient distribution with respect to layers": each layer
    gets a box over its values (recorded steps, or parameter entries), and
    runs given in ``compare`` stand side by side in their own colour. Layers
    with one value per run are drawn as connected points instead.

    Parameters
    ----------
    data
        A record table, :class:`netviz.Report` or :class:`netviz.Monitor`
        (values: one per recorded step, default statistic ``grad_norm``/``l2``,
        else ``grad_stats``/``l2``); a model after ``backward()`` (values: the
        absolute entries of each module's own parameter gradients); or a dict
        ``{layer: gradient tensor}``. ``None`` if ``compare`` holds every run.
    ax
        Axes to draw on; a new figure if ``None``.
    compare
        ``{label: data}`` of further runs of the same kinds, drawn side by side.
    label
        Legend label of ``data`` (default ``"model"``).
    stat, probe
        Which recorded statistic to draw (e.g. ``stat="abs_mean",
        probe="grad_stats"``).
    modules
        Layers to draw: a glob or list of globs over the layer names, as for
        :func:`netviz.watch` (default: all).

    Returns
    -------
    matplotlib.axes.Axes
        Layers in network order on x (tick labels are module names), the
        magnitude on a log-scaled y. Zero and non-finite values cannot be shown
        on a log scale and are left out.

    Examples
    --------
    >>> import torch, netviz
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Sigmoid(), torch.nn.Linear(8, 1))
    >>> net(torch.randn(16, 4)).sum().backward()
    >>> ax = netviz.plot.gradient_flow(net)
    >>> [t.get_text() for t in ax.get_xticklabels()], ax.get_yscale()
    (['0', '2'], 'log')
    """
    import seaborn as sns

    runs = _runs(data, compare, label)
    frames, order = [], []
    for name, run in runs.items():
        frame, run_order = _flow_frame(run, stat, probe)
        frame["run"] = name
        frames.append(frame)
        order += [m for m in run_order if m not in order]
    order = select_names(order, modules, what="the gradients")
    tidy = pd.concat(frames, ignore_index=True)
    tidy = tidy[tidy.layer.isin(order)]
    tidy = tidy[np.isfinite(tidy.value) & (tidy.value > 0)]
    if tidy.empty:
        raise NetvizValueError(
            "every gradient value is zero or non-finite; nothing to draw on a log scale"
        )
    single = tidy.groupby(["run", "layer"]).size().max() == 1
    with style():
        ax = get_ax(ax, figsize=(max(5.0, 0.7 * len(order) + 2.5), 4.0))
        common = {"data": tidy, "x": "layer", "y": "value", "order": order, "ax": ax}
        hue = {"hue": "run", "hue_order": list(runs)} if len(runs) > 1 else {}
        if single:
            sns.pointplot(**common, **hue, dodge=0.3 if hue else False, markersize=6)
        else:
            with warnings.catch_warnings():
                # seaborn 0.13 passes matplotlib's deprecated `vert=`; not ours to fix
                warnings.filterwarnings("ignore", message=".*vert: bool.*")
                sns.boxplot(**common, **hue, showfliers=False, width=0.7)
        ax.set_yscale("log")
        ax.set_xlabel("layer (input → output)")
        if _is_module(next(iter(runs.values()))):
            ax.set_ylabel("|gradient|")
        else:
            ax.set_ylabel(f"gradient {stat}" if stat else "gradient norm")
        if len(order) > 6:
            ax.tick_params(axis="x", labelrotation=45)
        legend = ax.get_legend()
        if hue and legend is not None:
            legend.set_title("")
    return ax


def activation_distributions(
    data: Mapping[str, torch.Tensor | np.ndarray] | Records,
    ax: Target = None,
    *,
    modules: Selector = None,
    bins: int = 60,
    range: tuple[float, float] | None = None,
) -> Axes:
    """Distribution of each layer's activations, one ridge per layer, input at the top.

    The cs231n initialisation figure: with a poor initialisation the
    histograms collapse to zero or pile up at the bounds of the nonlinearity
    layer after layer.

    Parameters
    ----------
    data
        ``{layer: activation tensor}`` in network order (e.g. from
        :func:`netviz.capture.activations.capture_activations`): a histogram
        per layer. Or a record table / Report with ``activation_stats``: each
        layer's mean +- std (thick) and min..max (thin) on a shared axis.
    ax
        Axes to draw on; a new figure if ``None``.
    modules
        Layers to draw: a glob or list of globs over the layer names, as for
        :func:`netviz.watch` (default: all, in network order).
    bins, range
        Histogram bins and value range (default: all values of all layers,
        or their 0.5-99.5 percentiles where the extremes lie far out). Values outside the range are not put in the
        edge bins: their counts are written at the ends of the ridge
        (``◀ n``, ``n ▶``), NaN/Inf counts likewise; a real pile-up at a bound
        inside the range (tanh saturating at ±1) stays in its bin.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import torch
    >>> acts = {"tanh1": torch.tanh(torch.randn(1000)), "tanh2": torch.tanh(3 * torch.randn(1000))}
    >>> ax = activation_distributions(acts)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['tanh1', 'tanh2']
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise NetvizValueError(f"`bins` must be a positive int, got {bins!r}")
    with style():
        if isinstance(data, Mapping):
            if not data:
                raise NetvizValueError("`data` is empty: give at least one layer's activations")
            names = select_names(data, modules, what="the activations")
            picked = {k: data[k] for k in names}
            return _ridges(picked, get_ax(ax, figsize=(7.0, 0.6 * len(picked) + 1.5)), bins, range)
        records = as_records(data, name="data")
        rows = records[records.probe == "activation_stats"]
        if rows.empty:
            raise NetvizValueError(
                "the records hold no 'activation_stats' rows: record them with "
                "netviz.watch(model, probes=['activation_stats']) or pass {layer: tensor}"
            )
        order = [m for m in module_order(records) if m in set(rows.module)]
        order = select_names(order, modules, what="the activation_stats records")
        table = rows.pivot_table(index="module", columns="stat", values="value", aggfunc="mean")
        ax = get_ax(ax, figsize=(7.0, 0.45 * len(order) + 1.5))
        for i, m in enumerate(order):
            r = table.loc[m]
            y = len(order) - 1 - i
            ax.plot([r["min"], r["max"]], [y, y], color="#949494", lw=1)
            ax.plot([r["mean"] - r["std"], r["mean"] + r["std"]], [y, y], color="#0173b2", lw=5)
            ax.plot([r["mean"]], [y], "o", color="black", ms=3)
        ax.set_yticks(np.arange(len(order))[::-1], order)
        ax.set_xlabel("activation (mean ± std, min..max; averaged over steps)")
    return ax


def _ridges(
    data: Mapping[str, Any], ax: Axes, bins: int, range_: tuple[float, float] | None
) -> Axes:
    from netviz.plot._histograms import draw_ridge

    arrays = {str(k): _values(v) for k, v in data.items()}
    finite = {k: a[np.isfinite(a)] for k, a in arrays.items()}
    if range_ is None:
        allv = np.concatenate([a for a in finite.values() if a.size] or [np.zeros(0)])
        lo, hi = np.percentile(allv, [0.5, 99.5]) if allv.size else (0.0, 1.0)
        if allv.size and allv.max() - allv.min() <= 1.5 * (hi - lo):
            lo, hi = allv.min(), allv.max()  # no far outliers: show everything (bounds too)
        range_ = (float(lo), float(hi) if hi > lo else float(lo) + 1.0)
    edges = np.linspace(range_[0], range_[1], bins + 1)
    n = len(arrays)
    for i, (name, a) in enumerate(finite.items()):
        # values outside the range are counted at the ends, never put in the edge bins
        inside = a[(a >= edges[0]) & (a <= edges[-1])]
        counts, _ = np.histogram(inside, bins=edges)
        draw_ridge(
            ax,
            n - 1 - i,
            edges,
            counts,
            f"C{i % 10}",
            below=int((a < edges[0]).sum()),
            above=int((a > edges[-1]).sum()),
            nonfinite=arrays[name].size - a.size,
        )
    ax.set_yticks(np.arange(n)[::-1], list(arrays))
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xlabel("activation value")
    return ax


def _values(t: Any) -> np.ndarray:
    return np.asarray(t.detach().float().cpu() if hasattr(t, "detach") else t, dtype=float).ravel()


def stat_over_steps(
    data: Records,
    ax: Target = None,
    *,
    stat: str = "l2",
    probe: str | None = None,
    modules: Selector = None,
    log: bool | None = None,
) -> Axes:
    """A recorded statistic against the training step, one line per layer.

    Parameters
    ----------
    data
        Record table, :class:`netviz.Report` or :class:`netviz.Monitor`.
    ax
        Axes to draw on; a new figure if ``None``.
    stat, probe
        The statistic (``stat`` column) and, when several probes record a
        statistic of that name, which probe (``probe`` column).
    modules
        Layers to draw: a glob or list of globs over the module names, as for
        :func:`netviz.watch` (default: all); always in network order.
    log
        Log-scaled y; by default when all values are positive and span more
        than two decades.

    Returns
    -------
    matplotlib.axes.Axes
        Several calls of a module in one step are averaged (seaborn draws
        their spread as a band).

    Examples
    --------
    >>> df = pd.DataFrame({"step": [0, 1, 0, 1], "module": ["a", "a", "b", "b"], "call": 0,
    ...                    "probe": "grad_norm", "stat": "l2", "value": [1.0, 0.5, 2.0, 1.0]})
    >>> ax = stat_over_steps(df, stat="l2")
    >>> len(ax.get_lines()) >= 2, ax.get_xlabel()
    (True, 'step')
    """
    import seaborn as sns

    df = as_records(data, name="data")
    rows = df[df.stat == stat]
    if probe is not None:
        rows = rows[rows.probe == probe]
    if rows.empty:
        have = sorted(set(zip(df.probe, df.stat)))
        raise NetvizValueError(f"no records with stat={stat!r}, probe={probe!r}; available: {have}")
    probes = sorted(set(rows.probe))
    if len(probes) > 1:
        raise NetvizValueError(
            f"stat {stat!r} is recorded by probes {probes}; choose one with `probe=`"
        )
    order = [m for m in module_order(df) if m in set(rows.module)]
    if modules is not None:
        order = select_names(order, modules, what=f"the {stat!r} records")
        rows = rows[rows.module.isin(order)]
    values = rows.value.to_numpy()
    finite = values[np.isfinite(values)]
    if log is None:
        log = bool(finite.size and finite.min() > 0 and finite.max() / finite.min() > 100)
    with style():
        ax = get_ax(ax)
        sns.lineplot(data=rows, x="step", y="value", hue="module", hue_order=order, ax=ax)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(f"{probes[0]} · {stat}")
        legend = ax.get_legend()
        if legend is not None:
            legend.set_title("")
    return ax


def _timestep_series(data: Any, modules: Selector, step: int | None) -> dict[str, np.ndarray]:
    """``{suffix: array (steps, T)}`` of one run; suffix names the module if several."""
    is_table = isinstance(data, (pd.DataFrame, Mapping))
    if not is_table and not hasattr(data, "records") and not hasattr(data, "step_index"):
        arr = np.asarray(data.detach().cpu() if hasattr(data, "detach") else data, dtype=float)
        if arr.ndim not in (1, 2):
            raise NetvizValueError(
                f"timestep norms must be 1-D (T,) or 2-D (steps, T), got shape {arr.shape}"
            )
        return {"": np.atleast_2d(arr)}
    records = as_records(data, name="data")
    rows = records[(records.probe == "timestep_grad") & (records.stat == "l2")]
    if rows.empty:
        raise NetvizValueError(
            "the records hold no 'timestep_grad' rows: record them with "
            "netviz.watch(model, probes=['timestep_grad']) on a model with nn.RNN/LSTM/GRU layers"
        )
    if modules is not None:
        names = select_names(pd.unique(rows.module), modules, what="the timestep_grad records")
        rows = rows[rows.module.isin(names)]
    if step is not None:
        if step not in set(rows.step):
            raise NetvizValueError(
                f"`step` {step} has no timestep_grad records; steps: {sorted(set(rows.step))}"
            )
        rows = rows[rows.step == step]
    mods = list(pd.unique(rows.module))
    out = {}
    for m in mods:
        wide = rows[rows.module == m].pivot_table(index="step", columns="call", values="value")
        out[m if len(mods) > 1 else ""] = wide.to_numpy()
    return out


def timestep_gradients(
    data: Records | torch.Tensor | np.ndarray | Sequence[float] | None,
    ax: Target = None,
    *,
    compare: Mapping[str, Records | torch.Tensor | np.ndarray | Sequence[float]] | None = None,
    label: str | None = None,
    modules: Selector = None,
    step: int | None = None,
) -> Axes:
    """:math:`\\lVert \\partial L/\\partial h_t \\rVert` against the time step ``t``, log scale.

    Vanishing gradients through time show as a line falling towards ``t = 0``
    (the first inputs barely influence learning), exploding ones as a line
    rising towards it.

    Parameters
    ----------
    data
        Records with the ``timestep_grad`` probe (record table, Report or
        Monitor), or an array of norms ``(T,)``. Several recorded steps are
        drawn as their median with the interquartile range as a band.
    ax
        Axes to draw on; a new figure if ``None``.
    compare
        ``{label: data}`` of further runs (e.g. ``{"sigma_max = 0.5": ...,
        "sigma_max = 1.5": ...}``), one line each.
    label
        Legend label of ``data``.
    modules
        Recurrent modules to draw: a glob or list of globs, as for
        :func:`netviz.watch` (default: all).
    step
        Restrict to one recorded step.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> ax = timestep_gradients([1e-4, 1e-3, 1e-2, 1e-1, 1.0], label="vanishing")
    >>> ax.get_yscale(), ax.get_lines()[0].get_xdata().tolist()
    ('log', [0, 1, 2, 3, 4])
    """
    runs = _runs(data, compare, label)
    with style():
        ax = get_ax(ax)
        for i, (name, run) in enumerate(runs.items()):
            for suffix, arr in _timestep_series(run, modules, step).items():
                t = np.arange(arr.shape[1])
                text = " · ".join(s for s in (name if len(runs) > 1 or label else "", suffix) if s)
                color = f"C{i % 10}" if not suffix else None
                med = np.nanmedian(arr, axis=0)
                (line,) = ax.plot(t, med, marker="o", ms=3, label=text or None, color=color)
                if arr.shape[0] > 1:
                    lo, hi = np.nanpercentile(arr, [25, 75], axis=0)
                    ax.fill_between(t, lo, hi, alpha=0.25, color=line.get_color(), lw=0)
        ax.set_yscale("log")
        ax.set_xlabel("time step t")
        ax.set_ylabel(r"$\|\partial L / \partial h_t\|$")
        if any(
            (text := str(line.get_label())) and not text.startswith("_") for line in ax.get_lines()
        ):
            ax.legend()
    return ax
