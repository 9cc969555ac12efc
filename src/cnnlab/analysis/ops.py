"""The ATen op tables: which ops are convolutions, pools, matmuls, reductions ... named once
for everything that reads a trace (``summary`` for the layer geometry, ``conventions`` for the
prices, ``receptive`` for the receptive field)."""

from __future__ import annotations


def _aten(*names: str) -> tuple[str, ...]:
    return tuple(f"aten.{n}" for n in names)


CONV_OPS = _aten("convolution", "_convolution")
MATMUL_OPS = _aten("mm", "addmm", "bmm", "baddbmm")
REDUCE_OPS = _aten("mean", "sum", "amax", "amin", "max", "min", "var", "std")
UPSAMPLE_OPS = _aten(
    "upsample_nearest2d", "_upsample_nearest_exact2d", "upsample_bilinear2d", "upsample_bicubic2d"
)
# Data movement, shape changes, allocation, random draws: no arithmetic under any convention.
# fmt: off
FREE_OPS = _aten(
    "view", "_unsafe_view", "reshape", "_reshape_alias", "t", "transpose", "permute", "expand",
    "expand_as", "squeeze", "unsqueeze", "flatten", "unflatten", "clone", "contiguous", "detach",
    "alias", "_to_copy", "copy_", "empty", "empty_like", "empty_strided", "zeros", "zeros_like",
    "ones", "ones_like", "full", "full_like", "new_empty", "new_zeros", "new_ones", "new_full",
    "fill_", "zero_", "slice", "select", "split", "split_with_sizes", "chunk", "unbind", "cat",
    "stack", "as_strided", "narrow", "lift_fresh", "arange", "scalar_tensor",
    "_local_scalar_dense", "dropout", "native_dropout", "constant_pad_nd", "pixel_shuffle",
    "pixel_unshuffle", "channel_shuffle", "index_select", "gather", "roll", "flip", "repeat",
    "unfold", "as_strided_", "index", "_unsafe_index", "masked_select", "tril", "triu",
    # random draws (dropout's mask in training mode): no arithmetic on the model's numbers
    "bernoulli", "bernoulli_", "uniform_", "normal_", "rand", "randn", "rand_like",
    "randn_like",
)

ACTIVATION_OPS = _aten(
    "relu", "relu_", "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_", "elu", "elu_", "gelu",
    "gelu_", "silu", "silu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "hardswish", "hardswish_",
    "hardsigmoid", "hardsigmoid_", "mish", "mish_", "softplus", "_prelu_kernel", "prelu",
    "threshold", "threshold_", "clamp", "clamp_", "clamp_min", "clamp_min_", "clamp_max",
    "clamp_max_", "abs", "abs_", "neg", "neg_", "exp", "exp_", "log", "log_", "sqrt", "sqrt_",
    "rsqrt", "rsqrt_", "reciprocal", "reciprocal_", "sign", "erf", "erf_", "pow", "pow_", "square",
)
BINARY_OPS = _aten("add", "add_", "sub", "sub_", "rsub", "mul", "mul_", "div", "div_", "maximum",
           "minimum", "where", "addcmul", "addcdiv", "masked_fill", "masked_fill_", "eq", "ne",
           "lt", "le", "gt", "ge", "logical_not", "logical_and", "logical_or")
# fmt: on
BATCH_NORM_OPS = _aten(
    "native_batch_norm",
    "_native_batch_norm_legit",
    "_native_batch_norm_legit_no_training",
    "_native_batch_norm_legit_functional",
    "cudnn_batch_norm",
    "miopen_batch_norm",
)
POOL_OPS = _aten(
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_pool2d_with_indices",
    "max_pool3d_with_indices",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
)
ADAPTIVE_POOL_OPS = _aten(
    "_adaptive_avg_pool2d",
    "_adaptive_avg_pool3d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
)
