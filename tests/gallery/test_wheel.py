"""The gallery ships with the package: build a wheel, install it (no
dependencies) into a fresh virtual environment, and run ``netviz gallery``
from it, outside the checkout and without PYTHONPATH.

The fresh venv has no site packages of its own; the dependencies (torch,
matplotlib, ...) come from the environment running the tests through a
``.pth`` line *appended* to the new venv's ``sys.path``, after its own
site-packages: netviz itself is imported from the installed wheel (checked),
so a file missing from the wheel fails the test. Lines of a ``.pth`` file add
folders without running *their* ``.pth`` files, so an editable install of
netviz in the outer environment stays inactive.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{cmd}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.mark.slow
def test_gallery_builds_from_an_installed_wheel(tmp_path):
    # Build from a copy of the sources, so that build/ and *.egg-info stay out of the checkout.
    src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "docs", "runs", "tests"
        ),
    )
    wheels = tmp_path / "wheels"
    # Offline with the running environment's setuptools; else pip fetches a build backend.
    no_isolation = ["--no-build-isolation"] if _has_setuptools() else []
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            *no_isolation,
            "-w",
            str(wheels),
            str(src),
        ],
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("netviz-*.whl")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(env_dir)
    py = env_dir / "bin" / "python"
    purelib = Path(
        _run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path
        ).strip()
    )
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        cwd=tmp_path,
    )
    outer = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    (purelib / "zz_outer_dependencies.pth").write_text(
        "\n".join(dict.fromkeys(p for p in outer if Path(p).is_dir())) + "\n"
    )

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["MPLBACKEND"] = "Agg"
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run(
        [
            str(py),
            "-c",
            "import netviz, netviz.gallery.catalog as c; print(netviz.__file__); print(c.default_src())",
        ],
        cwd=work,
        env=env,
    ).split()
    assert all(Path(p).is_relative_to(purelib) for p in where), where
    netviz_cli = env_dir / "bin" / "netviz"
    listing = _run([str(netviz_cli), "gallery", "list"], cwd=work, env=env)
    assert sum(1 for line in listing.splitlines() if line[:1] in "ABCDEF") >= 42
    out = work / "figs"
    _run(
        [str(netviz_cli), "gallery", "build", "--fast", "--only", "A4", "D9", "--out", str(out)],
        cwd=work,
        env=env,
    )
    assert (out / "A4_smallest_perceptron.png").is_file()
    assert (out / "D9_filters_feature_maps.png").is_file()  # imports the shipped _digits.py
    assert (out / "index.html").is_file()


def _has_setuptools() -> bool:
    try:
        import setuptools  # noqa: F401
    except ImportError:
        return False
    return True
