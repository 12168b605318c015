"""Which modules of a model a probe looks at.

``modules`` may be ``None`` (every leaf module, plus every module that owns
parameters directly, such as :class:`torch.nn.MultiheadAttention` whose
``in_proj_weight`` lives on the module itself), a glob or list of globs over
qualified names, a module type or tuple of types, or a predicate
``(name, module) -> bool``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Union

from torch import nn

from netviz._compat import compiled_original
from netviz.errors import NetvizTypeError, NetvizValueError
from netviz.records.selection import select_names

__all__ = ["ModuleSelector", "named_modules", "select_modules"]

ModuleSelector = Union[  # noqa: UP007 (a runtime alias, readable in help())
    None,
    str,
    Iterable[str],
    type,
    tuple[type, ...],
    Callable[[str, nn.Module], bool],
]


def unwrap(model: nn.Module) -> nn.Module:
    """The user's model inside common wrappers (DDP, DataParallel, torch.compile).

    Qualified names are reported relative to the unwrapped model so that
    single-process and wrapped runs produce the same module names.
    """
    seen = 0
    while seen < 8:
        seen += 1
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif (inner := compiled_original(model)) is not None:
            model = inner  # torch.compile's OptimizedModule
        else:
            break
    return model


def named_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(qualified_name, module)`` of every distinct module, the root named ``""``."""
    return list(unwrap(model).named_modules())


def _is_default(module: nn.Module) -> bool:
    has_children = next(module.children(), None) is not None
    owns_params = next(module.parameters(recurse=False), None) is not None
    return not has_children or owns_params


def _describe(selector: object) -> str:
    text = repr(selector)
    return text if len(text) < 80 else text[:77] + "..."


def select_modules(model: nn.Module, modules: ModuleSelector = None) -> list[tuple[str, nn.Module]]:
    """Resolve a selector to ``(qualified_name, module)`` pairs in model order.

    Raises
    ------
    TypeError
        If ``modules`` is of an unsupported kind.
    ValueError
        If the selection matches no module; the message names close names.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    >>> [n for n, _ in select_modules(net, "*")]
    ['0', '1', '2']
    >>> [n for n, _ in select_modules(net, nn.Linear)]
    ['0', '2']
    """
    named = named_modules(model)
    if modules is None:
        chosen = [(n, m) for n, m in named if _is_default(m)]
        if not chosen:  # a bare module with neither children nor parameters
            chosen = named[:1]
        return chosen
    if isinstance(modules, type) or (
        isinstance(modules, tuple) and modules and all(isinstance(t, type) for t in modules)
    ):
        types = modules if isinstance(modules, tuple) else (modules,)
        if not all(issubclass(t, nn.Module) for t in types):
            raise NetvizTypeError(
                f"`modules` types must be nn.Module subclasses, got {_describe(modules)}"
            )
        chosen = [(n, m) for n, m in named if isinstance(m, types)]
        what = "of type " + ", ".join(t.__name__ for t in types)
        present = sorted({type(m).__name__ for _, m in named})[:6]
        if not chosen:
            raise NetvizValueError(
                f"`modules` selects no module {what}; the model has types: {', '.join(present)}"
            )
        return chosen
    if isinstance(modules, str):
        patterns = [modules]
    elif callable(modules):
        chosen = [(n, m) for n, m in named if modules(n, m)]
        if not chosen:
            raise NetvizValueError(
                f"`modules` predicate {_describe(modules)} selected no module; "
                f"module names include: {', '.join(repr(n) for n, _ in named[1:6])}"
            )
        return chosen
    elif isinstance(modules, Iterable):
        patterns = list(modules)  # type: ignore[arg-type]  # checked to be str just below
        if not patterns or not all(isinstance(p, str) for p in patterns):
            raise NetvizTypeError(
                "`modules` must be None, a glob or list of globs (str), a module type or "
                f"tuple of types, or a predicate (name, module) -> bool; got {_describe(modules)}"
            )
    else:
        raise NetvizTypeError(
            "`modules` must be None, a glob or list of globs (str), a module type or "
            f"tuple of types, or a predicate (name, module) -> bool; got {_describe(modules)}"
        )
    # The root module is named "" and is only matched by the pattern "" itself;
    # the glob rules are the records' (one implementation for models and tables).
    picked = set(select_names([n for n, _ in named], patterns, what="the model"))
    chosen = [(n, m) for n, m in named if n in picked]
    return chosen
