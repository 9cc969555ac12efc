"""Model construction for training: the zoo plus the training package's own recipe nets."""

from __future__ import annotations

from torch import nn

# Nets that belong to a training recipe rather than to the curriculum's zoo.
LOCAL_MODELS = {
    "cifar-fast-net": ("cnnlab.training.cifar_fast", "cifar_fast_net", (3, 32, 32)),
    "fashion-vgg": ("cnnlab.training.cifar_fast", "fashion_vgg", (1, 28, 28)),
}


def model_input_size(name: str) -> tuple[int, int, int]:
    if name in LOCAL_MODELS:
        return LOCAL_MODELS[name][2]
    from cnnlab.models import get_info

    return tuple(get_info(name).input_size)


def default_num_classes(name: str) -> int:
    if name in LOCAL_MODELS:
        return 10
    from cnnlab.models import get_info

    return get_info(name).num_classes


def build_model(name: str, *, num_classes: int, in_channels: int, **options) -> nn.Module:
    if name in LOCAL_MODELS:
        import importlib

        mod, fn, _ = LOCAL_MODELS[name]
        return getattr(importlib.import_module(mod), fn)(
            num_classes=num_classes, in_channels=in_channels, **options
        )
    from cnnlab.models import create

    return create(name, num_classes=num_classes, in_channels=in_channels, **options)
