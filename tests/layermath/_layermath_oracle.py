"""Helpers shared by the layermath tests: run PyTorch as the oracle, compare outcomes."""

from __future__ import annotations

import pytest
import torch

ERROR = "error"


def torch_outcome(build, input_shape, *, device="cpu"):
    """Output shape of ``build()(zeros(input_shape))``, or ERROR if PyTorch refuses.

    Construction is part of the call: PyTorch refuses some configurations in
    ``__init__`` (ValueError) and others in ``forward`` (RuntimeError).
    """
    try:
        module = build()
        with torch.no_grad():
            out = module(torch.zeros(input_shape, device=device))
    except (RuntimeError, ValueError):
        return ERROR
    if isinstance(out, tuple):
        out = out[0]
    return tuple(out.shape)


def ours_outcome(fn):
    """``fn()`` as a tuple, or ERROR if it raised ValueError (other exceptions propagate)."""
    try:
        out = fn()
    except ValueError:
        return ERROR
    return out if isinstance(out, tuple) else (out,)


@pytest.fixture(autouse=True)
def one_thread():
    """Autouse where imported: one intra-op thread for the tiny tensors of these tests.

    On a shared, loaded machine PyTorch's thread pool made the conv-as-matrix
    tests ~18x slower (oversubscription). The thread count is restored after
    each test. (A fixture here rather than in a conftest.py: a second
    ``conftest`` basename collides with tests/conftest.py under --doctest-modules.)
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
