"""Find gallery scripts and read their headers (ID, title, lecture topic).

Every gallery script starts with a docstring in sphinx-gallery form::

    \"\"\"
    D3 · Convolution as a matrix product
    ====================================

    *Lecture topic:* Convolutions (notes 002)

    What the figure shows ...
    \"\"\"

:func:`parse_header` reads the first line (``<ID> · <Title>``) and the
``*Lecture topic:*`` line; :func:`find_scripts` lists the scripts of a folder
in catalogue order (A1, A2, ..., A10, B1, ...).
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from pathlib import Path

from netviz.errors import NetvizValueError

__all__ = [
    "GalleryError",
    "Script",
    "default_src",
    "find_scripts",
    "id_sort_key",
    "parse_header",
    "select",
]

#: File names of gallery scripts: ``<ID>_<name>.py`` with ID a letter and a number.
SCRIPT_RE = re.compile(r"^(?P<id>[A-Z]\d+)_(?P<name>\w+)\.py$")
_TITLE_RE = re.compile(r"^(?P<id>[A-Z]\d+) \u00b7 (?P<title>\S.*)$")
_TOPIC_RE = re.compile(r"^\*Lecture topic:\*\s*(?P<topic>\S.*)$")


class GalleryError(NetvizValueError):
    """A gallery script, folder or selection is not what the gallery expects."""


@dataclass(frozen=True)
class Script:
    """One gallery script: ``path``, its ``id`` (``"A2"``), file ``name``, ``title`` and ``topic``."""

    id: str
    name: str
    title: str
    topic: str
    summary: str
    path: Path

    @property
    def stem(self) -> str:
        """File stem, used for the output files: ``"A2_xor_hidden_units"``."""
        return self.path.stem


def id_sort_key(script_id: str) -> tuple[str, int]:
    """Catalogue order: letter, then number (so ``A10`` follows ``A9``).

    >>> sorted(["A10", "B1", "A2"], key=id_sort_key)
    ['A2', 'A10', 'B1']
    """
    m = re.fullmatch(r"([A-Z])(\d+)", script_id)
    if m is None:
        raise GalleryError(
            f"not a gallery figure ID: {script_id!r} (expected a letter and a number, e.g. 'A2')"
        )
    return m.group(1), int(m.group(2))


def parse_header(source: str, filename: str = "<script>") -> tuple[str, str, str, str]:
    """``(id, title, topic, summary)`` from a gallery script's source text.

    Raises
    ------
    GalleryError
        If the script has no module docstring, or its first line is not
        ``"<ID> · <Title>"`` underlined with ``=`` of the same length, or the
        ``*Lecture topic:*`` line is missing.

    Examples
    --------
    >>> src = '\"\"\"\\nA1 · XOR\\n========\\n\\n*Lecture topic:* Perceptrons (notes 000)\\n\\nFour points.\\n\"\"\"\\n'
    >>> parse_header(src)
    ('A1', 'XOR', 'Perceptrons (notes 000)', 'Four points.')
    """
    try:
        doc = ast.get_docstring(ast.parse(source, filename=filename), clean=True)
    except SyntaxError as err:
        raise GalleryError(f"{filename}: not valid Python ({err.msg}, line {err.lineno})") from err
    if not doc:
        raise GalleryError(f"{filename}: no module docstring; a gallery script starts with one")
    lines = doc.splitlines()
    m = _TITLE_RE.match(lines[0].strip())
    if m is None:
        raise GalleryError(
            f"{filename}: first docstring line {lines[0]!r} is not '<ID> \u00b7 <Title>' "
            "(a letter and number, a space, a middle dot U+00B7, a space, the title)"
        )
    title_line = lines[0].strip()
    underline = lines[1].strip() if len(lines) > 1 else ""
    if underline != "=" * len(title_line):
        raise GalleryError(
            f"{filename}: the title must be underlined with {len(title_line)} '=' characters "
            f"(got {underline!r})"
        )
    topic = None
    summary_lines: list[str] = []
    for line in lines[2:]:
        t = _TOPIC_RE.match(line.strip())
        if t and topic is None:
            topic = t.group("topic").strip()
        elif topic is not None:
            if not line.strip() and summary_lines:
                break
            if line.strip():
                summary_lines.append(line.strip())
    if topic is None:
        raise GalleryError(
            f"{filename}: no '*Lecture topic:* <topic> (notes NNN)' line in the docstring"
        )
    return m.group("id"), m.group("title").strip(), topic, " ".join(summary_lines)


def read_script(path: str | os.PathLike) -> Script:
    """A :class:`Script` from a file; checks that the docstring ID matches the file name."""
    path = Path(path)
    fm = SCRIPT_RE.match(path.name)
    if fm is None:
        raise GalleryError(
            f"{path}: gallery scripts are named '<ID>_<name>.py', e.g. 'A2_xor_hidden_units.py'"
        )
    sid, title, topic, summary = parse_header(path.read_text(encoding="utf-8"), str(path))
    if sid != fm.group("id"):
        raise GalleryError(
            f"{path}: docstring ID {sid!r} differs from the file name's ID {fm.group('id')!r}"
        )
    return Script(sid, fm.group("name"), title, topic, summary, path.resolve())


def find_scripts(src: str | os.PathLike) -> list[Script]:
    """All gallery scripts of folder ``src`` (files ``<ID>_<name>.py``), in catalogue order."""
    src = Path(src)
    if not src.is_dir():
        raise GalleryError(f"gallery source folder {str(src)!r} does not exist or is not a folder")
    scripts = [read_script(p) for p in sorted(src.iterdir()) if SCRIPT_RE.match(p.name)]
    return sorted(scripts, key=lambda s: (id_sort_key(s.id), s.name))


def select(scripts: list[Script], only: list[str] | None) -> list[Script]:
    """The scripts whose ID (``"A2"``, case-insensitive) or file stem is in ``only`` (all if ``None``)."""
    if not only:
        return list(scripts)
    wanted = {o.strip().upper() for o in only}
    known = {s.id for s in scripts} | {s.stem.upper() for s in scripts}
    unknown = sorted(wanted - known)
    if unknown:
        raise GalleryError(
            f"--only: unknown figure ID(s) {unknown}; known IDs: {', '.join(s.id for s in scripts)}"
        )
    return [s for s in scripts if s.id in wanted or s.stem.upper() in wanted]


#: The gallery scripts ship inside the package (package data, not a subpackage:
#: no ``__init__.py``, so importing netviz's submodules never runs a figure).
SCRIPTS_DIR = Path(__file__).resolve().parent / "scripts"


def default_src(cwd: str | os.PathLike | None = None) -> Path:
    """The gallery folder: the scripts installed with netviz (``netviz/gallery/scripts``), else ``./gallery``."""
    candidates = [SCRIPTS_DIR, Path(cwd or os.getcwd()) / "gallery"]
    for c in candidates:
        if c.is_dir() and any(SCRIPT_RE.match(p.name) for p in c.iterdir()):
            return c
    raise GalleryError(
        "no gallery folder found (looked in "
        + " and ".join(str(c) for c in candidates)
        + "); the scripts ship with netviz in netviz/gallery/scripts: reinstall netviz "
        "or pass --src DIR"
    )
