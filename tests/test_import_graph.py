"""The import graph of netviz, built from the sources: no cycle, one-way layers, any order.

(a) :func:`import_graph` reads every module of the package with :mod:`ast` and
    resolves every import (module level and inside functions) to netviz
    module files; the graph has no cycle.
(b) Between the parts of the package (a subpackage, or a top-level module),
    imports only go down the layer table :data:`LAYERS` (also in
    ``docs/architecture.md``).
(c) Every module imports in random orders in fresh interpreters, and
    ``import netviz`` works after each order.

What counts as an edge of ``importer -> imported``:

- ``import netviz.a.b`` and ``from netviz.a import b`` (a submodule) import
  ``netviz.a.b`` and, because Python runs them first, the ``__init__`` of every
  package on the way (``netviz.a``), except the packages that contain the
  importer (they are always initialised before it);
- ``from netviz.a import name`` (an attribute) imports ``netviz.a``; when
  ``netviz.a`` resolves ``name`` lazily through its ``_LAZY`` table (a module
  ``__getattr__``), also the module ``name`` comes from;
- ``import netviz`` alone (to read an attribute of the package) imports ``netviz``;
- imports under ``if TYPE_CHECKING:`` never run and do not count.
"""

from __future__ import annotations

import ast
import functools
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "netviz"

#: Layers of the package, lowest first (the table of docs/architecture.md): a part
#: imports only parts of lower layers; parts of one layer do not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "_leaf", "_version"),  # leaves: import nothing of netviz
    ("_compat",),  # every private torch API and patch, with its fallback
    ("_progress", "layermath"),  # progress bars; layer math alone (uses _compat's kernel rules)
    ("records",),  # the record model: tables, files, histograms
    ("sinks",),  # where a step's records go (TensorBoard, wandb, MLflow, Parquet)
    ("capture",),  # probes, hooks, the monitor
    ("analysis",),  # records in, findings out: never capture, never plot
    ("plot",),  # figures of records (and of captured tensors)
    ("diagnosis", "model_summary"),  # run a model, then analyse it; layer summaries
    ("reporting",),  # the HTML report and notebook displays
    ("integrations", "gallery"),  # Lightning, HF, accelerate callbacks; the lecture gallery
    ("cli",),  # the `netviz` command
    ("__main__",),  # python -m netviz
)

#: The only imports against :data:`LAYERS`, each with its reason. Each must
#: exist (a fixed exception that disappears is removed from this table).
_DISPLAY = (
    "Monitor._repr_html_/_repr_pretty_ (function-level): the notebook display of a monitor "
    "is drawn by the reporting layer (netviz.reporting is lazy, display reads records only)"
)
UPWARD: dict[tuple[str, str], str] = {
    ("netviz.capture.monitor", "netviz.reporting.display"): _DISPLAY,
    ("netviz.capture.monitor", "netviz.reporting"): _DISPLAY,
}


def _modules() -> dict[str, tuple[Path, bool]]:
    mods = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        mods[".".join(parts)] = (path, is_pkg)
    return mods


def _lazy_table(tree: ast.Module, package: str) -> dict[str, str]:
    """``{name: module}`` of a package's ``_LAZY`` table (values: a module name,
    ``(module, attribute)``, or a submodule name relative to the package)."""
    out: dict[str, str] = {}
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if not (isinstance(target, ast.Name) and target.id == "_LAZY"):
            continue
        value = node.value
        if not isinstance(value, ast.Dict):
            continue
        for key, val in zip(value.keys, value.values):
            if isinstance(val, ast.Tuple):
                val = val.elts[0]
            if isinstance(key, ast.Constant) and isinstance(val, ast.Constant):
                name = str(val.value)
                out[str(key.value)] = name if name.startswith("netviz") else f"{package}.{name}"
    return out


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip.update(id(n) for n in ast.walk(child))
    return skip


@functools.lru_cache(maxsize=1)
def _graph() -> dict[str, frozenset[str]]:
    return {m: frozenset(t) for m, t in _build_graph().items()}


def import_graph() -> dict[str, set[str]]:
    """``{module: modules it imports}`` over every module of netviz (see the module docstring)."""
    return {m: set(t) for m, t in _graph().items()}


def _build_graph() -> dict[str, set[str]]:
    """``{module: modules it imports}`` over every module of netviz (see the module docstring)."""
    mods = _modules()
    trees = {m: ast.parse(path.read_text(encoding="utf-8")) for m, (path, _) in mods.items()}
    lazy = {m: _lazy_table(trees[m], m) for m, (_, is_pkg) in mods.items() if is_pkg}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, (_, is_pkg) in mods.items():
        own = {".".join(mod.split(".")[:i]) for i in range(1, mod.count(".") + 2)}

        def add(target: str, explicit: bool, mod: str = mod, own: set[str] = own) -> None:
            parts = target.split(".")
            for i in range(1, len(parts)):  # the packages Python initialises on the way
                parent = ".".join(parts[:i])
                if parent in mods and parent not in own:
                    graph[mod].add(parent)
            if target != mod and target in mods and (explicit or target not in own):
                graph[mod].add(target)

        skip = _type_checking_nodes(trees[mod])
        for node in ast.walk(trees[mod]):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] != "netviz":
                        continue
                    parts = alias.name.split(".")
                    while ".".join(parts) not in mods:
                        parts.pop()
                    add(".".join(parts), explicit=len(parts) == 1)
            elif isinstance(node, ast.ImportFrom):
                base_parts = mod.split(".") if is_pkg else mod.split(".")[:-1]
                if node.level:
                    base_parts = base_parts[: len(base_parts) - node.level + 1]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                if base.split(".")[0] != "netviz":
                    continue
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if sub in mods:
                        add(sub, explicit=True)
                    else:
                        add(base, explicit=True)
                        if alias.name in lazy.get(base, {}):
                            add(lazy[base][alias.name], explicit=True)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return [*path[path.index(w) :], w]
            if w not in state:
                found = visit(w)
                if found:
                    return found
        path.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state:
            found = visit(v)
            if found:
                return found
    return None


def part(module: str) -> str:
    """The part of the package a module belongs to: its subpackage or top-level module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer_of() -> dict[str, int]:
    return {p: i for i, layer in enumerate(LAYERS) for p in layer}


# ---------------------------------------------------------------- (a) no cycle


def test_graph_sees_every_kind_of_import() -> None:
    """The graph builder itself, on imports whose edges are known by hand."""
    graph = import_graph()
    # module-level submodule import
    assert "netviz.capture._fused" in graph["netviz.capture.stats"]
    # function-level import, and the package __init__ it runs
    assert {"netviz.reporting.display", "netviz.reporting"} <= graph["netviz.capture.monitor"]
    # from a lazy package: the module the name comes from (netviz.plot._LAZY)
    assert {"netviz.plot", "netviz.plot.theme"} <= graph["netviz.cli.diagnose"]
    # TYPE_CHECKING imports do not run
    assert "netviz.capture.monitor" not in graph["netviz.capture.probe"]
    # the root imports the capture names lazily through netviz.capture._LAZY
    assert "netviz.capture.attach" in graph["netviz"]


def test_find_cycle_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_leaf_modules_import_nothing_of_netviz() -> None:
    graph = import_graph()
    for leaf in ("netviz._leaf", "netviz.errors", "netviz._version"):
        assert graph[leaf] <= {"netviz.errors"}, (leaf, graph[leaf])


# ---------------------------------------------------------------- (b) layers


def test_every_part_has_a_layer() -> None:
    parts = {part(m) for m in _modules()} - {"__init__"}
    missing = sorted(parts - set(_layer_of()))
    assert not missing, f"parts of netviz without a layer in LAYERS: {missing}"


def test_imports_go_down_the_layers() -> None:
    layer = _layer_of()
    wrong, used = [], set()
    for mod, targets in import_graph().items():
        if mod == "netviz":
            continue  # the package's own __init__ lists the public API of every layer
        for target in targets:
            a, b = part(mod), part(target)
            if a == b or b == "__init__":
                continue
            if (mod, target) in UPWARD:
                used.add((mod, target))
            elif layer[b] >= layer[a]:
                wrong.append(f"{mod} ({a}, layer {layer[a]}) -> {target} ({b}, layer {layer[b]})")
    assert not wrong, "imports against LAYERS:\n" + "\n".join(sorted(wrong))
    assert used == set(UPWARD), f"exceptions in UPWARD that no longer exist: {set(UPWARD) - used}"


def test_root_package_reads_nothing_it_lists_lazily() -> None:
    """``from netviz import x`` inside the library would run netviz/__init__'s whole public
    API; only the top (cli) and the gallery scripts (programs using the public API) do it."""
    graph = import_graph()
    users = sorted(
        m
        for m, t in graph.items()
        if "netviz" in t and part(m) != "cli" and not m.startswith("netviz.gallery.scripts.")
    )
    assert users == [], users


def test_analysis_is_pure() -> None:
    """analysis imports neither capture nor plot (nor anything above them)."""
    graph = import_graph()
    layer = _layer_of()
    for mod, targets in graph.items():
        if part(mod) != "analysis":
            continue
        bad = {t for t in targets if part(t) in ("capture", "plot", "diagnosis")}
        assert not bad, (mod, bad)
        assert all(layer[part(t)] <= layer["analysis"] for t in targets if part(t) != "__init__")


# ---------------------------------------------------------------- (c) any order

SEEDS = (0, 1, 2, 3, 4)

_SCRIPT = """
import importlib, random, sys
mods = sys.argv[2:]
random.Random(int(sys.argv[1])).shuffle(mods)
for m in mods:
    importlib.import_module(m)
import netviz
for name in netviz.__all__:
    getattr(netviz, name)
print("ok", len(mods))
"""


def _importable(frameworks: bool = True) -> list[str]:
    """Every module of netviz but the gallery scripts (programs: they train and draw when
    imported) and ``__main__``; without ``frameworks``, also without the integration modules
    that import Lightning, transformers or accelerate (most of the time of an order)."""
    return sorted(
        m
        for m in _modules()
        if not m.startswith("netviz.gallery.scripts")
        and m != "netviz.__main__"
        and (frameworks or not (m.startswith("netviz.integrations.") and m[20] != "_"))
    )


@pytest.mark.slow
def test_modules_import_in_any_order() -> None:
    """Every module, in the order of each seed, in its own fresh interpreter (run side by side):
    the library's modules for each of SEEDS, and once every module with the integrations."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    orders = {seed: _importable(frameworks=False) for seed in SEEDS}
    orders[len(SEEDS)] = _importable()
    procs = {
        seed: subprocess.Popen(
            [sys.executable, "-c", _SCRIPT, str(seed), *mods],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for seed, mods in orders.items()
    }
    failed = {}
    for seed, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        if proc.returncode != 0 or out.split() != ["ok", str(len(orders[seed]))]:
            failed[seed] = err[-2000:]
    assert not failed, "\n".join(f"seed {s}:\n{e}" for s, e in failed.items())


def test_one_random_order_reaches_every_module() -> None:
    """The shuffled list of (c) holds every module once (what the orders are drawn from)."""
    mods = _importable()
    shuffled = list(mods)
    random.Random(0).shuffle(shuffled)
    assert sorted(shuffled) == mods and len(set(mods)) == len(mods)
    assert {
        "netviz.capture.stats",
        "netviz.analysis.order",
        "netviz.integrations.lightning",
    } <= set(mods)
    light = set(_importable(frameworks=False))
    assert "netviz.integrations.lightning" not in light and "netviz.integrations._common" in light
