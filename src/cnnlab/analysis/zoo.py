"""The zoo table of ``cnnlab models``: every registered model measured on the meta device.

Params and MACs come from :func:`cnnlab.analysis.summary`, measured once per model and source
version. Tracing all of the zoo takes 15-45 s on a small CPU (Faster R-CNN alone most of it),
so the measurements ship with the package: ``zoo_table.json`` beside this file, written by
``python -m cnnlab.analysis.zoo``, is the cache filled at install. Each entry is keyed by a
fingerprint of the model's source file, the counting code (``COUNTING``), torch's and cnnlab's
versions; an entry whose key no longer matches is measured again and kept in
``$CNNLAB_CACHE/zoo-table.json`` (``cnnlab cache`` lists it). It lives in ``analysis`` (not
``models``) because measuring needs the summary: models only names them.

Models whose builder defaults to auxiliary classifier heads (GoogLeNet's ``aux_logits=True``)
also get ``params_no_aux``: the count of the network that runs at test time.
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


# the code whose change can change a count: the trace, the conventions, the summary's rows (and
# arithmetic/core.py's formulas); not the renderers, comparisons or this table's own code
COUNTING = ("trace.py", "conventions.py", "summary.py", "receptive.py", "ops.py", "meta_shapes.py")
SHIPPED = Path(__file__).with_name("zoo_table.json")


def _fingerprint(info: ModelInfo, method: str) -> str:
    """Changes when the model's source, the counting code, torch or cnnlab's version changes."""
    from cnnlab import __version__

    model_src = _source_hash(inspect.getsourcefile(info.builder) or info.name)
    here = Path(__file__).parent
    count_src = "|".join(_source_hash(str(here / f)) for f in COUNTING if (here / f).is_file())
    arith = _source_hash(str(here.parent / "arithmetic" / "core.py"))  # the per-row formulas
    text = f"{info.name}|{info.input_size}|{torch.__version__}|{__version__}|{method}"
    return hashlib.sha1(f"{model_src}|{count_src}|{arith}|{text}".encode()).hexdigest()


def params_without_aux(name: str) -> int | None:
    """Parameters of ``name`` built without its auxiliary heads, for builders that add them by
    default (GoogLeNet: 13,004,888 with, 6,624,904 without); None for the others."""
    from cnnlab.models.registry import model_options

    if model_options(name).get("aux_logits") is not True:
        return None
    with torch.device("meta"):
        model = get_info(name).builder(aux_logits=False)
    return sum(p.numel() for p in model.parameters())


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


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}  # a damaged cache is simply rebuilt


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
    shipped = _read(SHIPPED) if cache else {}
    stored: dict = _read(path) if cache else {}
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
            "params_no_aux": None,
        }
        if macs:
            key = _fingerprint(info, "summary")
            hit = next(
                (h for h in (stored.get(name), shipped.get(name)) if h and h.get("key") == key),
                None,
            )
            if hit is not None:
                row["params"], row["macs"] = hit["params"], hit["macs"]
                row["params_no_aux"] = hit.get("params_no_aux")
            else:
                if progress:
                    progress(name)
                row["params"], row["macs"], method = measure(name)
                row["params_no_aux"] = params_without_aux(name)
                stored[name] = {
                    "key": _fingerprint(info, method),
                    "params": row["params"],
                    "macs": row["macs"],
                    "params_no_aux": row["params_no_aux"],
                }
                changed = True
        else:
            with torch.device("meta"):
                row["params"] = sum(p.numel() for p in info.builder().parameters())
            row["params_no_aux"] = params_without_aux(name)
        rows.append(row)
    if cache and changed:
        with contextlib.suppress(OSError):  # an unwritable cache only costs time
            atomic_write(path, json.dumps(stored, indent=1, sort_keys=True))
    return rows


def write_shipped_table(path: Path = SHIPPED, names: list[str] | None = None) -> Path:
    """Measure every model (or ``names``) afresh and write the table shipped with the package
    (run ``python -m cnnlab.analysis.zoo`` after changing a model or the counting code)."""
    table = {}
    for row in zoo_table(names, cache=False):
        info = get_info(row["name"])
        table[row["name"]] = {
            "key": _fingerprint(info, "summary"),
            "params": row["params"],
            "macs": row["macs"],
            "params_no_aux": row["params_no_aux"],
        }
    return atomic_write(path, json.dumps(table, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":  # python -m cnnlab.analysis.zoo
    import time

    t0 = time.perf_counter()
    print(f"wrote {write_shipped_table()} in {time.perf_counter() - t0:.1f} s")
