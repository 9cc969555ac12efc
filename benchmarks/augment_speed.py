"""Batch augmentation (cnnlab.data.Augment) vs per-image torchvision transforms, side by side.

One epoch of 50,000 CIFAR-size images (3x32x32 uint8), augmented and delivered as float
batches of 512, two ways, measured in the same run:

- cnnlab: the whole dataset in memory as one uint8 tensor, ``BatchLoader`` + ``Augment(preset)``
  on whole batches (on the GPU with --device cuda);
- course: the typical course loop: a Dataset returning PIL images (as torchvision's CIFAR10
  does), torchvision transforms per image, a ``DataLoader`` with worker processes.

Pairs compared: ``flip-crop`` vs RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor;
``strong`` vs the same + ColorJitter(0.4, 0.4, 0.4) + RandomAffine(15 deg, shear 10, scale) +
RandomErasing (cutout-like). Prints images/s and the ratio.

    .venv/bin/python benchmarks/augment_speed.py                 # 50,000 images, 2 workers
    .venv/bin/python benchmarks/augment_speed.py --n 10000 --presets flip-crop
    .venv/bin/python benchmarks/augment_speed.py --data-dir ../shared/data   # CIFAR-10 (JPEG)
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch


def course_transforms(preset: str):
    import torchvision.transforms as T

    ops = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()]
    if preset == "strong":
        ops += [
            T.ColorJitter(0.4, 0.4, 0.4),
            T.RandomAffine(degrees=15, shear=10, scale=(0.9, 1.1)),
        ]
    ops.append(T.ToTensor())
    if preset == "strong":
        ops.append(T.RandomErasing(p=1.0, scale=(0.0625, 0.0625), ratio=(1, 1), value=0.5))
    return T.Compose(ops)


class PILDataset(torch.utils.data.Dataset):
    """What torchvision.datasets.CIFAR10 does per item: HWC array -> PIL -> transform."""

    def __init__(self, hwc: np.ndarray, labels: np.ndarray, transform):
        self.hwc, self.labels, self.transform = hwc, labels, transform

    def __len__(self):
        return len(self.hwc)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.hwc[i])), int(self.labels[i])


def time_course(images, labels, preset, batch, workers) -> float:
    hwc = images.permute(0, 2, 3, 1).contiguous().numpy()
    ds = PILDataset(hwc, labels.numpy(), course_transforms(preset))
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch, shuffle=True, num_workers=workers, drop_last=False
    )
    t = time.perf_counter()
    n = 0
    for x, _ in loader:
        n += len(x)
    return time.perf_counter() - t


def time_cnnlab(images, labels, preset, batch, device) -> float:
    from cnnlab.data import Augment, BatchLoader

    aug = Augment(preset, seed=0, out_dtype=torch.float32)
    loader = BatchLoader(images, labels, batch, shuffle=True, device=device, seed=0)
    aug(next(iter(loader))[0])  # warm-up (first-call allocations, CUDA kernels)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    n = 0
    for x, _ in loader:
        n += len(aug(x))
    sync()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=50_000, help="images per epoch [50000]")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers for the course loop")
    p.add_argument("--presets", default="flip-crop,strong")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--data-dir", help="use CIFAR-10 (JPEG) from here instead of random pixels")
    p.add_argument("--threads", type=int, help="torch intra-op threads for cnnlab [torch default]")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.data_dir:
        from cnnlab.data import load_dataset

        ds = load_dataset("cifar10-jpeg", "train", data_dir=args.data_dir)
        images, labels = ds.images[: args.n], ds.labels[: args.n]
        source = "CIFAR-10 (JPEG) train"
    else:
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (args.n, 3, 32, 32), generator=g, dtype=torch.uint8)
        labels = torch.randint(0, 10, (args.n,), generator=g)
        source = "random uint8 pixels"
    device = torch.device(args.device)
    print(
        f"{len(images):,} images 3x32x32 ({source}), batch {args.batch}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), cnnlab on {device}, "
        f"course loop with {args.workers} DataLoader workers"
    )
    print(f"{'preset':<10} {'cnnlab img/s':>13} {'course img/s':>13} {'speed-up':>9}")
    for preset in args.presets.split(","):
        ours = time_cnnlab(images, labels, preset, args.batch, device)
        theirs = time_course(images, labels, preset, args.batch, args.workers)
        n = len(images)
        print(f"{preset:<10} {n / ours:>13,.0f} {n / theirs:>13,.0f} {theirs / ours:>8.1f}x")


if __name__ == "__main__":
    main()
