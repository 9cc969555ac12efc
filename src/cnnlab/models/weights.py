"""Loading weights people already have: torchvision state-dict files into zoo models.

``create(name, weights=PATH)`` (or ``load_weights(model, PATH, name)``) reads a state-dict file
saved with ``torch.save(model.state_dict(), PATH)`` — torchvision's, cnnlab's, or a checkpoint
dict holding one under ``"state_dict"``, ``"model_state_dict"`` or ``"model"`` — with
``torch.load(..., map_location="cpu", weights_only=True)`` (no arbitrary code from pickles),
renames keys where the zoo's names differ from torchvision's, and loads with ``strict=True``.
Nothing is downloaded: fetch torchvision's file yourself (``torchvision.models.vgg16(
weights="DEFAULT").state_dict()`` on a machine with internet, or the ``.pth`` from its URL).

Key mapping hook (for zoo authors). Before comparing, every key of the file goes through, in
order:

1. ``"module."`` prefixes (from ``nn.DataParallel``) are stripped;
2. ``KEY_MAPS[name](key)`` if the registry name has an entry (add one with
   ``register_key_map(name, fn)`` from the family module);
3. ``type(model).torchvision_key_map(key)`` if the model class defines it (a staticmethod or
   classmethod; instance methods work too).

A map returns the zoo's key for a file key, or ``None`` to drop the key (e.g. torchvision's
auxiliary-classifier weights when the model was built without them). AlexNet, VGG and the other
families in this package use torchvision's module names, so they need no map.

A file for another architecture is refused with a ConfigError naming the first missing,
unexpected or mismatching key and both shapes; when only the last layer differs the hint gives
the ``num_classes`` the file was saved with. A missing or unreadable file is a DataError.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import ConfigError, DataError

__all__ = ["build_and_load", "load_weights", "read_state_dict", "register_key_map", "KEY_MAPS"]

KEY_MAPS: dict[str, Callable[[str], str | None]] = {}

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")


def register_key_map(name: str, fn: Callable[[str], str | None]) -> None:
    """Register ``fn(file_key) -> zoo_key | None`` for the registered model ``name``."""
    KEY_MAPS[name] = fn


def read_state_dict(path) -> dict[str, torch.Tensor]:
    """Read a state dict (raw or wrapped in a checkpoint dict) from ``path``, safely."""
    path = Path(path).expanduser()
    fix = (
        "save one with torch.save(model.state_dict(), PATH) "
        "(cnnlab downloads nothing; fetch torchvision's .pth file yourself)"
    )
    if not path.is_file():
        raise DataError(f"weights file not found: {path}", fix)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as e:
        if zipfile.is_zipfile(path) and "weights_only" in str(e).replace(" ", "_").lower():
            why = "it holds pickled Python objects besides tensors (a whole saved model?)"
            fix = "re-save only the tensors: torch.save(model.state_dict(), PATH)"
        else:
            why = f"not a PyTorch state-dict file, or truncated/corrupt ({type(e).__name__})"
        raise DataError(f"cannot read weights file {path}: {why}", fix) from None
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DataError(
            f"{path} does not hold a state dict (a mapping of names to tensors)",
            f"expected a raw state dict or a dict with one of {', '.join(_WRAPPER_KEYS)}; " + fix,
        )
    return dict(obj)


def _map_keys(sd: dict, model: nn.Module, name: str | None) -> dict[str, torch.Tensor]:
    maps = []
    if name in KEY_MAPS:
        maps.append(KEY_MAPS[name])
    hook = getattr(model, "torchvision_key_map", None)
    if callable(hook):
        maps.append(hook)
    out = {}
    for key, value in sd.items():
        new: str | None = key.removeprefix("module.")
        for fn in maps:
            new = fn(new)
            if new is None:
                break
        if new is not None:
            out[new] = value
    return out


def _shape(t) -> str:
    return "(" + ", ".join(map(str, t.shape)) + ")"


def check_fits(model_sd: dict, file_sd: dict, label: str, path) -> None:
    """Raise a ConfigError naming the first key of ``file_sd`` that does not fit ``model_sd``
    (missing, another shape, unexpected), with a hint at the likely cause."""
    problems: list[tuple[str, str]] = []  # (key, description) in model order
    for key, ref in model_sd.items():
        if key not in file_sd:
            problems.append((key, f"key {key!r} {_shape(ref)} is missing from the file"))
        elif file_sd[key].shape != ref.shape:
            problems.append(
                (
                    key,
                    f"key {key!r} has shape {_shape(file_sd[key])} in the file "
                    f"but {_shape(ref)} in the model",
                )
            )
    extra = [k for k in file_sd if k not in model_sd]
    for key in extra:
        problems.append((key, f"the file has unexpected key {key!r} {_shape(file_sd[key])}"))
    if not problems:
        return
    hint = f"the file was saved from another architecture; build that model to load it ({path})"
    keys = list(model_sd)
    last = keys[-1].rsplit(".", 1)[0] if keys else ""
    wrong = [k for k, _ in problems]
    if all(k.startswith(last + ".") for k in wrong) and not extra and last + ".weight" in file_sd:
        n = file_sd[last + ".weight"].shape[0]
        hint = f"only the last layer differs: the file was saved with num_classes={n}"
    aux = [k for k in wrong if k.split(".")[0].startswith("aux")]
    if aux and len(aux) == len(wrong) and not extra:  # e.g. GoogLeNet saved without aux heads
        hint = (f"the file has no auxiliary heads ({aux[0].split('.')[0]}, ...): build {label} "
                f"without them, create({label}, aux_logits=False, weights=...)")  # fmt: skip
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    raise ConfigError(f"weights do not fit {label}: {problems[0][1]}{more}", hint)


def load_weights(model: nn.Module, path, name: str | None = None) -> nn.Module:
    """Load the state dict in ``path`` into ``model`` (strictly) and return the model.

    A model built on the meta device is materialised from the file (the loaded tensors are
    assigned, cast to the model's dtypes), so no memory or time goes into a random init.
    """
    return _load(model, read_state_dict(path), name, path)


def _load(model: nn.Module, sd: dict, name: str | None, path) -> nn.Module:
    sd = _map_keys(sd, model, name)
    label = repr(name) if name else type(model).__name__
    reference = model.state_dict()
    check_fits(reference, sd, label, path)
    on_meta = any(t.is_meta for t in reference.values())
    if on_meta:
        sd = {k: v.to(reference[k].dtype) for k, v in sd.items()}
    model.load_state_dict(sd, strict=True, assign=on_meta)
    return model


def build_and_load(build, path, name: str | None = None) -> nn.Module:
    """``build()`` the model on the meta device and fill it from ``path`` (what ``create`` uses).

    Falls back to a normal build when the model keeps buffers outside its state dict
    (non-persistent ones such as LeNet-5's C3 channel index), which the file cannot provide.
    """
    sd = read_state_dict(path)  # a missing/corrupt file fails before anything is built
    with torch.device("meta"):
        model = build()
    saved = set(model.state_dict())
    if any(n not in saved for n, _ in model.named_buffers()):
        model = build()
    return _load(model, sd, name, path)
