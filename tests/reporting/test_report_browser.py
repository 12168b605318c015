"""The report of real runs, opened in headless chromium (Debian's, driven by Playwright).

Skipped, with the reason, only where /usr/bin/chromium or Playwright is
missing; ``.ci/run`` installs chromium so these run in CI. Set
``NETVIZ_REPORT_SCREENSHOT=docs/img/report.png`` to write the README's
screenshot.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
CNN_SECTIONS = [
    "summary",
    "diagnosis",
    "gradients",
    "activations",
    "updates",
    "feature_maps",
    "table",
]
TF_SECTIONS = ["summary", "diagnosis", "gradients", "activations", "attention", "table"]
#: The documented bound (docs/report.md) for a typical run.
MAX_BYTES = 400_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"no chromium at {CHROMIUM} (apt-get install -y chromium; .ci/run does)",
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python not installed")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Page:
    """A page with every request and console error recorded."""

    def __init__(self, browser, path: Path, javascript: bool = True):
        self.context = browser.new_context(
            java_script_enabled=javascript, viewport={"width": 1200, "height": 900}
        )
        self.requests: list[str] = []
        self.errors: list[str] = []

        def route(r):
            self.requests.append(r.request.url)
            if r.request.url == path.as_uri():
                r.continue_()
            else:
                r.abort()

        self.context.route("**/*", route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")

    def close(self):
        self.context.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def blank(png: bytes) -> bool:
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    return a.std() < 2.0  # one flat colour: nothing drawn


def check_common(pg: Page, path: Path, sections: list[str]) -> None:
    page = pg.page
    assert pg.requests == [path.as_uri()], "a request left the file"
    assert pg.errors == []
    found = page.eval_on_selector_all("section[data-section]", "els => els.map(e => e.id)")
    assert found == sections
    for key in sections:
        assert page.locator(f"#{key} h2").is_visible()
    # every image decoded (data: URIs), none broken
    broken = page.eval_on_selector_all(
        "img", "els => els.filter(i => !(i.complete && i.naturalWidth > 0)).length"
    )
    assert broken == 0


def test_cnn_report_in_chromium(browser, real_reports):
    path = Path(real_reports[0])
    with Page(browser, path) as pg:
        check_common(pg, path, CNN_SECTIONS)
        page = pg.page
        # figures render: the visible ones are not blank
        figs = page.locator("img.fig:visible")
        assert figs.count() >= 3
        for i in range(figs.count()):
            assert not blank(figs.nth(i).screenshot()), f"figure {i} is blank"
        # the layer selector shows one layer, and changes it
        group = page.locator('.choices[data-kind="activations"]')
        keys = group.locator(":scope > .choice").evaluate_all("els => els.map(e => e.dataset.key)")
        assert len(keys) >= 5
        visible = lambda: group.locator(":scope > .choice:visible h3").all_inner_texts()  # noqa: E731
        assert visible() == [keys[0]]
        select = page.locator('select[aria-label="Layer"]').first
        select.select_option(keys[3])
        assert visible() == [keys[3]]
        shown = group.locator(":scope > .choice:visible img.fig")
        assert not blank(shown.screenshot())
        # sortable table: "last" ascending after one click
        col = page.locator("#table th", has_text=re.compile("^last$"))
        col.click()
        idx = page.locator("#table th").all_inner_texts().index("last")
        values = page.eval_on_selector_all(
            "#table tbody tr", f"rows => rows.map(r => parseFloat(r.cells[{idx}].dataset.v))"
        )
        finite = [v for v in values if v == v]
        assert finite == sorted(finite) and len(finite) > 10
        # feature-map tiles zoom on click
        tile = page.locator("#feature_maps .choice:visible .head").first
        before = tile.locator("img").bounding_box()["width"]
        tile.click()
        assert tile.locator("img").bounding_box()["width"] > 2 * before
        assert pg.errors == [] and pg.requests == [path.as_uri()]
    shot = os.environ.get("NETVIZ_REPORT_SCREENSHOT")
    if shot:  # the README's screenshot: the top of a freshly opened report
        with Page(browser, path) as pg:
            pg.page.set_viewport_size({"width": 1100, "height": 1700})
            pg.page.screenshot(path=shot, full_page=False)


def test_transformer_report_attention_per_layer_and_head(browser, real_reports):
    path = Path(real_reports[1])
    with Page(browser, path) as pg:
        check_common(pg, path, TF_SECTIONS)
        page = pg.page
        group = page.locator('.choices[data-kind="attention"]')
        keys = group.locator(":scope > .choice").evaluate_all("els => els.map(e => e.dataset.key)")
        assert keys == ["layers.0.self_attn", "layers.1.self_attn"]
        page.locator('select[data-kind="attention"]').select_option(keys[1])
        layer = group.locator(":scope > .choice:visible")
        assert layer.locator(":scope > h3").all_inner_texts() == [keys[1]]
        # the step selector of that layer: steps 0, 2, 3 of 4 (first, middle, last)
        steps = layer.locator(".choices > .choice").evaluate_all(
            "els => els.map(e => e.dataset.key)"
        )
        assert steps == ["step 0", "step 2", "step 3"]
        layer.locator('select[data-kind="attention-step"]').select_option("step 3")
        shown = layer.locator(".choices > .choice:visible")
        assert shown.locator("h3").all_inner_texts() == ["step 3"]
        heads = shown.locator(".head")
        assert heads.count() == 4  # 4 heads
        for i in range(4):
            assert not blank(heads.nth(i).locator("img").screenshot())
        assert pg.errors == []


@pytest.mark.parametrize("which", [0, 1])
def test_report_complete_without_javascript(browser, real_reports, which):
    path = Path(real_reports[which])
    with Page(browser, path, javascript=False) as pg:
        check_common(pg, path, [CNN_SECTIONS, TF_SECTIONS][which])
        page = pg.page
        assert page.locator("select").count() == 0
        choices = page.locator(".choice")
        assert choices.count() > 5
        for i in range(choices.count()):  # every layer's block is shown
            assert choices.nth(i).is_visible()
        assert page.locator("img:visible").count() == page.locator("img").count()


def test_files_are_self_contained_and_small(real_reports):
    for path in map(Path, real_reports):
        text = path.read_text(encoding="utf-8")
        refs = re.findall(r"https?://[^\s\"'<>)]*", text)
        assert all(r.startswith("http://www.w3.org/") for r in refs), refs
        assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", text)
        assert "@import" not in text and "url(" not in text
        assert path.stat().st_size < MAX_BYTES
