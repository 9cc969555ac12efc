"""The zoo table of ``cnnlab models``: every registered model measured on the meta device.

Params and MACs come from :func:`cnnlab.analysis.summary`, measured once per model and source
version and cached in ``$CNNLAB_CACHE/zoo-table.json`` (``cnnlab cache`` lists it). It lives in
``analysis`` (not ``models``) because measuring needs the summary: models only names them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
from pathlib import Path

import torch

from cnnlab._util import atomic_write
from cnnlab.analysis.summary import summary
from cnnlab.models.registry import ModelInfo, get_info, list_models


@functools.cache
def _source_hash(path: str) -> str:
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
    from cnnlab import __version__

    model_src = _source_hash(inspect.getsourcefile(info.builder) or info.name)
    count_src = _source_hash(str(Path(__file__).parent))
    text = f"{info.name}|{info.input_size}|{torch.__version__}|{__version__}|{method}"
    return hashlib.sha1(f"{model_src}|{count_src}|{text}".encode()).hexdigest()


def measure(name: str) -> tuple[int, int | None, str]:
    """(params, MACs at the default input, method) for model ``name``, built on the meta device.

    MACs come from :func:`cnnlab.analysis.summary` (lecture convention: a multiply-add is one
    MAC).
    """
    info = get_info(name)
    with torch.device("meta"):
        model = info.builder().eval()
    params = sum(p.numel() for p in model.parameters())
    return params, int(summary(model, info.input_size).totals["macs"]), "summary"


def cache_file() -> Path:
    """Where the measured table is cached (``$CNNLAB_CACHE/zoo-table.json``)."""
    from cnnlab.data.datasets.cache import cache_dir

    return cache_dir() / "zoo-table.json"


def zoo_table(
    names: list[str] | None = None, *, macs: bool = True, cache: bool = True, progress=None
) -> list[dict]:
    """One row per model: name, family, paper, year, variant, input, classes, params, macs.

    Params and MACs are measured once per model and source version and cached in
    ``$CNNLAB_CACHE/zoo-table.json`` (``cache=False`` re-measures). ``macs=False`` skips the
    trace (params only, still exact). ``progress(name)`` is called before each measurement.
    """
    names = list_models() if names is None else names
    path = cache_file()
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
        with contextlib.suppress(OSError):  # an unwritable cache only costs time
            atomic_write(path, json.dumps(stored, indent=1, sort_keys=True))
    return rows
