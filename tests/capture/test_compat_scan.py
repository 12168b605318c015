"""No module of netviz outside ``netviz/_compat/`` touches a private PyTorch name.

An AST scan of the package; a second test shows that the scan catches each
kind of access it looks for.
"""

from __future__ import annotations

import ast
from pathlib import Path

import torch
from torch import nn

from netviz import _compat

PACKAGE = Path(_compat.__file__).parent.parent  # netviz/
COMPAT = PACKAGE / "_compat"


def _torch_private_names() -> set[str]:
    """Private attribute names of the torch objects netviz code handles."""
    import torch.distributed as dist
    import torch.nn.functional as F

    objects = [
        torch,
        torch._C,
        F,
        dist,
        torch.backends,
        torch.Tensor,
        torch.ones(1),
        nn.Parameter(torch.ones(1)),
        nn.Module(),
        nn.MultiheadAttention(4, 2),
        nn.TransformerEncoderLayer(4, 2),
        nn.BatchNorm1d(2),
        torch.optim.Adam([nn.Parameter(torch.ones(1))]),
        torch.amp.GradScaler("cpu", enabled=False),
    ]
    import torch.distributed.tensor.placement_types as placement_types

    objects += [nn.modules.batchnorm, nn.modules.conv, nn.modules.pooling, placement_types]
    names = {n for o in objects for n in dir(o)}
    names |= {"_orig_mod", "_get_file_writer", "_optimizer", "_lengths", "_get_backend", "_timeout"}
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def _torch_aliases(tree: ast.Module) -> set[str]:
    """Local names bound to torch or one of its submodules in a module."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "torch" or a.name.startswith("torch."):
                    out.add(a.asname or a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "torch":
            out.update(a.asname or a.name for a in node.names)
    return out


def _private_torch_uses(path: Path, private: set[str], root: Path | None = None) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases = _torch_aliases(tree)
    rel = path.relative_to(root or PACKAGE.parent)
    found = []
    for node in ast.walk(tree):
        where = f"{rel}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            names = [] if isinstance(node, ast.Import) else [a.name for a in node.names]
            for mod in mods:
                parts = (mod or "").split(".")
                if parts[0] == "torch" and any(p.startswith("_") for p in parts):
                    found.append(f"{where} imports {mod}")
                elif parts[0] == "torch":
                    found += [f"{where} imports {mod}.{n}" for n in names if n.startswith("_")]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            if node.attr.startswith("__"):
                continue
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            own = isinstance(base, ast.Name) and base.id in ("self", "cls")
            on_torch = isinstance(base, ast.Name) and base.id in aliases
            if on_torch or (node.attr in private and not own):
                found.append(f"{where} {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr", "delattr")
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in private
        ):
            found.append(f"{where} {node.func.id}(..., {node.args[1].value!r})")
        elif isinstance(node, ast.Constant) and node.value in private:
            found.append(f"{where} the string {node.value!r}")
    return found


def _own_attributes(paths: list[Path]) -> set[str]:
    """Attribute names netviz's own classes assign (``self._modules = ...``)."""
    own = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id in ("self", "cls")
            ):
                own.add(node.attr)
    return own


def test_no_private_torch_access_outside_compat():
    """No module outside ``netviz/_compat/`` imports a private torch module or reads a private name.

    Flagged: imports of ``torch._x`` modules or names, ``._x`` on a name bound
    to torch (``torch._C``, ``F._canonical_mask``), and, on any object, the
    private attribute names of the torch objects netviz handles (modules,
    tensors, optimizers, scalers, compiled modules, process groups, summary
    writers), as attributes, ``getattr`` names or strings. Names netviz's own
    classes also use (``Monitor._modules``) are not flagged off ``self``-less
    objects, except those netviz must never read off a torch object itself.
    """
    private = _torch_private_names()
    assert {"_parameters", "_forward_hooks", "_foreach_norm", "_C"} <= private  # the scan sees them
    paths = [p for p in sorted(PACKAGE.rglob("*.py")) if COMPAT not in p.parents]
    never = {"_parameters", "_orig_mod", "_qkv_same_embed_dim", "_get_file_writer", "_timeout"}
    never |= set(_compat.HOOK_DICTS)
    private -= _own_attributes(paths) - never
    found = []
    for path in paths:
        found += _private_torch_uses(path, private)
    assert not found, "private torch names outside netviz/_compat/:\n" + "\n".join(found)


def test_the_scan_finds_private_torch_access(tmp_path):
    """The scan above is not vacuous: each kind of access it must catch is caught."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import torch\nimport torch.nn.functional as F\nfrom torch._C import _functorch\n"
        "from torch.utils._python_dispatch import _disable_current_modes\n"
        "a = torch._foreach_norm\nb = F._canonical_mask\nc = module._parameters\n"
        "d = getattr(model, '_orig_mod', None)\ne = self._parameters\n",
        encoding="utf-8",
    )
    found = _private_torch_uses(sample, _torch_private_names(), root=tmp_path)
    lines = sorted({int(f.split(":")[1].split()[0]) for f in found})
    assert lines == [3, 4, 5, 6, 7, 8], found  # line 9: netviz's own attribute, not flagged
