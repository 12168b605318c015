r"""Positional encodings: the sinusoidal formula and a model's own (learned) table.

:func:`sinusoidal_encoding` follows Vaswani et al. (2017) and the sin-only
variant of the lecture notes; :func:`capture_positional_encoding` finds the
positional table inside a model.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from netviz.capture.selection import unwrap

__all__ = ["capture_positional_encoding", "sinusoidal_encoding"]

_KINDS = ("sincos", "sin")


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an int >= 1, got {value!r}")
    return value


def sinusoidal_encoding(
    length: int,
    dim: int,
    base: float = 10000.0,
    interleave: bool = True,
    kind: str = "sincos",
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""Sinusoidal positional encoding, one row per position.

    ``kind="sincos"`` (Vaswani et al., 2017), for :math:`i = 0, \dots, d/2 - 1`:

    .. math::

        PE[t, 2i] = \sin\!\left(\frac{t}{\text{base}^{2i/d}}\right), \qquad
        PE[t, 2i+1] = \cos\!\left(\frac{t}{\text{base}^{2i/d}}\right)

    With ``interleave=False`` the columns are ``[sin | cos]``: column ``i``
    holds the sine and column ``d/2 + i`` the cosine of the same frequency.

    ``kind="sin"`` (lecture notes), for :math:`k = 0, \dots, d - 1`:

    .. math::

        PE[t, k] = \sin(\omega_k t), \qquad \omega_k = \frac{1}{\text{base}^{k/d}}

    (the notes number the columns from 1; ``interleave`` does not apply).

    For ``sincos``, :math:`PE[t + k]` is a fixed linear function of
    :math:`PE[t]`: each (sin, cos) pair is rotated by the angle
    :math:`k\,\omega_i`, independent of :math:`t`.

    Parameters
    ----------
    length
        Number of positions ``t = 0 .. length - 1``.
    dim
        Encoding dimension ``d``; must be even for ``"sincos"``.
    base
        The constant 10000 of the paper; must be > 0.
    interleave
        ``sincos`` only: interleaved (paper) or concatenated layout.
    kind
        ``"sincos"`` or ``"sin"``.
    dtype, device
        Of the result; computed in float64 and converted.

    Returns
    -------
    torch.Tensor
        ``(length, dim)``.

    Raises
    ------
    ValueError
        ``length``/``dim`` not positive ints, ``dim`` odd with ``"sincos"``,
        ``base`` <= 0, or unknown ``kind``.

    Examples
    --------
    >>> sinusoidal_encoding(3, 4)
    tensor([[ 0.0000,  1.0000,  0.0000,  1.0000],
            [ 0.8415,  0.5403,  0.0100,  0.9999],
            [ 0.9093, -0.4161,  0.0200,  0.9998]])
    >>> sinusoidal_encoding(2, 3, kind="sin").shape
    torch.Size([2, 3])
    """
    length = _positive_int(length, "length")
    dim = _positive_int(dim, "dim")
    if kind not in _KINDS:
        raise ValueError(f"`kind` must be one of {_KINDS}, got {kind!r}")
    if not float(base) > 0:
        raise ValueError(f"`base` must be > 0, got {base!r}")
    t = torch.arange(length, dtype=torch.float64, device=device)[:, None]
    if kind == "sin":
        k = torch.arange(dim, dtype=torch.float64, device=device)
        omega = float(base) ** (-k / dim)
        return torch.sin(t * omega).to(dtype)
    if dim % 2:
        raise ValueError(
            f'`dim` must be even for kind="sincos" (sin/cos pairs), got {dim}; '
            'use an even dim or kind="sin"'
        )
    two_i = torch.arange(0, dim, 2, dtype=torch.float64, device=device)
    angle = t * float(base) ** (-two_i / dim)
    if interleave:
        pe = torch.stack((torch.sin(angle), torch.cos(angle)), dim=-1).reshape(length, dim)
    else:
        pe = torch.cat((torch.sin(angle), torch.cos(angle)), dim=-1)
    return pe.to(dtype)


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
        raise ValueError(
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


def capture_positional_encoding(
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
    ValueError
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
    >>> capture_positional_encoding(Net(), length=10).shape
    torch.Size([10, 8])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
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
            raise ValueError(
                f"`name` {name!r} is neither an nn.Embedding nor a parameter or buffer of the "
                f"model; candidates: {known}"
            )
        chosen = name
    else:
        found = _candidates(model)
        if not found:
            raise ValueError(
                "found no positional encoding: no nn.Embedding, parameter or buffer with a "
                "positional name (pos, position, positional, pe, wpe, pos_embed...); pass `name=`"
            )
        if len(found) > 1:
            raise ValueError(
                f"several positional encoding candidates: {sorted(found)}; pass `name=` to pick one"
            )
        chosen, tensor = next(iter(found.items()))
    table = _as_table(chosen, tensor)
    if length is not None:
        length = _positive_int(length, "length")
        if length > table.shape[0]:
            raise ValueError(
                f"`length` {length} exceeds the {table.shape[0]} positions of {chosen!r}"
            )
        table = table[:length]
    return table.clone()
