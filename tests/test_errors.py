"""netviz's errors: one root, builtin bases kept, raised by real calls, no bare builtins.

Three kinds of check:

- the hierarchy of :mod:`netviz.errors` (every class under ``NetvizError`` or
  ``NetvizWarning``, each error also the builtin a user caught before, all
  exported from ``netviz``);
- real calls across the package that a user gets wrong (a bad probe name, a
  malformed record file, a sink with a bad argument, an impossible conv, ...)
  raise an error that ``except netviz.NetvizError`` *and* the builtin catch;
- a scan of the sources: netviz never builds a bare ``ValueError``,
  ``TypeError`` or ``RuntimeError`` of its own, and every exception class it
  defines derives from ``NetvizError`` (or ``NetvizWarning``).
"""

from __future__ import annotations

import ast
import builtins
import inspect
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

import netviz
import netviz.errors as errors_mod

PACKAGE = Path(netviz.__file__).parent

# --------------------------------------------------------------------------- (a) the hierarchy

ERROR_CLASSES = [
    obj
    for _, obj in inspect.getmembers(errors_mod, inspect.isclass)
    if obj.__module__ == errors_mod.__name__
]

# The builtin each class must still be, written out by hand (not read from the classes).
BUILTIN_BASE = {
    "NetvizError": Exception,
    "NetvizValueError": ValueError,
    "RecordError": ValueError,
    "LayerConfigError": ValueError,
    "NetvizTypeError": TypeError,
    "NetvizRuntimeError": RuntimeError,
    "TorchCompatError": RuntimeError,
    "NetvizWarning": UserWarning,
    "NothingRecordedWarning": UserWarning,
}


def test_errors_module_defines_the_documented_classes():
    assert sorted(c.__name__ for c in ERROR_CLASSES) == sorted(BUILTIN_BASE)
    assert sorted(errors_mod.__all__) == sorted(BUILTIN_BASE)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_class_is_under_one_of_the_two_roots(cls):
    roots = [r for r in (netviz.NetvizError, netviz.NetvizWarning) if issubclass(cls, r)]
    assert len(roots) == 1, f"{cls.__name__} derives from {roots}"


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_class_is_exported_from_netviz(cls):
    assert cls.__name__ in netviz.__all__
    assert getattr(netviz, cls.__name__) is cls


@pytest.mark.parametrize("name", [n for n in BUILTIN_BASE if "Warning" not in n])
def test_the_builtin_a_user_caught_before_still_catches_it(name):
    cls = getattr(netviz, name)
    builtin = BUILTIN_BASE[name]
    with pytest.raises(builtin) as info:
        raise cls("what was wrong; what is accepted")
    assert type(info.value) is cls
    try:
        raise cls("x")
    except netviz.NetvizError as err:  # and the root catches every one of them
        assert type(err) is cls
    assert str(cls("the message")) == "the message"


def test_the_value_errors_nest_as_documented():
    assert issubclass(netviz.RecordError, netviz.NetvizValueError)
    assert issubclass(netviz.LayerConfigError, netviz.NetvizValueError)
    assert issubclass(netviz.TorchCompatError, netviz.NetvizRuntimeError)
    assert not issubclass(netviz.NetvizTypeError, ValueError)
    assert not issubclass(netviz.RecordError, TypeError)
    assert not issubclass(netviz.NetvizWarning, netviz.NetvizError)  # a warning, not an error


def test_warnings_filter_by_category():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=netviz.NothingRecordedWarning)
        warnings.warn("hidden", netviz.NothingRecordedWarning, stacklevel=1)
        warnings.warn("shown", netviz.NetvizWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["shown"]


# ------------------------------------------------------------- (b) real calls that raise


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))


def _garbage_parquet(tmp: Path) -> Path:
    path = tmp / "garbage.parquet"
    path.write_bytes(b"this is not a parquet file\x00\x01")
    return path


def _parquet_without_record_columns(tmp: Path) -> Path:
    path = tmp / "other.parquet"
    pd.DataFrame({"epoch": [0, 1], "loss": [1.0, 0.5]}).to_parquet(path)
    return path


def _csv_that_does_not_parse(tmp: Path) -> Path:
    path = tmp / "broken.csv"
    path.write_text('step,module\n0,"never closed\n')
    return path


def _pt_holding_a_list(tmp: Path) -> Path:
    path = tmp / "list.pt"
    torch.save([torch.zeros(1)], path)
    return path


def _detached_monitor() -> netviz.Monitor:
    model = _model()
    mon = netviz.watch(model)
    model(torch.ones(1, 2)).sum().backward()
    mon.step()
    mon.detach()
    return mon


# (id, call(tmp_path), the builtin a user catches, a fragment of the message)
CASES: list[tuple[str, Callable[[Path], object], type[Exception], str]] = [
    (
        "watch-unknown-probe",
        lambda tmp: netviz.watch(_model(), probes="no_such_probe"),
        ValueError,
        "unknown probe 'no_such_probe'",
    ),
    (
        "watch-selector-matches-nothing",
        lambda tmp: netviz.watch(_model(), modules="encoder.*"),
        ValueError,
        "match no module",
    ),
    (
        "watch-selector-of-wrong-type",
        lambda tmp: netviz.watch(_model(), modules=3.5),
        TypeError,
        "`modules` must be",
    ),
    (
        "watch-not-a-module",
        lambda tmp: netviz.watch("model"),
        TypeError,
        "torch.nn.Module",
    ),
    (
        "watch-sinks-a-string",
        lambda tmp: netviz.watch(_model(), sinks="tensorboard"),
        TypeError,
        "`sinks` must be",
    ),
    (
        "step-on-detached-monitor",
        lambda tmp: _detached_monitor().step(),
        RuntimeError,
        "detached",
    ),
    (
        "save-unknown-suffix",
        lambda tmp: _detached_monitor().save(tmp / "run.txt"),
        ValueError,
        "use one of .parquet, .pq, .csv",
    ),
    (
        "load-garbage-parquet",
        lambda tmp: netviz.load(_garbage_parquet(tmp)),
        ValueError,
        "not a readable Parquet file",
    ),
    (
        "load-parquet-without-record-columns",
        lambda tmp: netviz.load(_parquet_without_record_columns(tmp)),
        ValueError,
        "missing column",
    ),
    (
        "load-csv-that-does-not-parse",
        lambda tmp: netviz.load(_csv_that_does_not_parse(tmp)),
        ValueError,
        "not a readable CSV file",
    ),
    (
        "load-folder-without-parts",
        lambda tmp: netviz.load(tmp),
        ValueError,
        "without netviz record parts",
    ),
    (
        "load-tensors-not-a-dict",
        lambda tmp: netviz.load_tensors(_pt_holding_a_list(tmp)),
        ValueError,
        "does not hold a {str: Tensor} dict",
    ),
    (
        "save-tensors-not-a-mapping",
        lambda tmp: netviz.save_tensors([torch.zeros(1)], tmp / "t.pt"),
        TypeError,
        "mapping of str to Tensor",
    ),
    (
        "parquet-sink-zero-steps-per-file",
        lambda tmp: netviz.sinks.Parquet(tmp / "run.parquet", steps_per_file=0),
        ValueError,
        "`steps_per_file` must be an int >= 1",
    ),
    (
        "tensorboard-sink-of-an-object",
        lambda tmp: netviz.sinks.TensorBoard(object()),
        TypeError,
        "takes a log directory or a SummaryWriter",
    ),
    (
        "tracker-sink-unknown-series",
        lambda tmp: netviz.sinks.TensorBoard(tmp / "tb", series="everything"),
        ValueError,
        "'compact', 'all'",
    ),
    (
        "layermath-kernel-larger-than-input",
        lambda tmp: netviz.layermath.conv_output_size(2, 5),
        ValueError,
        "kernel_size",
    ),
    (
        "layermath-output-shape-impossible-conv",
        lambda tmp: netviz.layermath.output_shape(nn.Conv2d(3, 8, 5), (1, 3, 2, 2)),
        ValueError,
        "kernel_size",
    ),
    (
        "summary-input-size-of-wrong-type",
        lambda tmp: netviz.summary(_model(), input_size="2"),
        TypeError,
        "`input_size` must be",
    ),
    (
        "diagnose-wrong-type",
        lambda tmp: netviz.diagnose(42),
        TypeError,
        "must be a torch.nn.Module",
    ),
    (
        "attribution-unknown-method",
        lambda tmp: netviz.attribution(_model(), torch.ones(1, 2), method="shap"),
        ValueError,
        "unknown attribution method 'shap'",
    ),
    (
        "attribution-option-the-method-does-not-take",
        lambda tmp: netviz.attribution(_model(), torch.ones(1, 2), method="saliency", n_steps=5),
        TypeError,
        "takes no option",
    ),
    (
        "plot-of-a-table-that-is-not-records",
        lambda tmp: netviz.plot.gradient_flow(pd.DataFrame({"epoch": [0]})),
        ValueError,
        "missing column",
    ),
]


@pytest.mark.parametrize(
    ("call", "builtin", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_real_calls_raise_a_netviz_error_that_is_also_the_builtin(
    tmp_path, call, builtin, fragment
):
    with pytest.raises(netviz.NetvizError) as info:
        call(tmp_path)
    assert isinstance(info.value, builtin)
    assert fragment in str(info.value)


def test_a_malformed_record_file_is_a_record_error(tmp_path):
    for path in (_garbage_parquet(tmp_path), _csv_that_does_not_parse(tmp_path)):
        with pytest.raises(netviz.RecordError, match=r"netviz\.load reads"):
            netviz.load(path)


# ------------------------------------------------------------------ (c) a scan of the sources

BARE = frozenset({"ValueError", "TypeError", "RuntimeError"})
_BUILTIN_EXCEPTIONS = frozenset(
    name
    for name, obj in vars(builtins).items()
    if isinstance(obj, type) and issubclass(obj, BaseException)
)


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _name(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    is_attr = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
    if is_attr and node.value.id == "builtins":
        return node.attr
    return None


def bare_builtin_errors(source: str) -> list[int]:
    """Lines where netviz makes a ValueError/TypeError/RuntimeError of its own.

    ``raise ValueError(...)``, ``raise ValueError``, ``raise ValueError(...) from err``
    and a ``ValueError(...)`` built to be raised later all count; ``raise``
    alone, ``raise err`` and ``raise err from other`` (a caught exception
    raised again) and ``except ValueError`` do not.
    """
    lines = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Raise) and _name(node.exc) in BARE) or (
            isinstance(node, ast.Call) and _name(node.func) in BARE
        ):
            lines.append(node.lineno)
    return sorted(set(lines))


def exception_classes_outside_the_tree(source: str) -> list[tuple[int, str]]:
    """Classes whose bases are all builtin exceptions (so not under NetvizError)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.bases:
            bases = [_name(b) for b in node.bases]
            if all(b in _BUILTIN_EXCEPTIONS for b in bases):
                out.append((node.lineno, node.name))
    return out


def test_the_scanner_finds_what_it_should_and_nothing_else():
    flagged = """
def f(x, err):
    raise ValueError("a")
    raise TypeError
    raise RuntimeError(f"b") from err
    raise builtins.ValueError("c")
    problem = ValueError("d")
"""
    allowed = """
def g(x):
    try:
        h()
    except (ValueError, TypeError) as err:
        raise
    except RuntimeError as err:
        raise err
    except KeyError as err:
        raise NetvizValueError("e") from err
    if isinstance(x, ValueError):
        raise NotImplementedError
"""
    assert bare_builtin_errors(flagged) == [3, 4, 5, 6, 7]
    assert bare_builtin_errors(allowed) == []
    classes = "class A(ValueError): ...\nclass B(NetvizError, ValueError): ...\nclass C: ...\n"
    assert exception_classes_outside_the_tree(classes) == [(1, "A")]


def test_netviz_raises_no_bare_builtin_error_of_its_own():
    found = {}
    for path in _sources():
        lines = bare_builtin_errors(path.read_text(encoding="utf-8"))
        if lines:
            found[str(path.relative_to(PACKAGE.parent))] = lines
    assert not found, (
        "raise netviz's own errors (netviz.errors: NetvizValueError, RecordError, "
        f"NetvizTypeError, NetvizRuntimeError, ...) instead of builtins at {found}"
    )


def test_every_exception_class_netviz_defines_is_under_its_roots():
    found = {}
    roots = {"NetvizError", "NetvizWarning"}
    for path in _sources():
        rel = str(path.relative_to(PACKAGE.parent))
        bad = [
            c
            for c in exception_classes_outside_the_tree(path.read_text(encoding="utf-8"))
            if not (rel == "netviz/errors.py" and c[1] in roots)
        ]
        if bad:
            found[rel] = bad
    assert not found, f"derive these from a class of netviz.errors: {found}"
