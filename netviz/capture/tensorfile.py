"""Save and load ``{name: tensor}`` captures without pickling arbitrary objects.

``.pt`` files are written with :func:`torch.save` and read with
``torch.load(weights_only=True)``; ``.npz`` files with :func:`numpy.savez`
and read with ``allow_pickle=False``. Either way, loading a file never runs
code from it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from netviz.errors import NetvizTypeError, NetvizValueError, RecordError

__all__ = ["load_tensors", "save_tensors"]

_SUFFIXES = (".pt", ".pth", ".npz")


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise NetvizValueError(
            f"unsupported file type {suffix or '(none)'!r} for {str(path)!r}; use .pt or .npz"
        )
    return suffix


def save_tensors(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike[str]) -> Path:
    """Write ``{name: tensor}`` (e.g. from :func:`netviz.capture_attention`) to ``path``.

    Tensors are moved to the CPU; ``.npz`` stores bfloat16 as float32.

    Raises
    ------
    netviz.NetvizTypeError
        (a ``TypeError``) ``tensors`` is not a mapping of ``str`` to ``torch.Tensor``.
    netviz.NetvizValueError
        (a ``ValueError``) Unsupported suffix (use ``.pt`` or ``.npz``).

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "att.npz"
    >>> _ = save_tensors({"layers.0": torch.eye(2)}, path)
    >>> load_tensors(path)
    {'layers.0': tensor([[1., 0.],
            [0., 1.]])}
    """
    path = Path(path)
    suffix = _suffix(path)
    if not isinstance(tensors, Mapping):
        raise NetvizTypeError(
            f"`tensors` must be a mapping of str to Tensor, got {type(tensors).__name__}"
        )
    clean: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise NetvizTypeError(
                f"`tensors` must map str to torch.Tensor; entry {key!r} is "
                f"{type(key).__name__} -> {type(value).__name__}"
            )
        clean[key] = value.detach().cpu()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npz":
        arrays = {
            k: (v.float() if v.dtype == torch.bfloat16 else v).numpy() for k, v in clean.items()
        }
        with open(path, "wb") as fh:
            # numpy's stub types `**kwds` against its own `allow_pickle: bool` keyword
            # (keyword added in numpy 2.x; netviz supports 1.24, so it is not passed)
            np.savez(fh, **arrays)  # type: ignore[arg-type]
    else:
        torch.save(clean, path)
    return path


def load_tensors(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a file written by :func:`save_tensors` (keys in their saved order).

    Raises
    ------
    netviz.NetvizValueError
        (a ``ValueError``) Unsupported suffix.
    netviz.RecordError
        (a ``ValueError``) A ``.pt`` file that does not hold a ``{str: Tensor}`` dict.
    """
    path = Path(path)
    suffix = _suffix(path)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return {k: torch.from_numpy(np.array(data[k])) for k in data.files}
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(loaded, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
    ):
        raise RecordError(
            f"{str(path)!r} does not hold a {{str: Tensor}} dict (got {type(loaded).__name__}); "
            "load_tensors reads the files written by netviz.save_tensors"
        )
    return dict(loaded)
