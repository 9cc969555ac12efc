"""The zoo's registry: every model is a builder function registered with its metadata.

``create(name, num_classes=..., in_channels=..., **options)`` builds a model; an unknown
name suggests close names, and an option the builder does not take names the ones it does.
"""

from __future__ import annotations

import functools
import inspect
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


def _load_families() -> None:
    # Importing the package imports every family module, which registers its builders.
    import cnnlab.models  # noqa: F401


def list_models(family: str | None = None) -> list[str]:
    """Names of all registered models (optionally of one family), sorted."""
    _load_families()
    return sorted(n for n, i in _REGISTRY.items() if family is None or i.family == family)


def get_info(name: str) -> ModelInfo:
    _load_families()
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
    if weights is None:
        return info.builder(**options)
    from cnnlab.models.weights import build_and_load

    return build_and_load(lambda: info.builder(**options), weights, name)


# ----------------------------------------------------------------------------- the zoo table


def registration_order() -> list[str]:
    """All model names in the order their families registered them (a family's own order)."""
    _load_families()
    return list(_REGISTRY)


def families() -> list[str]:
    """Family names, in registration order of their first model."""
    _load_families()
    return list(dict.fromkeys(i.family for i in _REGISTRY.values()))


@functools.cache
def _source_hash(path: str) -> str:
    import hashlib
    from pathlib import Path

    p = Path(path)
    files = sorted(p.glob("*.py")) if p.is_dir() else [p]
    h = hashlib.sha1()
    for f in files:
        try:
            h.update(f.read_bytes())
        except OSError:
            h.update(str(f).encode())
    return h.hexdigest()


def _fingerprint(info: ModelInfo, method: str) -> str:
    """Changes when the model's source, the counting code, torch or cnnlab's version changes."""
    import hashlib
    from pathlib import Path

    import torch

    from cnnlab import __version__

    model_src = _source_hash(inspect.getsourcefile(info.builder) or info.name)
    count_src = _source_hash(str(Path(__file__).parents[1] / "analysis"))
    text = f"{info.name}|{info.input_size}|{torch.__version__}|{__version__}|{method}"
    return hashlib.sha1(f"{model_src}|{count_src}|{text}".encode()).hexdigest()


def measure(name: str) -> tuple[int, int | None, str]:
    """(params, MACs at the default input, method) for model ``name``, built on the meta device.

    MACs come from :func:`cnnlab.analysis.summary` (lecture convention: a multiply-add is one
    MAC) when it is available, else from ``torch.utils.flop_counter`` (FLOPs / 2).
    """
    import torch

    info = get_info(name)
    with torch.device("meta"):
        model = info.builder().eval()
    params = sum(p.numel() for p in model.parameters())
    try:
        from cnnlab.analysis import summary
    except ImportError:
        summary = None
    if summary is not None:
        return params, int(summary(model, info.input_size).totals["macs"]), "summary"
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.device("meta"), torch.no_grad(), counter:
        model(torch.zeros(1, *info.input_size))
    return params, counter.get_total_flops() // 2, "flop_counter"


def _cache_file():
    import os
    from pathlib import Path

    root = os.environ.get("CNNLAB_CACHE") or Path.home() / ".cache" / "cnnlab"
    return Path(root) / "zoo-table.json"


def zoo_table(
    names: list[str] | None = None, *, macs: bool = True, cache: bool = True, progress=None
) -> list[dict]:
    """One row per model: name, family, paper, year, variant, input, classes, params, macs.

    Params and MACs are measured once per model and source version and cached in
    ``$CNNLAB_CACHE/zoo-table.json`` (``cache=False`` re-measures). ``macs=False`` skips the
    trace (params only, still exact). ``progress(name)`` is called before each measurement.
    """
    import json
    import os

    import torch

    names = list_models() if names is None else names
    path = _cache_file()
    stored: dict = {}
    if cache and path.is_file():
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            stored = {}  # a damaged cache is simply rebuilt
    rows, changed = [], False
    for name in names:
        info = get_info(name)
        row = {
            "name": name,
            "family": info.family,
            "paper": info.paper,
            "year": info.year,
            "variant": info.variant,
            "input": "x".join(map(str, info.input_size)),
            "classes": info.num_classes,
            "params": None,
            "macs": None,
        }
        if macs:
            key = _fingerprint(info, "summary")
            hit = stored.get(name)
            if hit and hit.get("key") == key:
                row["params"], row["macs"] = hit["params"], hit["macs"]
            else:
                if progress:
                    progress(name)
                row["params"], row["macs"], method = measure(name)
                stored[name] = {
                    "key": _fingerprint(info, method),
                    "params": row["params"],
                    "macs": row["macs"],
                }
                changed = True
        else:
            with torch.device("meta"):
                row["params"] = sum(p.numel() for p in info.builder().parameters())
        rows.append(row)
    if cache and changed:
        try:  # atomic: write a temporary file, then rename it over the old one
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(stored, indent=1, sort_keys=True))
            os.replace(tmp, path)
        except OSError:
            pass  # an unwritable cache only costs time
    return rows
