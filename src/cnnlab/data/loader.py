"""``BatchLoader``: mini-batches straight from in-memory tensors.

A torchvision ``DataLoader`` pays Python per image (``__getitem__``, PIL, collate). Our datasets
already sit in memory as one uint8 tensor, so a batch is one index gather. The order of an epoch
is a pure function of ``(seed, epoch)``, which is what makes a resumed run bit-exact: there is no
hidden generator state to save.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import torch

from cnnlab._util import epoch_permutation
from cnnlab.errors import ConfigError, ShapeError


class BatchLoader:
    """Iterate ``(images, labels)`` batches from tensors held in memory.

    Args:
        images: ``[N, C, H, W]`` tensor (uint8 or float), on the CPU or already on ``device``.
        labels: ``[N]`` int64 tensor (or ``[N, K]`` soft targets).
        batch_size: images per batch.
        shuffle: a new random order every epoch, drawn from ``seed + epoch``.
        drop_last: skip the last, smaller batch (keeps batch-norm statistics and compiled
            shapes steady).
        device: where batches are delivered. On CUDA the whole dataset is copied to the GPU once
            (``resident=True``, the default: CIFAR-10 is 150 MB as uint8) and batches are gathered
            there; with ``resident=False`` each batch is gathered on the CPU into pinned memory and
            sent with ``non_blocking=True``.
        seed: base seed of the shuffling order.
        sampler: an iterable of indices (e.g. ``torch.utils.data.DistributedSampler``) that decides
            the order instead of ``shuffle``; its ``set_epoch`` is called by ours. This is how DDP
            gives each rank its share.

        return_index: also yield each batch's dataset indices, ``(images, labels, index)`` (what
            ``Augment``'s alternating flips need).

    ``len(loader)`` is the number of batches per epoch. Call ``set_epoch(e)`` before each epoch;
    without it every epoch repeats epoch 0's order.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        device: torch.device | str | None = None,
        seed: int = 0,
        sampler: Iterable[int] | None = None,
        *,
        resident: bool = True,
        return_index: bool = False,
    ):
        if images.ndim != 4:
            raise ShapeError(
                f"BatchLoader wants images as [N, C, H, W], got shape {tuple(images.shape)}",
                "add a channel dimension for grayscale images: images.unsqueeze(1)",
            )
        if len(labels) != len(images):
            raise ShapeError(f"{len(images)} images but {len(labels)} labels; they must match")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.device = torch.device(device) if device is not None else images.device
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = int(seed)
        self.sampler = sampler
        self.epoch = 0
        self.return_index = return_index
        self._cuda = self.device.type == "cuda"
        if self._cuda and resident:
            images = _to_device(images, self.device)
            labels = _to_device(labels, self.device)
        elif self._cuda and not images.is_pinned():
            images, labels = images.pin_memory(), labels.pin_memory()
        elif not self._cuda:
            images, labels = images.to(self.device), labels.to(self.device)
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.images)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next iteration follows (also tells the sampler)."""
        self.epoch = int(epoch)
        if self.sampler is not None and hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(self.epoch)

    def order(self) -> torch.Tensor:
        """The indices of this epoch, in the order they will be served (int64, on the CPU)."""
        if self.sampler is not None:
            return torch.as_tensor(list(self.sampler), dtype=torch.int64)
        if not self.shuffle:
            return torch.arange(len(self.images))
        return epoch_permutation(len(self.images), self.seed, self.epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.order()
        n = len(self) * self.batch_size if self.drop_last else len(order)
        order = order.to(self.images.device)  # index where the data lives
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            x = self.images.index_select(0, idx)
            y = self.labels.index_select(0, idx)
            if x.device != self.device:  # CPU gather -> pinned -> async copy to the GPU
                x = x.pin_memory().to(self.device, non_blocking=True)
                y = y.pin_memory().to(self.device, non_blocking=True)
            if self.return_index:
                yield x, y, idx.to(self.device, non_blocking=True)
            else:
                yield x, y


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    if t.device == device:
        return t
    if t.device.type == "cpu" and device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)
