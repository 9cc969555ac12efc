"""Dense prediction (seed 004 §4-5): the ops detection and segmentation models are built from.

:mod:`cnnlab.dense.ops` holds cnnlab's own ops (spatial pyramid pooling, anchors, the box
coder) and re-exports torchvision's (RoI pool/align, IoU, NMS, box conversion). The arithmetic
behind them, with the working shown, is in :mod:`cnnlab.arithmetic.dense`; the scores in
:mod:`cnnlab.metrics`.
"""

from cnnlab.dense.ops import *  # noqa: F403 - the package is its ops; one list of names
from cnnlab.dense.ops import __all__  # noqa: F401
