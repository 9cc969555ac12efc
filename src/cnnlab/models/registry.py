"""The zoo's registry: every model is a builder function registered with its metadata.

``create(name, num_classes=..., in_channels=..., **options)`` builds a model; an unknown
name suggests close names, and an option the builder does not take names the ones it does.
Families register themselves when ``cnnlab.models`` imports them; importing this module
imports its package first, so the registry is full whenever it is used (and it imports no
family back: the arrows point one way).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field

from cnnlab.errors import ConfigError, suggest


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str  # "LeNet", "AlexNet", "VGG", ...
    paper: str  # "LeCun et al., 1998"
    year: int
    input_size: tuple[int, int, int]  # default (C, H, W)
    num_classes: int  # default number of classes
    builder: Callable = field(repr=False, compare=False)
    variant: str = "imagenet"  # "imagenet" | "cifar" | "mnist" | "digits" (the synthetic sets)
    description: str = ""


_REGISTRY: dict[str, ModelInfo] = {}
VARIANTS = ("imagenet", "cifar", "mnist", "digits")


def register_model(
    name: str,
    *,
    family: str,
    paper: str,
    year: int,
    input_size: tuple[int, int, int],
    num_classes: int = 1000,
    variant: str = "imagenet",
    description: str = "",
):
    """Decorator: register ``builder(num_classes=..., in_channels=..., **options)`` as ``name``."""

    if variant not in VARIANTS:
        raise ValueError(f"model {name!r}: variant must be one of {VARIANTS}, got {variant!r}")

    def deco(builder: Callable) -> Callable:
        if name in _REGISTRY:
            raise RuntimeError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelInfo(
            name, family, paper, year, tuple(input_size), num_classes, builder, variant,
            description or (inspect.getdoc(builder) or "").split("\n")[0],
        )  # fmt: skip
        return builder

    return deco


def list_models(family: str | None = None) -> list[str]:
    """Names of all registered models (optionally of one family), sorted."""
    return sorted(n for n, i in _REGISTRY.items() if family is None or i.family == family)


def get_info(name: str) -> ModelInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        hint = suggest(name, _REGISTRY) or "run `cnnlab models` to list them"
        raise ConfigError(f"unknown model {name!r}", hint) from None


def model_options(name: str) -> dict[str, object]:
    """The keyword options of model ``name``'s builder and their defaults."""
    params = inspect.signature(get_info(name).builder).parameters
    return {
        k: (None if p.default is p.empty else p.default)
        for k, p in params.items()
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


def create(name: str, *, weights: str | None = None, **options):
    """Build model ``name``; ``weights`` is an optional path to a state-dict file to load.

    ``options`` go to the builder (``num_classes``, ``in_channels`` and the family's own); an
    option the builder does not take raises a ConfigError listing the ones it does.
    """
    info = get_info(name)
    params = inspect.signature(info.builder).parameters
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    if not takes_kwargs:
        unknown = [k for k in options if k not in params]
        if unknown:
            have = ", ".join(f"{k}={v!r}" for k, v in model_options(name).items()) or "none"
            close = suggest(unknown[0], params)
            raise ConfigError(
                f"model {name!r} has no option {', '.join(map(repr, unknown))}"
                + (f" ({close})" if close else ""),
                f"its options are: {have}",
            )
    check_option_types(name, params, options, _type_hints(info.builder))
    if weights is None:
        return info.builder(**options)
    from cnnlab.models.weights import build_and_load

    return build_and_load(lambda: info.builder(**options), weights, name)


def _type_hints(builder) -> dict:
    try:
        return typing.get_type_hints(builder)
    except Exception:  # an annotation that does not resolve: type checks by defaults only
        return {}


def _scalar_kind(param, hints: dict) -> type | None:
    """The bool/int/float/str an option must be: its default's type, or for an option whose
    default is None the one such type its annotation names (``head_std: float | None``)."""
    scalars = (bool, int, float, str)
    if param.default is not None:
        return type(param.default) if type(param.default) in scalars else None
    kinds = [t for t in typing.get_args(hints.get(param.name)) if t in scalars]
    return kinds[0] if len(kinds) == 1 else None


def check_option_types(name: str, params, options: dict, hints: dict | None = None) -> None:
    """An option whose default is a bool, int, float or str, or is None with such a type in
    its annotation, must be given as one (``-O relu_after_pool=maybe`` would otherwise be a
    truthy string, silently taken as True). ``hints``: the builder's resolved annotations."""
    for key, value in options.items():
        if key not in params or value is None:
            continue
        kind = _scalar_kind(params[key], hints or {})
        if kind is None:
            continue  # no type to go by, or a structured one (widths lists ...)
        ok = (isinstance(value, bool) if kind is bool
              else isinstance(value, (int, float)) and not isinstance(value, bool)
              if kind is float
              else isinstance(value, kind) and not isinstance(value, bool))  # fmt: skip
        if not ok:
            default = params[key].default
            example = "true or false" if kind is bool else repr(default)
            if default is None:
                example = {int: "3", float: "0.5", str: "'name'"}[kind] + " (or leave it out)"
            raise ConfigError(
                f"model {name!r} option {key}={value!r}: expected "
                f"{'an' if kind is int else 'a'} {kind.__name__} "
                f"(its default is {default!r})",
                f"give {key}={example}",
            )


# ----------------------------------------------------------------------------- order


def registration_order() -> list[str]:
    """All model names in the order their families registered them (a family's own order)."""
    return list(_REGISTRY)


def families() -> list[str]:
    """Family names, in registration order of their first model."""
    return list(dict.fromkeys(i.family for i in _REGISTRY.values()))
