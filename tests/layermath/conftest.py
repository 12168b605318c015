"""Layer-math tests run tiny tensors: one intra-op thread is faster than several.

On a shared, loaded machine PyTorch's thread pool made the conv-as-matrix
tests ~18x slower (oversubscription); the thread count is restored after
each test so other folders are unaffected.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
