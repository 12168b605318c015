r"""Sinusoidal positional encodings: the formula of Vaswani et al. (2017) and its sin-only variant.

A formula, not a capture: :func:`sinusoidal_encoding` builds the table from
``length`` and ``dim`` alone (:func:`netviz.positional_encoding_weights`
reads a model's own table).
"""

from __future__ import annotations

import torch

from netviz.errors import NetvizValueError

__all__ = ["sinusoidal_encoding"]

_KINDS = ("sincos", "sin")


def positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise NetvizValueError(f"`{name}` must be an int >= 1, got {value!r}")
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
    NetvizValueError
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
    length = positive_int(length, "length")
    dim = positive_int(dim, "dim")
    if kind not in _KINDS:
        raise NetvizValueError(f"`kind` must be one of {_KINDS}, got {kind!r}")
    if not float(base) > 0:
        raise NetvizValueError(f"`base` must be > 0, got {base!r}")
    t = torch.arange(length, dtype=torch.float64, device=device)[:, None]
    if kind == "sin":
        k = torch.arange(dim, dtype=torch.float64, device=device)
        omega = float(base) ** (-k / dim)
        return torch.sin(t * omega).to(dtype)
    if dim % 2:
        raise NetvizValueError(
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
