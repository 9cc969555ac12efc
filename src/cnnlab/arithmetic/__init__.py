"""Pure layer arithmetic (no torch): output sizes, parameters, MACs, memory, receptive field.

The reference the rest of cnnlab is checked against. Everything here is plain Python so it
imports instantly and can be used without PyTorch; a test proves torch is never imported.

>>> conv_output_size(227, 11, stride=4, padding=2)
56
>>> conv_params(3, 64, 11)
(23232, 64)
>>> conv_macs(3, 64, 56, 56, 11)
72855552

Dense prediction (seed 004 §5): ``spp_output``, ``roi_pool_output``, ``yolo_output`` and
``anchor_boxes``, each with its working (docs/dense.md).

See docs/arithmetic.md for the formulas and counting conventions and docs/errata.md (and
:mod:`cnnlab.teaching.errata`, ``cnnlab errata``) for the places where the lecture notes print
a wrong number.
"""

from cnnlab.arithmetic.core import (
    FlooredSizeWarning,
    activation_bytes,
    conv_macs,
    conv_output_size,
    conv_params,
    conv_transpose_macs,
    conv_transpose_output_size,
    dtype_bits,
    effective_kernel,
    linear_macs,
    linear_params,
    pool_flops,
    pool_output_size,
    receptive_field,
    receptive_field_step,
    resolve_padding,
)
from cnnlab.arithmetic.dense import (
    AnchorRow,
    RoiPoolRow,
    SppRow,
    YoloRow,
    adaptive_bin_edges,
    anchor_boxes,
    anchor_shape,
    roi_pool_bins,
    roi_pool_output,
    spp_output,
    yolo_output,
)
from cnnlab.arithmetic.layer import LAYER_TYPES, LayerRow, LayerSpec, compute_layer

__all__ = [
    "AnchorRow",
    "RoiPoolRow",
    "SppRow",
    "YoloRow",
    "adaptive_bin_edges",
    "anchor_boxes",
    "anchor_shape",
    "roi_pool_bins",
    "roi_pool_output",
    "spp_output",
    "yolo_output",
    "LAYER_TYPES",
    "FlooredSizeWarning",
    "LayerRow",
    "LayerSpec",
    "compute_layer",
    "activation_bytes",
    "conv_macs",
    "conv_output_size",
    "conv_params",
    "conv_transpose_macs",
    "conv_transpose_output_size",
    "dtype_bits",
    "effective_kernel",
    "linear_macs",
    "linear_params",
    "pool_flops",
    "pool_output_size",
    "receptive_field",
    "receptive_field_step",
    "resolve_padding",
]
