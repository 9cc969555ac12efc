"""Turn what a user types into a model and an input size.

A MODEL argument is, in this order: ``torchvision:NAME`` (forced torchvision), ``a.module:factory``
or ``path/to/file.py:factory`` (the user's own model), a cnnlab zoo name, a torchvision
constructor name. Models are built on the meta device: a summary needs shapes, not weights,
so even VGG-16 or ResNet-152 builds in milliseconds and allocates nothing.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

from cnnlab.errors import CnnlabError, ConfigError, suggest

# torchvision models that need options off to run on one plain tensor, and their input size
_TV_OPTIONS = {
    "googlenet": {"aux_logits": False, "init_weights": False},
    "inception_v3": {"aux_logits": False, "init_weights": False},
}
_TV_INPUT = {"inception_v3": (3, 299, 299)}


def _torchvision_names() -> list[str]:
    import torchvision

    m = torchvision.models  # classification and segmentation models take one image tensor
    return list(m.list_models(module=m)) + list(m.list_models(module=m.segmentation))


_INIT_FUNCS = (
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "sparse_",
)


@contextlib.contextmanager
def skip_init():
    """Make torch.nn.init a no-op: weights built for a summary are never read, and random
    init on meta tensors runs PyTorch's slow Python reference kernels."""
    from torch.nn import init

    saved = {n: getattr(init, n) for n in _INIT_FUNCS if hasattr(init, n)}
    try:
        for n in saved:
            setattr(init, n, lambda tensor, *a, **k: tensor)
        yield
    finally:
        for n, f in saved.items():
            setattr(init, n, f)


def build_meta(builder, **kwargs):
    """Build on the meta device (no memory, no init cost); fall back to the CPU if it fails."""
    import torch

    try:
        with torch.device("meta"), skip_init():
            return builder(**kwargs)
    except (NotImplementedError, RuntimeError):
        return builder(**kwargs)


def _import_from_cwd(target: str):
    """Import ``package.module`` as ``python -m`` would: the current folder first on the path.
    The ``cnnlab`` console script's path starts with its own bin folder, not the user's project,
    so ``cnnlab summary mypkg.nets:build`` failed from the project folder (0.1)."""
    import os

    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(target)
    finally:
        if added:
            sys.path.remove(cwd)


def _from_factory(spec: str):
    target, _, factory = spec.rpartition(":")
    try:
        if target.endswith(".py") or "/" in target or "\\" in target:
            path = Path(target)
            if not path.is_file():
                raise ConfigError(
                    f"no such file {target!r}",
                    "give path/to/file.py:factory or package.module:factory",
                )
            mod_name = f"_cnnlab_user_{abs(hash(str(path.resolve())))}"
            spec_ = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec_)
            sys.modules[mod_name] = module
            spec_.loader.exec_module(module)
        else:
            module = _import_from_cwd(target)
    except CnnlabError:
        raise
    except Exception as e:
        raise ConfigError(
            f"cannot import {target!r}: {type(e).__name__}: {e}",
            "check the module path; the form is package.module:factory",
        ) from None
    fn = getattr(module, factory, None)
    if fn is None:
        names = [n for n in dir(module) if not n.startswith("_")]
        raise ConfigError(f"{target!r} has no {factory!r}", suggest(factory, names) or None)
    try:
        model = fn() if callable(fn) else fn
    except Exception as e:
        raise ConfigError(
            f"{spec} failed to build the model: {type(e).__name__}: {e}",
            "the factory must build the model with no arguments",
        ) from None
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"{spec} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def load_model(name: str, *, meta: bool = True):
    """``(model, default_input_size, display_name)`` for a MODEL argument.

    ``meta=False`` builds real, randomly initialised weights (for running the model, as the
    visualizations do) instead of shapes only; a ``module:factory`` is always built for real."""
    if name.startswith("torchvision:"):
        return _torchvision(name.split(":", 1)[1], meta=meta)
    if ":" in name:
        model = _from_factory(name)
        return model, None, name
    from cnnlab.models import create, get_info, list_models

    if name in list_models():
        info = get_info(name)
        model = build_meta(lambda: create(name)) if meta else create(name)
        return model, tuple(info.input_size), name
    if name in _torchvision_names():
        return _torchvision(name, meta=meta)
    choices = list_models() + [f"torchvision:{n}" for n in _torchvision_names()]
    choices = list(dict.fromkeys(choices + _torchvision_names()))
    hint = suggest(name, choices) or "run `cnnlab models` (zoo) or see torchvision.models"
    raise ConfigError(f"unknown model {name!r}", hint)


def _call(builder, **kwargs):
    return builder(**kwargs)


def _torchvision(name: str, meta: bool = True):
    import torchvision

    names = _torchvision_names()
    if name not in names:
        raise ConfigError(
            f"unknown torchvision model {name!r}",
            suggest(name, names) or "see torchvision.models.list_models()",
        )
    builder = torchvision.models.get_model_builder(name)
    options = dict(_TV_OPTIONS.get(name, {}))
    if "weights_backbone" in inspect.signature(builder).parameters:
        options["weights_backbone"] = None  # never download a backbone for a summary
    try:
        model = (build_meta if meta else _call)(builder, weights=None, **options)
    except Exception as e:
        raise ConfigError(
            f"torchvision could not build {name!r}: {type(e).__name__}: {e}"
        ) from None
    return model, _TV_INPUT.get(name, (3, 224, 224)), name
