"""What users read and copy uses only public names of netviz.

The gallery scripts, the code blocks of docs/*.md and README.md, and
examples/ must not import a private netviz module (a path component starting
with ``_``, such as ``netviz.plot._style``) or a private name (``from
netviz.x import _helper``), nor reach one by attribute
(``netviz.capture._compat``). Dunders such as ``netviz.__version__`` are
public. Prose may name internals (docs/architecture.md describes them for
contributors); the code a user copies may not.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_FROM = re.compile(r"^\s*from\s+(netviz(?:\.\w+)*)\s+import\s+(\([^)]*\)|[^\n#]+)", re.M)
_IMPORT = re.compile(r"^\s*import\s+(netviz(?:\.\w+)*)", re.M)
_ATTRIBUTE = re.compile(r"\bnetviz(?:\.\w+)*")
_FENCED = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def private_uses(text: str) -> list[str]:
    """Every private netviz module or name that ``text`` imports or names."""
    found = []
    for module, names in _FROM.findall(text):
        if any(_private(p) for p in module.split(".")):
            found.append(f"from {module} import ...")
        for name in re.split(r"[\s,()]+", names):
            name = name.split(" as ")[0].strip()
            if name and name != "as" and _private(name):
                found.append(f"from {module} import {name}")
    for module in _IMPORT.findall(text):
        if any(_private(p) for p in module.split(".")):
            found.append(f"import {module}")
    for dotted in _ATTRIBUTE.findall(text):
        if any(_private(p) for p in dotted.split(".")):
            found.append(dotted)
    return sorted(set(found))


def code_of(path: Path) -> str:
    """A Python file whole; of a Markdown file its fenced code blocks."""
    text = path.read_text(encoding="utf-8")
    return "\n".join(_FENCED.findall(text)) if path.suffix == ".md" else text


def user_facing_files() -> list[Path]:
    files = sorted((ROOT / "netviz" / "gallery" / "scripts").glob("*.py"))
    files += sorted((ROOT / "docs").glob("*.md"))
    files += [ROOT / "README.md"]
    files += sorted((ROOT / "examples").rglob("*.py"))
    return files


def test_the_checker_finds_private_uses():
    text = """
from netviz.plot._style import PALETTE
from netviz.capture import watch, _helper as h
import netviz.capture._compat
x = netviz.plot._histograms.rebin
from netviz import __version__
from netviz.plot import (
    PALETTE,
    _secret,
)
"""
    assert private_uses(text) == [
        "from netviz.capture import _helper",
        "from netviz.plot import _secret",
        "from netviz.plot._style import ...",
        "import netviz.capture._compat",
        "netviz.capture._compat",
        "netviz.plot._histograms.rebin",
        "netviz.plot._style",
    ]
    assert private_uses("import netviz\nnetviz.plot.theme.PALETTE, netviz.__version__") == []


def test_markdown_code_blocks_are_checked_and_prose_is_not(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(
        "Internals: `netviz._compat` holds the torch internals.\n\n"
        "```python\nfrom netviz.plot._style import PALETTE\n```\n",
        encoding="utf-8",
    )
    assert private_uses(code_of(doc)) == [
        "from netviz.plot._style import ...",
        "netviz.plot._style",
    ]


def test_scripts_docs_readme_and_examples_use_only_public_names():
    files = user_facing_files()
    assert len(files) > 50  # the gallery's 42 scripts, the docs, the README and the examples
    offenders = {
        str(path.relative_to(ROOT)): uses for path in files if (uses := private_uses(code_of(path)))
    }
    assert not offenders, "private netviz names in user-facing files:\n" + "\n".join(
        f"  {path}: {', '.join(uses)}" for path, uses in sorted(offenders.items())
    )
