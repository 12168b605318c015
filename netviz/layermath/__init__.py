"""Layer arithmetic: output sizes, parameter counts, MACs, receptive fields, conv as a matrix.

Pure integer arithmetic that follows PyTorch's own rules (edge cases included:
ceil-mode pooling, ``padding='same'``, ``output_padding``), checked against the
real modules by property-based tests. Nothing here registers hooks or runs a
model, except :func:`netviz.summary`, which lives one level up.
"""

from netviz.layermath._conv import (
    conv_output_size,
    conv_padding,
    conv_transpose_output_size,
    unfold_blocks,
)
from netviz.layermath._pool import adaptive_pool_windows, avg_pool_output_size, pool_output_size
from netviz.layermath.matrix import conv_matrix, conv_transpose_matrix
from netviz.layermath.params import macs, param_count
from netviz.layermath.positional import sinusoidal_encoding
from netviz.layermath.receptive import ReceptiveField, ReceptiveFields, receptive_field
from netviz.layermath.shapes import output_shape, supported_types

__all__ = [
    "ReceptiveField",
    "ReceptiveFields",
    "adaptive_pool_windows",
    "avg_pool_output_size",
    "conv_matrix",
    "conv_output_size",
    "conv_padding",
    "conv_transpose_matrix",
    "conv_transpose_output_size",
    "macs",
    "output_shape",
    "param_count",
    "pool_output_size",
    "receptive_field",
    "sinusoidal_encoding",
    "supported_types",
    "unfold_blocks",
]
