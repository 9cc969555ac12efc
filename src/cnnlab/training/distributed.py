"""torch.distributed in three functions: join the process group, shard the data, know rank 0.

Launch with ``torchrun --nproc_per_node=N -m cnnlab train ...`` (one machine, N GPUs or N CPU
processes) or ``--nnodes/--node_rank/--master_addr`` for several machines; ``cnnlab train
--nproc N`` runs torchrun for you. torchrun sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``;
:func:`setup` reads them. The backend is NCCL on CUDA and gloo on the CPU.

``--batch-size`` is the *global* batch: each of the W processes takes ``batch/W`` images per
step from its own shard of the epoch's permutation (:class:`ShardSampler`), DDP averages the
gradients, so one step sees the same images as a single process with the whole batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from cnnlab._util import epoch_permutation


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_type: str) -> DistInfo:
    """Join the process group described by torchrun's environment (no-op for one process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local)


def teardown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


class ShardSampler:
    """Rank ``rank``'s share of a permutation that is a pure function of ``(seed, epoch)``.

    All ranks draw the same permutation and rank ``r`` takes positions ``r, r+W, r+2W, ...``;
    so the k-th local batches of all ranks together are exactly the k-th global batch of a
    single process that uses the same permutation with the whole batch. The tail that does not
    divide by W is dropped (a few images per epoch) so every rank takes the same number of steps.
    """

    def __init__(self, n: int, rank: int = 0, world_size: int = 1, seed: int = 0, shuffle=True):
        self.n, self.rank, self.world, self.seed, self.shuffle = n, rank, world_size, seed, shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def permutation(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.n)
        return epoch_permutation(self.n, self.seed, self.epoch)

    def __len__(self) -> int:
        return self.n // self.world

    def __iter__(self):
        perm = self.permutation()[: len(self) * self.world]
        return iter(perm[self.rank :: self.world].tolist())


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_float(x: float, info: DistInfo, device) -> float:
    """Rank 0's number for everyone (e.g. the share of a wall-clock budget spent)."""
    if not info.enabled:
        return x
    t = torch.tensor([x], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return float(t.item())


def broadcast_flag(flag: bool, info: DistInfo, device) -> bool:
    """Rank 0's decision (e.g. stop early) for everyone."""
    if not info.enabled:
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.broadcast(t, src=0)
    return bool(t.item())
