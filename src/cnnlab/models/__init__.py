"""The classic model zoo. Each family lives in its own module and registers its builders.

Use :func:`create` and :func:`list_models`; ``cnnlab models`` prints the table.
:func:`convolutionalize` turns a classifier's FC head into convolutions (class heat maps),
:func:`load_weights` (or ``create(name, weights=PATH)``) loads torchvision state-dict files.
"""

from __future__ import annotations

from cnnlab.models.registry import (
    ModelInfo,
    create,
    get_info,
    list_models,
    model_options,
    register_model,
)

# Family modules register themselves on import (add new families here).
FAMILY_MODULES: list[str] = [
    "lenet",
    "alexnet",
    "zfnet",
    "vgg",
    "nin",
    "googlenet",
    "resnet",
    "densenet",
    "cifar_fast",  # the recipe nets: cifar-fast-net, fashion-vgg
    "fcn",
    "sppnet",
    "yolo",
    "faster_rcnn",
    "lecture",  # small nets with one knob per lecture claim (cnnlab experiment)
]

__all__ = [
    "ModelInfo",
    "convolutionalize",
    "create",
    "get_info",
    "list_models",
    "load_weights",
    "model_options",
    "register_model",
]


def _import_families() -> None:
    import importlib

    for mod in FAMILY_MODULES:
        importlib.import_module(f"cnnlab.models.{mod}")


_import_families()

from cnnlab.models.convolutionalize import convolutionalize  # noqa: E402
from cnnlab.models.weights import load_weights  # noqa: E402
