"""The fixed bin grid of netviz histograms: :class:`HistogramGrid`.

Pure data (the edges, the parameters, per-device copies of the edges and the
arguments of the C kernel); the counting is :mod:`netviz.capture.histogram`
and :mod:`netviz.capture._fused_hist`, which both import this module (and not
each other's way round: ``tests/test_import_graph.py``). The grids themselves
are described in :mod:`netviz.capture.histogram`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from netviz.errors import NetvizTypeError, NetvizValueError

__all__ = ["NONFINITE_FIELDS", "HistogramGrid"]

#: Names of the three counts that follow the bins in a raw histogram vector.
NONFINITE_FIELDS: tuple[str, ...] = ("nan", "posinf", "neginf")

_SMALLEST = float(np.nextafter(0.0, 1.0))  # 5e-324: the upper edge of the zero bin


class HistogramGrid:
    """A fixed bin grid; build with :meth:`log` or :meth:`linear`.

    Attributes
    ----------
    kind : str
        ``"log"`` or ``"linear"``.
    edges : numpy.ndarray
        float64, strictly increasing, ``nbins + 1`` values from ``-inf`` to
        ``+inf``: bin ``i`` is ``[edges[i], edges[i + 1])``.
    fields : tuple of str
        Names of the raw vector a histogram probe emits: ``bin0`` ...
        then ``nan``, ``posinf``, ``neginf``.
    """

    def __init__(self, kind: str, edges: np.ndarray, params: dict[str, Any]):
        self.kind = kind
        self.edges = edges
        self.edges.setflags(write=False)
        self.params = params
        self.fields = (*(f"bin{i}" for i in range(self.nbins)), *NONFINITE_FIELDS)
        self._device_edges: dict[tuple[str, torch.device], torch.Tensor] = {}
        self._kernel_args: dict[torch.dtype, tuple] = {}  # for the C kernel

    @classmethod
    def log(cls, min_exp: int = -27, max_exp: int = 27, per_octave: int = 4) -> HistogramGrid:
        """Signed log-magnitude grid (see the module docstring).

        ``min_exp < max_exp`` within float32's normal range (-126..127);
        ``per_octave`` one of 1, 2, 4, 8, 16.
        """
        for name, v in (("min_exp", min_exp), ("max_exp", max_exp), ("per_octave", per_octave)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise NetvizTypeError(f"`{name}` must be an int, got {v!r}")
        if not -126 <= min_exp < max_exp <= 127:
            raise NetvizValueError(
                f"need -126 <= min_exp < max_exp <= 127 (float32 normal range), "
                f"got min_exp={min_exp}, max_exp={max_exp}"
            )
        if per_octave not in (1, 2, 4, 8, 16):
            raise NetvizValueError(f"`per_octave` must be 1, 2, 4, 8 or 16, got {per_octave}")
        octaves = np.arange(min_exp, max_exp, dtype=np.float64)
        frac = 1.0 + np.arange(per_octave, dtype=np.float64) / per_octave
        mags = (np.exp2(octaves)[:, None] * frac[None, :]).ravel()  # exact: dyadic
        mags = np.append(mags, 2.0**max_exp)
        edges = np.concatenate([[-np.inf], -mags[::-1], [0.0, _SMALLEST], mags, [np.inf]]).astype(
            np.float64
        )
        params = {"min_exp": int(min_exp), "max_exp": int(max_exp), "per_octave": int(per_octave)}
        return cls("log", edges, params)

    @classmethod
    def linear(cls, lo: float, hi: float, bins: int = 64) -> HistogramGrid:
        """``bins`` equal bins from ``lo`` to ``hi`` plus underflow ``[-inf, lo)`` and overflow ``[hi, inf)``."""
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
            raise NetvizValueError(f"`bins` must be a positive int, got {bins!r}")
        lo, hi = float(lo), float(hi)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise NetvizValueError(f"need finite lo < hi, got lo={lo}, hi={hi}")
        inner = np.linspace(lo, hi, int(bins) + 1)
        if not np.all(np.diff(inner) > 0):
            raise NetvizValueError(f"{bins} bins between {lo} and {hi} are too narrow for float64")
        edges = np.concatenate([[-np.inf], inner, [np.inf]]).astype(np.float64)
        return cls("linear", edges, {"lo": lo, "hi": hi, "bins": int(bins)})

    @classmethod
    def coerce(cls, grid: Any) -> HistogramGrid:
        """``None`` -> the default log grid; a grid as it is; ``(lo, hi[, bins])`` -> linear."""
        if grid is None:
            return cls.log()
        if isinstance(grid, HistogramGrid):
            return grid
        if isinstance(grid, Sequence) and not isinstance(grid, str) and len(grid) in (2, 3):
            return cls.linear(*grid)
        raise NetvizTypeError(
            "`bins` must be a HistogramGrid (HistogramGrid.log(...) or .linear(...)), "
            f"a (lo, hi) or (lo, hi, bins) tuple for a linear grid, or None; got {grid!r}"
        )

    @property
    def nbins(self) -> int:
        """Number of bins (finite values), under- and overflow bins included."""
        return len(self.edges) - 1

    @property
    def magnitude_bins(self) -> int:
        """Log grid: bins per sign between ``2**min_exp`` and ``2**max_exp``."""
        p = self.params
        return (p["max_exp"] - p["min_exp"]) * p["per_octave"]

    def log_bits(self, dtype: torch.dtype) -> tuple[int, int]:
        """Log grid, float32/float64 ``dtype``: ``(lo, shift)`` of the bit-pattern bin rule.

        ``lo`` is the bit pattern of ``2**min_exp``; the magnitude bin of a
        pattern ``u >= lo`` is ``(u - lo) >> shift`` (``shift`` = mantissa bits
        minus ``log2(per_octave)``).
        """
        wide = dtype == torch.float64
        pattern = np.array(2.0 ** self.params["min_exp"], dtype=np.float64 if wide else np.float32)
        lo = int(pattern.view(np.int64 if wide else np.int32))
        return lo, (52 if wide else 23) - int(math.log2(self.params["per_octave"]))

    def edges_on(self, device: torch.device) -> torch.Tensor:
        """The finite edges of a linear grid as a float64 tensor on ``device`` (cached)."""
        key = ("linear", device)
        t = self._device_edges.get(key)
        if t is None:
            t = torch.tensor(self.edges[1:-1], dtype=torch.float64, device=device)
            self._device_edges[key] = t
        return t

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, HistogramGrid)
            and self.kind == other.kind
            and self.params == other.params
        )

    def __hash__(self) -> int:
        return hash((self.kind, tuple(sorted(self.params.items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"HistogramGrid.{self.kind}({args})"
