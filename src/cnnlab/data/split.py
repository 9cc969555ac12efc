"""Hold-out splits: part of a training set kept aside to choose and stop on (validation)."""

from __future__ import annotations

import dataclasses

import torch

from cnnlab._util import derive_seed
from cnnlab.errors import ConfigError


def holdout_indices(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, val)`` sorted int64 indices into ``n`` images: a seeded random ``fraction``
    held out, the draw depending only on ``(seed, n)``. What :func:`holdout_split` cuts; a
    loop outside cnnlab (``benchmarks/train_cpu.py``'s course loop) can hold out the same images.
    """
    k = max(1, int(round(fraction * n)))
    if not 0 < fraction < 1 or k >= n:
        raise ConfigError(
            f"cannot hold out {fraction:g} of {n} images for validation",
            "use a --val-fraction between 0 and 1 that leaves images to train on",
        )
    g = torch.Generator().manual_seed(derive_seed(seed, "holdout"))
    perm = torch.randperm(n, generator=g)
    return perm[k:].sort().values, perm[:k].sort().values


def holdout_split(ds, fraction: float, seed: int):
    """``(train, val)``: a seeded random ``fraction`` of ``ds`` (an ImageSet) held out.

    The draw depends only on ``(seed, len(ds))``, so a resumed run holds out the same images.
    Both parts keep the source's classes; their names say which part they are
    (``bars[train]``, ``bars[val]``).
    """
    tr, val = holdout_indices(len(ds.labels), fraction, seed)

    def part(ix, tag):
        return dataclasses.replace(ds.subset(ix), name=f"{ds.name}[{tag}]", split=tag)

    return part(tr, "train"), part(val, "val")
