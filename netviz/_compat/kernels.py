"""Which kernel PyTorch picks for a convolution (it decides what an empty output does).

Part of :mod:`netviz._compat` (imports only torch).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["conv_transpose_accepts_empty"]


def _mkldnn_supports(dtype: torch.dtype) -> bool:
    name = {torch.bfloat16: "_is_mkldnn_bf16_supported", torch.float16: "_is_mkldnn_fp16_supported"}
    check = getattr(torch.ops.mkldnn, name[dtype], None) if dtype in name else None
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:  # pragma: no cover - a build without the op
        return False


def conv_transpose_accepts_empty(
    module: nn.modules.conv._ConvTransposeNd, input_shape: tuple[int, ...]
) -> bool:
    """Whether PyTorch runs ``module`` (a ``ConvTranspose1/2/3d``) with oneDNN for this input.

    PyTorch's reference CPU kernel refuses a transposed convolution whose
    output size is 0 ("Output size is too small"); its oneDNN kernel returns
    an empty tensor. This mirrors the kernel choice of ATen's
    ``ConvParams::use_mkldnn`` (``aten/src/ATen/native/Convolution.cpp``):
    oneDNN enabled, ``output_padding < stride`` everywhere, on the CPU, and
    bfloat16/float16 where the CPU supports them or float32 when (strided,
    dilated, batch >= 16, a kernel other than 1x1 or several threads) and
    (groups > 1, both last kernel sizes > 3, batch > 1 or more than 20480
    input elements). 1-D convolutions run as 2-D ones with a unit first
    dimension. ``tests/capture/test_compat.py`` checks it against the
    installed PyTorch (on the CPU). Off the CPU this answers ``False``: what
    cuDNN and other back ends do with an empty output is not checked here.
    """
    weight = module.weight
    if weight.device.type != "cpu":
        return False
    if not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        return False
    kernel, stride = tuple(module.kernel_size), tuple(module.stride)
    if any(op >= s for op, s in zip(module.output_padding, stride)):
        return False
    if weight.dtype in (torch.bfloat16, torch.float16):
        return _mkldnn_supports(weight.dtype)
    if weight.dtype != torch.float32:
        return False
    nd = len(kernel)
    n = input_shape[0] if len(input_shape) == nd + 2 else 1
    k2 = (1, *kernel) if nd == 1 else kernel
    spatial = tuple(input_shape[-nd:])
    elements = (
        n * int(input_shape[-nd - 1]) * math.prod(((1, *spatial) if nd == 1 else spatial)[:2])
    )
    faster_than_reference = (
        any(s != 1 for s in stride)
        or any(d != 1 for d in module.dilation)
        or n >= 16
        or k2[-1] != 1
        or k2[-2] != 1
        or torch.get_num_threads() > 1
    )
    return faster_than_reference and (
        module.groups > 1 or (k2[-1] > 3 and k2[-2] > 3) or n > 1 or elements > 20480
    )
