"""cnnlab.scratch: the from-scratch NumPy CNN engine of seed 003 (no torch).

Layouts: inputs ``[mb, xh, xw, xchn]``, kernels ``[kh, kw, xchn, ychn]``, outputs
``[mb, yh, yw, ychn]``. Each layer has ``forward(x, train)`` and ``backward(dy) -> dx`` and keeps
``params``/``grads`` dicts. Quick start::

    from cnnlab.scratch import build, Adam, fit
    model = build("lenet5", input_shape=(28, 28, 1), num_classes=10)
    fit(model, Adam(1e-3), x_train, y_train, epochs=5, x_test=x_test, y_test=y_test)
    model.save("lenet5.npz")

See docs/scratch.md for the backprop rules, the max-pool tie rules and average-pool borders.
"""

from cnnlab.scratch.gradcheck import check_layer, numeric_grad, rel_error
from cnnlab.scratch.layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Conv2DNaive,
    ConvTranspose2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool2D,
    MulticlassHinge,
    ReLU,
    Sigmoid,
    SoftmaxCrossEntropy,
    Tanh,
)
from cnnlab.scratch.model import LENET5, SPECS, Model, build, load_spec
from cnnlab.scratch.optim import SGD, Adam, Penalty, make_optimizer
from cnnlab.scratch.train import fit, normalize

__all__ = [
    "LENET5",
    "SPECS",
    "SGD",
    "Adam",
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Conv2DNaive",
    "ConvTranspose2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Layer",
    "MaxPool2D",
    "MulticlassHinge",
    "Model",
    "Penalty",
    "ReLU",
    "Sigmoid",
    "SoftmaxCrossEntropy",
    "Tanh",
    "build",
    "check_layer",
    "fit",
    "load_spec",
    "make_optimizer",
    "normalize",
    "numeric_grad",
    "rel_error",
]
