r"""A model's own positional encoding table: :func:`positional_encoding_weights`.

It reads the table (a learned embedding, a parameter or a registered buffer)
out of the model; it runs nothing. The sinusoidal formula is
:func:`netviz.layermath.sinusoidal_encoding`.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from netviz.capture.selection import unwrap
from netviz.errors import NetvizTypeError, NetvizValueError
from netviz.layermath.positional import positive_int

__all__ = ["positional_encoding_weights"]

_NAME_PATTERN = re.compile(
    r"(^|[._])(pos|position|positions|positional|pe|wpe|pos_?embed\w*)([._]|$)"
)


def _looks_positional(name: str) -> bool:
    low = name.lower()
    return bool(_NAME_PATTERN.search(low)) or "position" in low or low.startswith("pos_")


def _as_table(name: str, tensor: torch.Tensor) -> torch.Tensor:
    table = tensor.detach()
    while table.dim() > 2 and 1 in table.shape:
        table = table.squeeze(table.shape.index(1))
    if table.dim() != 2:
        raise NetvizValueError(
            f"positional encoding {name!r} has shape {tuple(tensor.shape)}; expected "
            "(length, dim) or that with singleton dims such as (1, length, dim)"
        )
    return table


def _candidates(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{qualified name: tensor}`` of positional-looking embeddings, parameters and buffers."""
    found: dict[str, torch.Tensor] = {}
    embedding_weights: set[int] = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.Embedding):
            embedding_weights.add(id(module.weight))
            if name and _looks_positional(name):
                found[name] = module.weight
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    for name, tensor in tensors:
        if tensor is None or id(tensor) in embedding_weights or tensor.dim() < 2:
            continue
        if not tensor.is_floating_point():  # e.g. BERT's integer ``position_ids`` buffer
            continue
        if _looks_positional(name):
            found[name] = tensor
    return found


def positional_encoding_weights(
    model: nn.Module, name: str | None = None, length: int | None = None
) -> torch.Tensor:
    """A model's positional encoding table, ``(length, dim)``.

    Looks for a learned :class:`torch.nn.Embedding` of positions (its
    ``weight``), or a parameter or buffer (e.g. a registered sinusoidal
    ``pe`` buffer of shape ``(max_len, 1, d)`` or ``(1, max_len, d)``;
    singleton dimensions are squeezed).

    Parameters
    ----------
    model
        The model.
    name
        Qualified name of the embedding module, parameter or buffer. If
        ``None``, the one whose name looks positional (a name part
        ``pos``/``position(s)``/``positional``/``pe``/``wpe``/``pos_embed...``
        or containing "position") is used.
    length
        Keep the first ``length`` positions (default: all).

    Returns
    -------
    torch.Tensor
        Detached copy, on the model's device.

    Raises
    ------
    NetvizValueError
        No candidate, several candidates (the message lists them: pass
        ``name=``), an unknown ``name``, a table that is not 2-D after
        squeezing, or ``length`` larger than the table.

    Examples
    --------
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.tok = nn.Embedding(100, 8)
    ...         self.pos = nn.Embedding(16, 8)
    >>> positional_encoding_weights(Net(), length=10).shape
    torch.Size([10, 8])
    """
    if not isinstance(model, nn.Module):
        raise NetvizTypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    model = unwrap(model)
    if name is not None:
        modules = dict(model.named_modules())
        module = modules.get(name)
        tensors = dict(model.named_parameters()) | dict(model.named_buffers())
        if isinstance(module, nn.Embedding):
            tensor = module.weight
        elif name in tensors and tensors[name] is not None:
            tensor = tensors[name]
        else:
            known = sorted(_candidates(model)) or sorted(tensors)[:8]
            raise NetvizValueError(
                f"`name` {name!r} is neither an nn.Embedding nor a parameter or buffer of the "
                f"model; candidates: {known}"
            )
        chosen = name
    else:
        found = _candidates(model)
        if not found:
            raise NetvizValueError(
                "found no positional encoding: no nn.Embedding, parameter or buffer with a "
                "positional name (pos, position, positional, pe, wpe, pos_embed...); pass `name=`"
            )
        if len(found) > 1:
            raise NetvizValueError(
                f"several positional encoding candidates: {sorted(found)}; pass `name=` to pick one"
            )
        chosen, tensor = next(iter(found.items()))
    table = _as_table(chosen, tensor)
    if length is not None:
        length = positive_int(length, "length")
        if length > table.shape[0]:
            raise NetvizValueError(
                f"`length` {length} exceeds the {table.shape[0]} positions of {chosen!r}"
            )
        table = table[:length]
    return table.clone()
