"""Worst error of the Triton moments kernel against float64 NumPy, magnitudes 1e-30..1e30.

Runs on CPU tensors under Triton's interpreter (no GPU needed)::

    TRITON_INTERPRET=1 python benchmarks/triton_moments_accuracy.py [--host]

Per dtype: 20,000 values of spread 10**[-1, 1] around 3 (1% NaN), scaled by
10**e for e = -30, -20, ..., 30; scales where the dtype cannot hold the
values (overflow, or all zeros) are left out. Prints the worst error of the
mean (relative to the mean |x|) and of the std (relative), and whether
min/max were exact in every case.

``--host``: instead, the host cost of netviz's Python around the launch
(checks, cached self-test verdict, output allocation) per call of
``maybe_triton_moments`` on a 4,096-element tensor, with Triton's launch
replaced by a no-op, with and without a caller-given ``out``.
"""

from __future__ import annotations

import os
import sys
import timeit

import numpy as np
import torch

from netviz.capture import _triton_moments
from netviz.capture.stats import finalize_moments

DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def host_cost() -> None:
    x = torch.randn(4096)
    out = torch.empty(9, dtype=torch.float64)
    assert _triton_moments.maybe_triton_moments(x) is not None  # self-test, compile
    _triton_moments._launch = lambda *args: None
    for label, given in (("out given", out), ("out allocated", None)):
        times = timeit.repeat(
            lambda given=given: _triton_moments.maybe_triton_moments(x, given),
            number=20_000,
            repeat=5,
        )
        print(f"{label:<14} {min(times) / 20_000 * 1e6:6.1f} us per call (launch excluded)")


def main() -> None:
    if os.environ.get("TRITON_INTERPRET") != "1":
        raise SystemExit("set TRITON_INTERPRET=1 (this script runs the kernel on CPU tensors)")
    if "--host" in sys.argv[1:]:
        host_cost()
        return
    rng = np.random.default_rng(0)
    print(f"{'dtype':<16}{'scales':>8}{'mean err':>12}{'std err':>12}  extremes exact")
    for dtype in DTYPES:
        worst_mean = worst_std = 0.0
        exact, scales = True, 0
        for e in range(-30, 31, 10):
            base = rng.standard_normal(20_000) * 10.0 ** rng.uniform(-1, 1, 20_000) + 3
            x = torch.from_numpy(base * 10.0**e).to(dtype)
            x[torch.from_numpy(rng.random(20_000) < 0.01)] = float("nan")
            x64 = x.double().numpy()
            fin = x64[np.isfinite(x64)]
            if fin.size < x64.size * 0.9 or not np.abs(fin).max() > 0:
                continue  # the dtype cannot hold these values
            got = finalize_moments(_triton_moments.moments(x).numpy()[None])[0]
            worst_mean = max(worst_mean, abs(got[0] - fin.mean()) / np.abs(fin).mean())
            worst_std = max(worst_std, abs(got[1] - fin.std()) / fin.std())
            exact &= bool(got[2] == fin.min() and got[3] == fin.max())
            scales += 1
        print(f"{dtype!s:<16}{scales:>8}{worst_mean:>12.1e}{worst_std:>12.1e}  {exact}")


if __name__ == "__main__":
    main()
