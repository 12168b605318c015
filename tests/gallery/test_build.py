"""The gallery builder: headers, selection, failure reports, the contact sheet,
byte-identical rebuilds and image baselines.

Image baselines (``tests/gallery/baseline/*.png``) are fast-mode builds at
``BASELINE_DPI``; compared with :func:`matplotlib.testing.compare.compare_images`
at ``TOLERANCE`` (RMS over 0-255 pixel values). Regenerate them after an
intended change of a figure with::

    NETVIZ_REGEN_BASELINES=1 .venv/bin/python -m pytest tests/gallery/test_build.py -k baseline
"""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from netviz.cli import main
from netviz.gallery.builder import build, run_script, runner_env
from netviz.gallery.catalog import (
    GalleryError,
    default_src,
    find_scripts,
    parse_header,
    read_script,
    select,
)
from netviz.gallery.contact_sheet import write_index

GALLERY = Path(__file__).resolve().parents[2] / "netviz" / "gallery" / "scripts"
BASELINE_DIR = Path(__file__).with_name("baseline")
BASELINE_IDS = ("A1", "A4", "B2")
BASELINE_DPI = 40
TOLERANCE = 2.0

HEADER = '"""\n{id} · {title}\n{bar}\n\n*Lecture topic:* {topic}\n\nA short summary.\n"""\n'


def write_script(folder: Path, sid: str, name: str, body: str, title: str = "Toy figure") -> Path:
    """A minimal gallery script (no torch: starts in a fraction of a second)."""
    head = f"{sid} · {title}"
    text = HEADER.format(id=sid, title=title, bar="=" * len(head), topic="Testing (notes 000)")
    path = folder / f"{sid}_{name}.py"
    path.write_text(text + textwrap.dedent(body), encoding="utf-8")
    return path


PLOT = """
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(2, 1))
ax.plot([0, 1], [0, 1])
"""


# ----------------------------------------------------------------- headers
def test_parse_header_reads_id_title_topic_summary():
    src = HEADER.format(id="D3", title="Conv", bar="=" * len("D3 · Conv"), topic="Conv (notes 002)")
    assert parse_header(src) == ("D3", "Conv", "Conv (notes 002)", "A short summary.")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1\n", "no module docstring"),
        ('"""\nD3 - Conv\n=========\n"""\n', "middle dot"),
        ('"""\nD3 · Conv\n====\n\n*Lecture topic:* x\n"""\n', "underlined with 9"),
        ('"""\nD3 · Conv\n=========\n\nno topic line\n"""\n', "Lecture topic"),
        ("def broken(:\n", "not valid Python"),
    ],
)
def test_parse_header_rejects_bad_headers(source, message):
    with pytest.raises(GalleryError, match=message):
        parse_header(source, "bad.py")


def test_read_script_checks_file_name_against_docstring_id(tmp_path):
    path = write_script(tmp_path, "A1", "toy", PLOT)
    wrong = path.rename(tmp_path / "A2_toy.py")
    with pytest.raises(GalleryError, match="differs from the file name"):
        read_script(wrong)
    with pytest.raises(GalleryError, match=r"named '<ID>_<name>\.py'"):
        read_script(tmp_path.joinpath("toy.py"))


def test_find_scripts_orders_by_catalogue_and_ignores_other_files(tmp_path):
    for sid in ("B1", "A10", "A2"):
        write_script(tmp_path, sid, "toy", PLOT)
    (tmp_path / "helper.py").write_text("x = 1\n")
    (tmp_path / "README.txt").write_text("Gallery\n=======\n")
    assert [s.id for s in find_scripts(tmp_path)] == ["A2", "A10", "B1"]
    with pytest.raises(GalleryError, match="does not exist"):
        find_scripts(tmp_path / "missing")


def test_select_by_id_or_stem_and_unknown_ids(tmp_path):
    for sid in ("A1", "A2", "B1"):
        write_script(tmp_path, sid, "toy", PLOT)
    scripts = find_scripts(tmp_path)
    assert [s.id for s in select(scripts, ["b1", "A1_toy"])] == ["A1", "B1"]
    assert select(scripts, None) == scripts
    with pytest.raises(GalleryError, match=r"unknown figure ID\(s\) \['Z9'\]"):
        select(scripts, ["A1", "Z9"])


def test_every_repository_script_has_a_valid_header():
    scripts = find_scripts(default_src())
    assert default_src() == GALLERY
    ids = [s.id for s in scripts]
    assert len(ids) == len(set(ids)), "two scripts share an ID"
    assert all(s.topic and s.title for s in scripts)


def test_runner_env_fixes_the_reproducibility_settings():
    env = runner_env(fast=False, base={"SOURCE_DATE_EPOCH": "123", "NETVIZ_GALLERY_FAST": "1"})
    assert env["SOURCE_DATE_EPOCH"] == "123"  # a caller's epoch is respected
    assert env["NETVIZ_GALLERY_FAST"] == "0"
    assert runner_env(base={})["SOURCE_DATE_EPOCH"] == "0"
    assert "NETVIZ_GALLERY_FAST" not in runner_env(base={})


# ------------------------------------------------------- running and failures
def test_build_reports_failures_without_stopping_the_others(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    write_script(src, "A1", "good", PLOT + "fig2 = plt.figure(figsize=(1, 1))\n")
    write_script(src, "A2", "bad", PLOT + "assert 1 + 1 == 3, 'the numbers of the notes'\n")
    write_script(src, "A3", "empty", "x = 1\n")
    done = []
    results = build(find_scripts(src), out, jobs=2, on_done=lambda r, i, n: done.append((i, n)))
    by_id = {r.script.id: r for r in results}
    assert [r.script.id for r in results] == ["A1", "A2", "A3"]
    assert sorted(done) == [(1, 3), (2, 3), (3, 3)]
    assert by_id["A1"].ok and by_id["A1"].files == ["A1_good.png", "A1_good_2.png"]
    assert (out / "A1_good.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    err = by_id["A2"].error
    assert not by_id["A2"].ok and "AssertionError: the numbers of the notes" in err
    assert "A2_bad.py" in err and "runpy" not in err  # the runner's own frames are dropped
    assert "left no matplotlib figure open" in by_id["A3"].error
    assert sorted(p.name for p in out.iterdir()) == ["A1_good.png", "A1_good_2.png"]


@pytest.mark.slow
def test_a_script_past_its_time_limit_is_stopped(tmp_path):
    path = write_script(tmp_path, "A4", "slow", "import time\ntime.sleep(600)\n")
    res = run_script(read_script(path), tmp_path / "out", timeout=15)
    assert not res.ok and res.error == "timed out after 15 s"
    assert res.seconds < 60


def test_run_script_removes_stale_files_of_a_failed_rebuild(tmp_path):
    path = write_script(tmp_path, "A1", "toy", PLOT)
    script = read_script(path)
    assert run_script(script, tmp_path / "out").ok
    path.write_text(path.read_text() + "raise RuntimeError('broken now')\n")
    res = run_script(read_script(path), tmp_path / "out")
    assert not res.ok and "RuntimeError: broken now" in res.error
    assert not (tmp_path / "out" / "A1_toy.png").exists()


def test_relative_out_is_relative_to_the_callers_folder(tmp_path, monkeypatch):
    # The scripts run in their own folder; the output must still land where the caller said.
    src = tmp_path / "src"
    src.mkdir()
    write_script(src, "A1", "toy", PLOT)
    monkeypatch.chdir(tmp_path)
    (res,) = build(find_scripts(src), "rel/out")
    assert res.ok and (tmp_path / "rel" / "out" / "A1_toy.png").is_file()
    assert not (src / "rel").exists()


def test_an_interrupted_build_stops_its_scripts(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_script(src, "A1", "toy", PLOT)
    for sid in ("A2", "A3", "A4"):
        write_script(
            src,
            sid,
            "slow",
            f"open({str(tmp_path / sid)!r}, 'w').close()\nimport time\ntime.sleep(600)\n",
        )

    def interrupt(res, done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build(find_scripts(src), tmp_path / "out", jobs=2, on_done=interrupt, timeout=300)
    # A1 finished and interrupted the build; A2 was killed; A3 and A4 never started.
    assert not (tmp_path / "A3").exists() and not (tmp_path / "A4").exists()


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="`jobs` must be >= 1"):
        build([], tmp_path, jobs=0)
    with pytest.raises(ValueError, match="`fmt` must be one of png, svg, pdf"):
        build([], tmp_path, fmt="jpg")
    with pytest.raises(ValueError, match="`timeout` must be positive"):
        build([], tmp_path, timeout=0)


def test_contact_sheet_lists_every_figure_with_relative_links(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    write_script(src, "A1", "good", PLOT, title="Good <figure>")
    write_script(src, "B2", "bad", "raise ValueError('nope')\n")
    write_script(src, "C1", "later", PLOT)
    scripts = find_scripts(src)
    results = build(scripts[:2], out)
    page = write_index(out, scripts, results).read_text(encoding="utf-8")
    assert '<img src="A1_good.png"' in page and "Good &lt;figure&gt;" in page
    assert "Lecture topic: Testing (notes 000)" in page
    assert "Build failed." in page and "ValueError: nope" in page
    assert 'Not built yet: <span title="Toy figure">C1</span>.' in page  # no empty card
    assert "2 of 3 figures built in this run, 1 failed; 1 not built yet." in page
    assert "A. Perceptrons and MLPs" in page and "B. Depth, gradients, initialisation" in page
    assert 'src="/' not in page and 'href="/' not in page  # links are relative


def test_cli_list_and_build(tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    write_script(src, "A1", "good", PLOT, title="Good one")
    write_script(src, "A2", "bad", "raise ValueError('nope')\n")
    assert main(["gallery", "list", "--src", str(src)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == ["A1", "Good", "one", "Testing", "(notes", "000)"]
    code = main(["gallery", "build", "--src", str(src), "--out", str(out), "--only", "A1"])
    text = capsys.readouterr().out
    assert code == 0 and "[1/1] ok   A1" in text and f"Gallery: {out / 'index.html'}" in text
    code = main(["gallery", "build", "--src", str(src), "--out", str(out), "--jobs", "2"])
    captured = capsys.readouterr()
    assert code == 1 and "1 failed: A2" in captured.out and "ValueError: nope" in captured.err
    assert main(["gallery", "build", "--src", str(src), "--only", "Z1"]) == 2
    assert "unknown figure ID" in capsys.readouterr().err
    assert main(["gallery", "list", "--src", str(tmp_path / "none")]) == 2
    with pytest.raises(SystemExit):
        main(["gallery", "build", "--jobs", "0"])


# ------------------------------------------- reproducibility and baselines
@pytest.fixture(scope="module")
def fast_builds(tmp_path_factory):
    """The BASELINE_IDS built twice in fast mode (two jobs), into two folders."""
    scripts = select(find_scripts(GALLERY), list(BASELINE_IDS))
    dirs = [tmp_path_factory.mktemp(f"build{i}") for i in range(2)]
    for d in dirs:
        results = build(scripts, d, jobs=2, fast=True, dpi=BASELINE_DPI)
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    return scripts, dirs


@pytest.mark.slow
def test_two_builds_are_byte_identical_png(fast_builds):
    scripts, (a, b) = fast_builds
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert len(names) == len(scripts)
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["svg", "pdf"])
def test_two_builds_are_byte_identical_vector(tmp_path, fmt):
    (script,) = select(find_scripts(GALLERY), ["A4"])
    files = []
    for i in range(2):
        res = run_script(script, tmp_path / str(i), fmt=fmt, fast=True)
        assert res.ok, res.error
        files.append((tmp_path / str(i) / res.files[0]).read_bytes())
    assert files[0] == files[1]
    assert files[0].startswith(b"%PDF" if fmt == "pdf" else b"<?xml")


@pytest.mark.slow
@pytest.mark.parametrize("sid", BASELINE_IDS)
def test_image_baseline(fast_builds, sid, tmp_path):
    from matplotlib.testing.compare import compare_images

    scripts, (built, _) = fast_builds
    (script,) = [s for s in scripts if s.id == sid]
    actual = built / f"{script.stem}.png"
    expected = BASELINE_DIR / actual.name
    if os.environ.get("NETVIZ_REGEN_BASELINES"):
        BASELINE_DIR.mkdir(exist_ok=True)
        shutil.copyfile(actual, expected)
        pytest.skip(f"baseline {expected.name} regenerated")
    assert expected.exists(), f"no baseline {expected}; regenerate with NETVIZ_REGEN_BASELINES=1"
    # compare_images writes a diff image beside `actual` on failure; work on a copy in tmp.
    shutil.copyfile(actual, tmp_path / actual.name)
    assert compare_images(str(expected), str(tmp_path / actual.name), tol=TOLERANCE) is None
