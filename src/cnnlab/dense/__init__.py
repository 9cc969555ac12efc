"""Dense prediction (seed 004 §4-5): the ops detection and segmentation models are built from.

:mod:`cnnlab.dense.ops` holds cnnlab's own ops (spatial pyramid pooling, anchors, the box
coder) and re-exports torchvision's (RoI pool/align, IoU, NMS, box conversion). The arithmetic
behind them, with the working shown, is in :mod:`cnnlab.arithmetic.dense`; the scores in
:mod:`cnnlab.metrics`.
"""

from cnnlab.dense import ops
from cnnlab.dense.ops import __all__


def __getattr__(name: str):
    # the package is its ops, one list of names; looked up on use, so that torchvision's
    # re-exported ops are imported only when asked for (see ops.TORCHVISION_OPS)
    if name in __all__:
        return getattr(ops, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
