"""netviz.report on constructed record tables: sections, order, table values, errors, metadata."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import netviz
from netviz.records.store import COLUMNS
from netviz.reporting import build_html, summarize
from netviz.reporting.data import network_order, summary_table


def table(rows: list[tuple]) -> pd.DataFrame:
    """Records with every column of the record model (step, skipped, phase, micro, module,
    call, order, probe, stat, value)."""
    cols = list(COLUMNS)
    return pd.DataFrame(rows, columns=cols)


def run_table() -> pd.DataFrame:
    """Three steps of a 3-layer net whose execution order (c, a, b) differs from its name
    order and from its row order; eval forwards at step 2."""
    rows = []
    order = {"c": 0, "a": 1, "b": 2}
    for step in range(3):
        for m, o in order.items():
            rows.append(
                (step, False, "train", -1, m, 0, o, "grad_norm", "l2", 10.0**-o * (step + 1))
            )
            for stat, v in (
                ("mean", 0.1 * o + step),
                ("std", 1.0),
                ("zero_frac", 0.5),
                ("nonfinite_frac", 0.0),
            ):
                rows.append((step, False, "train", 0, m, 0, o, "activation_stats", stat, v))
            if step == 2:
                rows.append((step, False, "eval", 0, m, 0, o, "activation_stats", "mean", -1.0))
    return table(rows)


def sections(text: str) -> list[str]:
    return re.findall(r'<section id="(\w+)"', text)


def test_network_order_uses_the_order_column_not_rows():
    df = run_table()
    assert network_order(df) == ["c", "a", "b"]
    assert network_order(df.sample(frac=1, random_state=1)) == ["c", "a", "b"]
    assert network_order(df.sort_values("module")) == ["c", "a", "b"]


def test_report_is_the_same_for_a_shuffled_table():
    df = run_table()
    a = build_html(df, progress=False)
    b = build_html(df.sample(frac=1, random_state=3), progress=False)
    assert a == b


def test_summary_table_against_hand_values():
    df = run_table()
    tab = summary_table(df.sample(frac=1, random_state=0))
    row = tab[(tab.module == "a") & (tab.statistic == "grad_norm.l2")].iloc[0]
    # a: grad 0.1 * (step + 1) at steps 0, 1, 2
    assert (row["last"], row["min"], row["max"], row["steps"]) == pytest.approx((0.3, 0.1, 0.3, 3))
    ev = tab[
        (tab.module == "b") & (tab.statistic == "activation_stats.mean") & (tab.phase == "eval")
    ]
    assert ev[["last", "min", "max"]].iloc[0].tolist() == [-1.0, -1.0, -1.0]
    tr = tab[
        (tab.module == "b") & (tab.statistic == "activation_stats.mean") & (tab.phase == "train")
    ]
    assert tr[["last", "min", "max"]].iloc[0].tolist() == pytest.approx([2.2, 0.2, 2.2])
    assert list(dict.fromkeys(tab.module)) == ["c", "a", "b"]  # network order


def test_summary_table_averages_calls_and_skips_nonfinite():
    df = table(
        [
            (0, False, "train", 0, "m", 0, 0, "activation_stats", "std", 1.0),
            (0, False, "train", 0, "m", 1, 0, "activation_stats", "std", 3.0),
            (1, False, "train", 0, "m", 0, 0, "activation_stats", "std", float("nan")),
        ]
    )
    row = summary_table(df).iloc[0]
    assert (row["last"], row["min"], row["max"], row["steps"]) == (2.0, 2.0, 2.0, 1)


def test_sections_only_with_their_records():
    df = run_table()
    text = build_html(df, progress=False)
    assert sections(text) == ["summary", "diagnosis", "gradients", "activations", "table"]
    assert "Train (blue) and eval (orange)" in text
    grads_only = df[df.probe == "grad_norm"]
    assert sections(build_html(grads_only, progress=False)) == [
        "summary",
        "diagnosis",
        "gradients",
        "table",
    ]
    acts_only = df[df.probe == "activation_stats"]
    assert "gradients" not in sections(build_html(acts_only, progress=False))


def test_summary_facts_from_records_and_metadata():
    text = build_html(run_table(), metadata={"wall_time_s": 3.25, "dataset": "toy"}, progress=False)
    summary = re.search(r'<section id="summary".*?</section>', text, flags=re.S).group(0)
    assert "<dt>recorded steps</dt><dd>3 (steps 0 to 2)</dd>" in summary
    assert "<dt>phases</dt><dd>train, eval</dd>" in summary
    assert (
        "<dt>wall time</dt><dd>3.2 s</dd>" in summary
        or "<dt>wall time</dt><dd>3.3 s</dd>" in summary
    )
    assert "<dt>dataset</dt><dd>toy</dd>" in summary
    assert "<dt>every</dt><dd>1 (inferred from the recorded steps)</dd>" in summary
    assert f"{torch.__version__} (building this report)" in summary


def test_update_ratio_section():
    df = run_table()
    extra = [
        (s, False, "train", -1, m, 0, o, "weight_stats", "update_ratio", 1e-3 * (o + 1))
        for s in (1, 2)
        for m, o in (("c", 0), ("a", 1))
    ]
    text = build_html(pd.concat([df, table(extra)], ignore_index=True), progress=False)
    assert "updates" in sections(text)


def test_histogram_table_gives_a_distribution_per_module():
    # The histogram probes' table (Monitor.histograms(), issue #14: one row per non-empty
    # bin, outer bins to -inf/+inf, kind "nan"/"posinf"/"neginf" rows), filled by hand
    # with numpy's histogram of real values.
    rng = np.random.default_rng(0)
    edges = np.array([-np.inf, *np.linspace(-3, 3, 13), np.inf])
    rows = []
    for step in range(4):
        for m, o in (("c", 0), ("a", 1)):
            values = rng.normal(0, 1 + step, 500)
            counts, _ = np.histogram(values, bins=edges)
            for lo, hi, c in zip(edges[:-1], edges[1:], counts):
                if c:
                    rows.append(
                        (step, False, "train", 0, m, 0, o, "activation_hist", "bin", lo, hi, c)
                    )
            for kind, c in (("nan", 2 if m == "a" else 0), ("posinf", 0), ("neginf", 0)):
                rows.append(
                    (step, False, "train", 0, m, 0, o, "activation_hist", kind, np.nan, np.nan, c)
                )
    cols = ["step", "skipped", "phase", "micro", "module", "call", "order", "probe", "kind"]
    hist = pd.DataFrame(rows, columns=[*cols, "bin_lo", "bin_hi", "count"])
    text = build_html(run_table(), histograms=hist.sample(frac=1, random_state=0), progress=False)
    assert "distributions" in sections(text)
    block = re.search(r'<section id="distributions".*?</section>', text, flags=re.S).group(0)
    assert re.findall(r'data-key="([^"]+)"', block) == [
        "c · activation_hist",
        "a · activation_hist",
    ]
    assert (
        "Non-finite values over the run: nan: 8, posinf: 0, neginf: 0." in block
    )  # a: 2 x 4 steps
    assert "nan: 0, posinf: 0, neginf: 0" in block  # c


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="`data` must be a record table"):
        build_html([1, 2, 3])
    with pytest.raises(ValueError, match="holds no records"):
        build_html(run_table().iloc[:0])
    with pytest.raises(ValueError, match="`fmt` must be 'png' or 'svg'"):
        build_html(run_table(), fmt="jpeg")
    with pytest.raises(TypeError, match="`histograms` must be a DataFrame"):
        build_html(run_table(), histograms={"a": 1})


def test_svg_figures_and_no_script():
    text = build_html(run_table(), fmt="svg", script=False, progress=False)
    assert "data:image/svg+xml;base64," in text
    assert "<script" not in text


def tiny_run(steps=2):
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    with netviz.watch(net, probes=("grad_norm", "activation_stats", "weight_stats")) as mon:
        for _ in range(steps):
            net(torch.randn(16, 4)).sum().backward()
            mon.step()
    return mon


def test_monitor_save_keeps_run_metadata(tmp_path):
    from netviz.records.io import load_metadata

    mon = tiny_run()
    meta = load_metadata(mon.save(tmp_path / "run.parquet"))
    assert meta["model"] == "Sequential" and meta["every"] == 1 and meta["steps"] == 2
    assert meta["probes"] == ["grad_norm", "activation_stats", "weight_stats"]
    assert meta["torch"] == torch.__version__ and meta["netviz"] == netviz.__version__
    assert netviz.load(tmp_path / "run.parquet").equals(mon.to_pandas())
    assert load_metadata(mon.save(tmp_path / "run.csv")) == {}
    text = build_html(tmp_path / "run.parquet", progress=False)
    assert "<dt>model</dt><dd>Sequential</dd>" in text
    assert "<dt>steps run</dt><dd>2</dd>" in text


def test_public_function_stays_callable_after_importing_the_package():
    import netviz.reporting

    assert callable(netviz.report) and not isinstance(netviz.report, type(netviz))
    assert "report" in netviz.__all__


class Recorder:
    """IPython's pretty-printer protocol: ``p.text(str)``."""

    def __init__(self):
        self.out = []

    def text(self, s):
        self.out.append(s)


def test_monitor_and_summary_display_without_scripts():
    mon = tiny_run()
    html_out = mon._repr_html_()
    assert "<script" not in html_out.lower() and "on" + "click" not in html_out.lower()
    assert "grad_norm.l2" in html_out and "Sequential" in html_out
    s = summarize(mon)
    assert "<script" not in s._repr_html_().lower()
    p = Recorder()
    mon._repr_pretty_(p, cycle=False)
    assert p.out[0].startswith("<netviz.Monitor detached on Sequential")
    assert "grad_norm.l2" in p.out[0]
    p = Recorder()
    s._repr_pretty_(p, cycle=False)
    assert "activation_stats.mean" in p.out[0]
    # a monitor with no records yet
    net = nn.Linear(2, 2)
    with netviz.watch(net) as fresh:
        assert "No records yet" in fresh._repr_html_()


def test_report_of_a_diagnosis_and_of_a_csv_file(tmp_path):
    net = nn.Sequential(nn.Linear(4, 8), nn.Sigmoid(), nn.Linear(8, 2))
    rep = netviz.diagnose(net, torch.randn(32, 4), torch.randint(0, 2, (32,)))
    text = build_html(rep, progress=False)
    assert {"summary", "diagnosis", "gradients", "activations"} <= set(sections(text))
    path = tiny_run().save(tmp_path / "run.csv")
    out = netviz.report(path, tmp_path / "r.html", progress=False)
    assert "<dt>every</dt><dd>1 (inferred from the recorded steps)</dd>" in out.read_text()


def test_summary_table_keeps_ranks_apart():
    df = table(
        [
            (0, False, "train", -1, "m", 0, 0, "grad_norm", "l2", 1.0),
            (0, False, "train", -1, "m", 0, 0, "grad_norm", "l2", 3.0),
        ]
    )
    df["rank"] = [0, 1]
    tab = summary_table(df)
    assert tab[["rank", "last"]].values.tolist() == [[0, 1.0], [1, 3.0]]


@pytest.mark.slow
def test_distributions_from_the_real_histogram_probes(tmp_path):
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    probes = ("grad_norm", "activation_stats", "activation_hist", "grad_hist")
    with netviz.watch(net, probes=probes) as mon:
        for _ in range(3):
            net(torch.randn(32, 4)).sum().backward()
            mon.step()
    expected = ["0 · activation_hist", "1 · activation_hist", "2 · activation_hist"]
    expected += ["0 · grad_hist", "2 · grad_hist"]
    for data in (mon, mon.save(tmp_path / "run.parquet")):  # the Monitor, the saved files
        text = build_html(data, progress=False)
        block = re.search(r'<section id="distributions".*?</section>', text, flags=re.S).group(0)
        assert re.findall(r'data-key="([^"]+)"', block) == expected
        assert "nan: 0, posinf: 0, neginf: 0" in block
