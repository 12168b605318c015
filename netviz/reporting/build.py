"""``netviz.report``: one self-contained HTML file of a run.

The sections appear only when the records hold what they need
(:data:`SECTIONS` says what each reads); ``docs/report.md`` describes them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from netviz.errors import NetvizValueError
from netviz.reporting import data as d
from netviz.reporting import figures as fig
from netviz.reporting.inputs import read_inputs
from netviz.reporting.page import choice_group, e, figure, page, section, table

__all__ = ["SECTIONS", "build_html", "report"]

#: Section key -> (title, the records it needs).
SECTIONS: dict[str, tuple[str, str]] = {
    "summary": ("Run summary", "the records, plus what the Monitor or the file's metadata say"),
    "diagnosis": (
        "Diagnosis",
        "netviz.diagnose(records=...): gradient, activation, unit, weight rows",
    ),
    "gradients": ("Gradient flow", "grad_norm (or grad_stats) l2 rows"),
    "activations": ("Activation statistics", "activation_stats rows (train and eval by phase)"),
    "distributions": ("Distributions", "histogram probes (activation_hist, grad_hist)"),
    "updates": ("Update/weight ratios", "weight_stats update_ratio rows"),
    "attention": ("Attention maps", "attention snapshots (a Monitor with the attention probe)"),
    "feature_maps": ("Feature maps", "feature_maps snapshots (a Monitor with that probe)"),
    "table": ("Per-module summary", "the main statistics of every probe"),
}


# ---------------------------------------------------------------- sections
def _summary(records: pd.DataFrame, meta: dict[str, Any], fmt: str) -> str:
    facts = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in d.run_facts(records, meta))
    order = d.network_order(records)
    modules = (
        f"<details><summary>{len(order)} modules in network order</summary><p>"
        + ", ".join(f"<code>{e(m)}</code>" for m in order)
        + "</p></details>"
        if order
        else ""
    )
    return f'<dl class="facts">{facts}</dl>{modules}'


def _diagnosis(records: pd.DataFrame, fmt: str) -> str:
    from netviz.diagnosis import diagnose

    try:
        rep = diagnose(records=d.canonical_rows(records))
    except Exception as err:  # the rest of the report stands without it; say why
        why = f"{type(err).__name__}: {err}"
        return f"<p>The diagnosis could not run on these records ({e(why)}).</p>"
    items = []
    for f in rep.findings:
        items.append(
            f'<div class="finding {e(f.severity)}"><span class="sev">{e(f.severity)}</span> '
            f"<b>{e(f.kind.replace('_', ' '))}</b> at <code>{e(f.module)}</code>"
            f"<p>{e(f.message)}</p></div>"
        )
    head = (
        f"<p>{len(rep.findings)} finding(s), most severe first.</p>" + "".join(items)
        if items
        else "<p><b>No findings.</b></p>"
    )
    return (
        head
        + f"<details open><summary>Full text report</summary><pre>{e(str(rep))}</pre></details>"
    )


def _gradients(records: pd.DataFrame, fmt: str) -> str:
    rows = d.gradient_rows(records)
    if "phase" in rows.columns and (rows.phase == "train").any():
        rows = rows[rows.phase == "train"]
    order = d.network_order(records)
    stat = f"{rows.probe.iloc[0]}.l2"
    uri = fig.gradient_flow_figure(rows, order, fmt)
    cap = (
        f"Left: {e(stat)} per layer in network order (input side left) — box over the recorded "
        "steps, dot at the last step. Right: the same over steps (log10, colour). Layers "
        "whose norm falls by orders of magnitude towards the input are not learning."
    )
    return figure(uri, "gradient norm per layer and over steps", cap)


def _activations(records: pd.DataFrame, fmt: str, done: Callable[[str], None]) -> str:
    rows = records[records.probe == "activation_stats"]
    order = d.network_order(records)
    train = rows[rows.phase == "train"] if "phase" in rows.columns else rows
    overview = figure(
        fig.activation_overview_figure(train if len(train) else rows, order, fmt),
        "activation statistics of every layer over steps",
        "Every layer (rows, input side at the top) against the step: mean (red positive, "
        "blue negative), standard deviation, zero and non-finite fractions (0 to 1).",
    )
    items = []
    for m in [m for m in order if m in set(rows.module)]:
        uri = fig.activation_figure(rows[rows.module == m], fmt)
        items.append((m, figure(uri, f"activation statistics of {m} over steps")))
        done(m)
    ph = d.phases(rows)
    both = "Train (blue) and eval (orange) forwards are drawn apart. " if len(ph) > 1 else ""
    intro = (
        "<p>Mean, standard deviation, share of zeros and of non-finite values of each "
        f"layer's output, per recorded step. {both}</p>"
    )
    return intro + overview + "<h3>Per layer</h3>" + choice_group("Layer", items, "activations")


def _distributions(hist: pd.DataFrame, records: pd.DataFrame, fmt: str) -> str:
    # The histogram probes' table (Monitor.histograms(): step, ..., module, call, order,
    # probe, kind, bin_lo, bin_hi, count; kind "nan"/"posinf"/"neginf" rows hold the
    # non-finite counts). One heat map per probe and module, train rows.
    if "phase" in hist.columns and (hist.phase == "train").any():
        hist = hist[hist.phase == "train"]
    kind = hist["kind"] if "kind" in hist.columns else pd.Series("bin", index=hist.index)
    bins, odd = hist[kind == "bin"], hist[kind != "bin"]
    order = d.network_order(hist if "order" in hist.columns else records)
    items = []
    for probe in sorted(set(bins.probe)):
        sub = bins[bins.probe == probe]
        grid = sorted(set(zip(sub.bin_lo, sub.bin_hi)))  # bins holding a value in the run
        for m in [m for m in order if m in set(sub.module)]:
            mine = sub[sub.module == m]
            lo, hi = mine.bin_lo.min(), mine.bin_hi.max()
            shown = [b for b in grid if b[0] >= lo and b[1] <= hi]
            uri = fig.histogram_figure(mine, shown, f"{probe} · {m}", fmt)
            bad = odd[(odd.probe == probe) & (odd.module == m)]
            counts = bad.groupby("kind")["count"].sum() if len(bad) else pd.Series(dtype=int)
            note = ", ".join(f"{k}: {int(counts.get(k, 0))}" for k in ("nan", "posinf", "neginf"))
            cap = f"Non-finite values over the run: {note}." if len(bad) else None
            items.append((f"{m} · {probe}", figure(uri, f"{probe} of {m} over steps", cap)))
    intro = (
        "<p>Histogram counts per step (colour, log scale) on the probes' fixed bin grid; "
        "rows are the bins that hold a value somewhere in the run, labelled by their "
        "lower edge.</p>"
    )
    return intro + choice_group("Layer", items, "distributions")


def _updates(records: pd.DataFrame, fmt: str) -> str:
    from netviz.analysis import Thresholds

    rows = records[(records.probe == "weight_stats") & (records.stat == "update_ratio")]
    t = Thresholds()
    uri = fig.update_ratio_figure(
        rows, d.network_order(records), (t.update_low, t.update_high), fmt
    )
    cap = (
        "‖ΔW‖/‖W‖ of each layer's weights per step (dark: input side, yellow: output side). "
        f"Dashed: the usual 1e-3; shaded: the band the diagnosis accepts "
        f"([{t.update_low:g}, {t.update_high:g}])."
    )
    return figure(uri, "update/weight ratio over steps", cap)


def _table(records: pd.DataFrame) -> str:
    tab = d.summary_table(records)
    cols = list(tab.columns)
    rows = [
        [
            int(v) if c in ("order", "steps") else (float(v) if c in ("last", "min", "max") else v)
            for c, v in zip(cols, r)
        ]
        for r in tab.itertuples(index=False)
    ]
    intro = (
        "<p>Per module and statistic: the value at the last recorded step, the smallest and "
        "largest over the run (non-finite values left out). Click a column head to sort.</p>"
    )
    return intro + table(cols, rows)


# ------------------------------------------------------------------- build
def _has(records: pd.DataFrame, probe: str, stat: str | None = None) -> bool:
    rows = records.probe == probe
    if stat is not None:
        rows &= records.stat == stat
    return bool(rows.any())


def _has_snapshot(snapshots: Mapping | None, probe: str) -> bool:
    if not snapshots:
        return False
    return any(k[0] == probe for kept in snapshots.values() for k in kept)


def build_html(
    data: Any,
    *,
    title: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    histograms: pd.DataFrame | None = None,
    snapshots: Mapping | None = None,
    fmt: str = "png",
    script: bool = True,
    progress: bool | None = None,
) -> str:
    """The report as an HTML string; see :func:`report` for the arguments."""
    from netviz._progress import progress as make_progress
    from netviz._version import __version__

    if fmt not in ("png", "svg"):
        raise NetvizValueError(f"`fmt` must be 'png' or 'svg', got {fmt!r}")
    records, meta, histograms, snapshots = read_inputs(data, histograms, snapshots)
    meta.update(metadata or {})
    if "netviz" not in meta:
        meta["netviz"] = f"{__version__} (building this report)"
    if "torch" not in meta:
        import torch

        meta["torch"] = f"{torch.__version__} (building this report)"
    if records.empty:
        raise NetvizValueError("`data` holds no records: was any step recorded (Monitor.step())?")
    n_act = records.loc[records.probe == "activation_stats", "module"].nunique()
    plan: list[tuple[str, Callable[[], str]]] = [("summary", lambda: _summary(records, meta, fmt))]
    if (
        _has(records, "grad_norm")
        or _has(records, "grad_stats")
        or _has(records, "activation_stats")
    ):
        plan.append(("diagnosis", lambda: _diagnosis(records, fmt)))
    if not d.gradient_rows(records).empty:
        plan.append(("gradients", lambda: _gradients(records, fmt)))
    if n_act:
        plan.append(("activations", lambda: _activations(records, fmt, lambda m: bar.update(1, m))))
    if histograms is not None and len(histograms):
        plan.append(("distributions", lambda: _distributions(histograms, records, fmt)))
    if _has(records, "weight_stats", "update_ratio"):
        plan.append(("updates", lambda: _updates(records, fmt)))
    snaps: Mapping = snapshots or {}
    if _has_snapshot(snaps, "attention"):
        from netviz.reporting.snapshots import attention_body

        plan.append(("attention", lambda: attention_body(snaps)[0]))
    if _has_snapshot(snaps, "feature_maps"):
        from netviz.reporting.snapshots import feature_map_body

        plan.append(("feature_maps", lambda: feature_map_body(snaps)[0]))
    if not d.summary_table(records).empty:
        plan.append(("table", lambda: _table(records)))
    sections = []
    with make_progress(len(plan) + n_act, "report", enabled=progress) as bar:
        for key, make in plan:
            bar.note(SECTIONS[key][0])
            sections.append((key, SECTIONS[key][0], section(key, *SECTIONS[key], make())))
            bar.update(1)
    model = meta.get("model")
    title = title or (f"netviz report: {model}" if model else "netviz report")
    return page(title, sections, script=script)


def report(
    data: Any,
    path: str | os.PathLike,
    *,
    title: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    histograms: pd.DataFrame | None = None,
    snapshots: Mapping | None = None,
    fmt: str = "png",
    script: bool = True,
    progress: bool | None = None,
) -> Path:
    """Write one self-contained HTML report of a run to ``path``; return the path.

    Parameters
    ----------
    data
        A :class:`netviz.Monitor` (records, snapshots, model name, probes,
        ``every``), a record table, a :class:`netviz.Report`, or the path of a
        record file (:meth:`Monitor.save` files carry the run's metadata).
    path
        Where to write the ``.html`` file (folders are created).
    title
        Page title (default ``"netviz report: <model>"``).
    metadata
        Facts for the run summary that the records lack, e.g.
        ``{"wall_time_s": 12.5, "model": "DigitsCNN", "dataset": "load_digits"}``;
        they win over what the Monitor or the file say.
    histograms
        The histogram probes' table (``Monitor.histograms()``; taken from a
        Monitor that has it when not given).
    snapshots
        ``Monitor.snapshots()`` (taken from a Monitor when not given).
    fmt
        Figures as ``"png"`` (default, smaller) or ``"svg"`` ``data:`` URIs.
    script
        Add the small inline script (layer selectors, head zoom, sortable
        tables). Without it the page shows every layer one below the other.
    progress
        Progress bar on stderr: ``None`` (default) on a terminal with tqdm
        installed and ``TQDM_DISABLE`` unset; ``False`` never.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    TypeError, ValueError
        For ``data`` of another kind, or a table without records.

    Examples
    --------
    >>> import tempfile, torch, netviz
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> with netviz.watch(net) as mon:
    ...     for _ in range(3):
    ...         net(torch.randn(16, 4)).sum().backward()
    ...         mon.step()
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = netviz.report(mon, tmp + "/run.html")
    ...     text = out.read_text()
    >>> 'id="gradients"' in text, "http://" in text
    (True, False)
    """
    html_text = build_html(
        data,
        title=title,
        metadata=metadata,
        histograms=histograms,
        snapshots=snapshots,
        fmt=fmt,
        script=script,
        progress=progress,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_text, encoding="utf-8")
    return path
