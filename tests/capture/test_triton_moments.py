"""The Triton moments kernel (CUDA): interpreted on CPU, lazily imported, compiled for a GPU.

The numerical cases live in ``triton_interpreted_cases.py`` and run in a
subprocess with ``TRITON_INTERPRET=1`` (see there why); this module runs it
and checks what needs no interpreter.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from netviz.capture import _triton_moments as T

HAS_TRITON = importlib.util.find_spec("triton") is not None
needs_triton = pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")
ROOT = Path(__file__).resolve().parents[2]


@needs_triton
@pytest.mark.slow  # about 30 s: the interpreter runs each kernel in NumPy
def test_interpreted_cases_pass():
    cases = Path(__file__).with_name("triton_interpreted_cases.py")
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    env.pop("NETVIZ_KERNEL", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [*cmd, str(cases)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    passed = re.search(r"(\d+) passed", report)
    assert passed and int(passed.group(1)) >= 40, report  # really ran, not skipped
    assert "skipped" not in report, report


def test_cpu_tensors_need_the_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert T.maybe_triton_moments(torch.randn(8)) is None
    assert not T.triton_moments_available("cpu")
    if not torch.cuda.is_available():
        assert not T.triton_moments_available()


@needs_triton
def test_interpreter_switched_on_after_import_is_refused(monkeypatch):
    # Triton's library was decorated for the compiler when it was imported
    # here; kernels interpreted now would fail inside tl.sum: refuse cleanly
    import triton  # noqa: F401

    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("this process runs Triton's interpreter")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(T, "_VERDICTS", {})
    assert T.maybe_triton_moments(torch.randn(4)) is None
    assert not T.triton_moments_available()
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET was changed"):
        T.moments(torch.randn(4))


def test_import_netviz_does_not_import_triton():
    code = (
        "import sys, torch, netviz\n"
        "from netviz.capture import stats, _triton_moments\n"
        "assert 'triton' not in sys.modules, 'triton imported'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


@needs_triton
@pytest.mark.slow
def test_kernels_compile_for_a_real_gpu():
    # Triton's own compiler and ptxas, with no GPU: TTIR -> PTX -> cubin for sm_90
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    if shutil.which("ptxas") is None and not os.path.exists(
        os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas")
    ):
        pytest.skip("no ptxas")
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("this process runs Triton's interpreter")
    partials, merge = T._kernels(False)
    target = GPUTarget("cuda", 90, 32)
    opts = {"num_warps": 4, "enable_fp_fusion": False}
    sources = [
        ASTSource(
            partials,
            {"x_ptr": "*bf16", "part_ptr": "*fp64", "n": "i64"},
            constexprs={"BLOCK": T.BLOCK, "F64": False, "FINAL": False},
        ),
        ASTSource(
            merge,
            {"part_ptr": "*fp64", "out_ptr": "*fp64", "rows": "i32"},
            constexprs={"ROWS": T.MAX_PROGRAMS},
        ),
    ]
    for src in sources:
        compiled = triton.compile(src, target=target, options=opts)
        assert len(compiled.asm["cubin"]) > 1000
        assert ".local" not in compiled.asm["ptx"]  # no register spills
