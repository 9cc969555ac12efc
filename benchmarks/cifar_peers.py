"""The two peers of ``benchmarks/train_cifar.py --budget-min N``, each trained for a wall-clock
budget on the same cnnlab ImageSets (uint8 ``[N, 3, 32, 32]``) as cnnlab's own recipe.

**airbench94, ported to the CPU.** Source: Keller Jordan, "94% on CIFAR-10 in 3.29 Seconds on a
Single GPU" (arXiv:2404.00498, 2024) and its script ``airbench94.py``
(github.com/KellerJordan/cifar10-airbench; PyPI ``airbench`` 0.1.8, ``train94``). Written here
from the facts they state, not from their code:

- net: a frozen 2x2 conv of 24 filters (the 12 eigenvectors of the covariance of 2x2 patches of
  5,000 training images, scaled by ``1/sqrt(lambda + 5e-4)``, with both signs) whose bias is
  trained for the first 3 of 9.9 epochs; GELU; three blocks ``conv3x3 -> max-pool 2 -> BN ->
  GELU -> conv3x3 -> BN -> GELU`` of widths 64/256/256 (convs without bias, the first
  ``c_in`` filters initialised as the identity, BN without a scale, momentum 0.6 in airbench's
  sense, eps 1e-12); max-pool 3; a linear layer without bias; logits times 1/9;
- data: batch 1024, CIFAR mean/std normalisation, 2 px reflect-pad translation, alternating
  flips (cnnlab's ``Augment("alternating-flip")`` is the same augmentation);
- optimiser: Nesterov SGD, momentum 0.85, summed label-smoothed (0.2) cross-entropy, learning
  rate 11.5 and weight decay 0.0153 per 1024 examples in airbench's decoupled form, BN biases
  at 64x the learning rate; the learning rate rises from 0.2x to 1x over the first 23% of the
  steps and falls to 0.07x at the end; every 5 steps a lookahead pulls the weights to an
  average that moves at ``1 - 0.95**5 * (t / T)**3``; the last step lands on the average;
- test: TTA "level 2": the mean of the image and its mirror, averaged half-half with the same
  for the image shifted by one pixel each way (reflect padding).

Changes for the CPU: float32 instead of float16, ``epochs`` (and the whitening-bias epochs with
it) scaled to the budget. float32 is what the script's float16 becomes on a CPU, where float16
is emulated; the port is not given bf16 autocast, which is cnnlab's choice on CPUs with AMX or
AVX512-BF16 (the same network trains about 7x faster in it on this Xeon: 924 vs 133 images/s,
benchmarks/RESULTS.md), so part of cnnlab's lead here is that choice, and RESULTS.md says so.
The ``airbench94-bf16`` contestant (``train_cifar.py --peers ...,airbench94-bf16``) is the same
port in bf16 autocast, to measure how much of the lead is bf16 alone.

**A typical course recipe.** ResNet-20 (He et al. 2016, section 4.2: cnnlab's ``resnet20``),
SGD with momentum 0.9, learning rate 0.1 divided by 10 at 50% and 75% of the steps, weight
decay 1e-4, batch 128, per-image torchvision transforms (``RandomCrop(32, padding=4)``,
``RandomHorizontalFlip``, ``ToTensor``, ``Normalize``) through a ``DataLoader`` with 2
workers: the loop of most lecture notebooks.

All three contestants run on the same clock, cnnlab's :class:`cnnlab.training.schedule.Budget`
(as ``cnnlab train --budget-min`` does): it starts with the contestant's first line of work,
each schedule runs on the share of the budget spent (not on a step count planned from an early
throughput measurement, which a machine that slows down mid-run overshoots), and training stops
in time for the test pass, estimated at three times the training rate measured so far.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.training.schedule import Budget

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)

AIRBENCH94 = dict(
    batch_size=1024, epochs=9.9, lr=11.5, momentum=0.85, weight_decay=0.0153, bias_scaler=64.0,
    label_smoothing=0.2, whiten_bias_epochs=3, widths=(64, 256, 256), bn_momentum=0.6,
    logit_scale=1 / 9, lookahead_every=5, warmup_frac=0.23, lr_start=0.2, lr_end=0.07,
)  # fmt: skip

COURSE = dict(batch_size=128, lr=0.1, momentum=0.9, weight_decay=1e-4, milestones=(0.5, 0.75))


def _normalize(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(CIFAR_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD, device=x.device).view(1, 3, 1, 1)
    out = (x.float() / 255 - mean) / std
    return out.contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def accuracy(model, images, labels, views, batch: int = 1000, amp: bool = False) -> float:
    """Test top-1 (%) of ``model`` on uint8 ``images``, logits averaged by ``views(x)``."""
    model.eval()
    correct = 0
    for i in range(0, len(labels), batch):
        x = _normalize(images[i : i + batch])
        with torch.autocast("cpu", torch.bfloat16, enabled=amp):
            logits = views(model, x).float()
        correct += (logits.argmax(1) == labels[i : i + batch]).sum().item()
    model.train()
    return 100.0 * correct / len(labels)


# ------------------------------------------------------------------------------- airbench94


class _Scale(nn.Module):
    def __init__(self, s: float):
        super().__init__()
        self.s = s

    def forward(self, x):
        return x * self.s


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[:c_in])  # the first c_in filters pass their input through
    return conv


def _bn(c: int, momentum: float) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(c, eps=1e-12, momentum=1 - momentum)  # airbench: running = m*old + ...
    bn.weight.requires_grad_(False)  # no learned scale; the bias is learned
    return bn


def _block(c_in: int, c_out: int, momentum: float) -> nn.Sequential:
    return nn.Sequential(
        _conv(c_in, c_out), nn.MaxPool2d(2), _bn(c_out, momentum), nn.GELU(),
        _conv(c_out, c_out), _bn(c_out, momentum), nn.GELU(),
    )  # fmt: skip


def airbench94_net(widths=AIRBENCH94["widths"], num_classes: int = 10) -> nn.Sequential:
    """airbench94's network (see the module docstring); call :func:`whiten` before training."""
    hp = AIRBENCH94
    w0 = 2 * 3 * 2 * 2  # every eigenvector of a 2x2x3 patch, with both signs
    chans = (w0, *widths)
    net = nn.Sequential(
        nn.Conv2d(3, w0, 2, bias=True),
        nn.GELU(),
        *(_block(a, b, hp["bn_momentum"]) for a, b in zip(chans, chans[1:])),
        nn.MaxPool2d(3),
        nn.Flatten(),
        nn.Linear(widths[-1], num_classes, bias=False),
        _Scale(hp["logit_scale"]),
    )
    net[0].weight.requires_grad_(False)
    return net


@torch.no_grad()
def whiten(conv: nn.Conv2d, x: torch.Tensor, eps: float = 5e-4) -> None:
    """airbench's whitening: eigenvectors of the (uncentred) covariance of ``conv``-sized
    patches of the normalised images ``x``, scaled by 1/sqrt(eigenvalue + eps), largest
    first, then the same filters negated."""
    k = conv.kernel_size[0]
    patches = F.unfold(x.float(), k).transpose(1, 2).reshape(-1, x.shape[1] * k * k)
    lam, vec = torch.linalg.eigh(patches.T @ patches / len(patches))
    filt = (vec / (lam + eps).sqrt()).T.flip(0).reshape(-1, x.shape[1], k, k)
    conv.weight.copy_(torch.cat([filt, -filt]))
    conv.bias.zero_()


def tta_mirror_translate(model, x):
    """airbench's TTA level 2 (six forward passes)."""

    def mirror(v):
        return 0.5 * model(v) + 0.5 * model(v.flip(-1))

    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    h, w = x.shape[-2:]
    shifted = [padded[:, :, :h, :w], padded[:, :, 2 : 2 + h, 2 : 2 + w]]
    return 0.5 * mirror(x) + 0.25 * sum(mirror(s.contiguous()) for s in shifted)


def _lr_factor(t: float) -> float:
    """airbench94's triangle over the run's progress ``t`` (0..1): 0.2 -> 1 at 23% -> 0.07."""
    hp = AIRBENCH94
    peak = hp["warmup_frac"]
    if t < peak:
        return hp["lr_start"] + (1 - hp["lr_start"]) * t / peak
    return 1 + (hp["lr_end"] - 1) * min(1.0, (t - peak) / (1 - peak))


def train_airbench94(train_set, test_set, budget_s: float, *, seed: int = 0,
                     widths=None, amp: bool = False) -> dict:  # fmt: skip
    """Train the airbench94 port for ``budget_s`` seconds of wall time; returns a result dict.
    ``amp``: bf16 autocast, as cnnlab uses on CPUs with AMX (the ``airbench94-bf16`` peer)."""
    from cnnlab.data import Augment
    from cnnlab.data.loader import BatchLoader

    t0 = time.perf_counter()
    hp = AIRBENCH94
    widths = tuple(widths or hp["widths"])
    bs = min(hp["batch_size"], len(train_set.labels))
    torch.manual_seed(seed)

    def make():
        model = airbench94_net(widths).to(memory_format=torch.channels_last)
        pick = torch.randperm(len(train_set.labels))[:5000]
        whiten(model[0], _normalize(train_set.images[pick]))
        momentum = hp["momentum"]
        kilostep = 1024 * (1 + 1 / (1 - momentum))  # airbench's decoupling of lr from momentum
        lr = hp["lr"] / kilostep
        wd = hp["weight_decay"] * bs / kilostep
        bn_bias = [m.bias for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        ids = {id(p) for p in bn_bias}
        rest = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
        lr_b = lr * hp["bias_scaler"]
        opt = torch.optim.SGD(
            [dict(params=bn_bias, lr=lr_b, weight_decay=wd / lr_b),
             dict(params=rest, lr=lr, weight_decay=wd / lr)],
            momentum=momentum, nesterov=True,
        )  # fmt: skip
        return model, opt

    def loss_of(model, x, y):
        return F.cross_entropy(model(x), y, label_smoothing=hp["label_smoothing"], reduction="sum")

    # the test pass: 6 views (mirror, and both one-pixel shifts mirrored)
    clock = Budget(budget_s, 6 * len(test_set.labels), started=t0)
    model, opt = make()
    base_lr = [g["lr"] for g in opt.param_groups]
    loader = BatchLoader(train_set.images, train_set.labels, bs, drop_last=True, seed=seed,
                         return_index=True)  # fmt: skip
    aug = Augment("alternating-flip", seed=seed)
    per_epoch = len(loader)
    whiten_bias_until = hp["whiten_bias_epochs"] / hp["epochs"]  # a share of the run, scaled
    ema = [v.detach().clone() for v in model.state_dict().values()]
    done, epoch, last = 0, 0, False
    while not last:
        loader.set_epoch(epoch)
        aug.set_epoch(epoch)
        for x, y, idx in loader:
            t = clock.progress()
            model[0].bias.requires_grad_(t < whiten_bias_until)
            for g, lr in zip(opt.param_groups, base_lr):
                g["lr"] = lr * _lr_factor(t)
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", torch.bfloat16, enabled=amp):
                loss = loss_of(model, _normalize(aug(x, index=idx)), y)
            loss.backward()
            opt.step()
            clock.trained(len(y))
            done += 1
            t = clock.progress()
            last = t >= 1.0
            if done % hp["lookahead_every"] == 0 or last:
                decay = 1.0 if last else 0.95**5 * t**3
                with torch.no_grad():
                    for avg, v in zip(ema, model.state_dict().values()):
                        if v.is_floating_point():
                            avg.lerp_(v, 1 - decay)
                            v.copy_(avg)
            if last:
                break
        epoch += 1
    train_s = time.perf_counter() - t0
    top1 = accuracy(model, test_set.images, test_set.labels, tta_mirror_translate, amp=amp)
    name = f"airbench94 port ({'/'.join(map(str, widths))}{', bf16' if amp else ''})"
    return dict(name=name, top1=top1,
                steps=done, epochs=done / per_epoch, train_s=train_s,
                wall_s=time.perf_counter() - t0)  # fmt: skip


# ------------------------------------------------------------------------------- the course


class _PerImage(torch.utils.data.Dataset):
    """uint8 CHW tensors served one PIL image at a time, as torchvision.datasets.CIFAR10 does."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        img = Image.fromarray(self.images[i].permute(1, 2, 0).numpy())
        return self.transform(img), int(self.labels[i])


def course_loader(train_set, batch: int, workers: int, seed: int):
    from torchvision import transforms as T

    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize(CIFAR_MEAN, CIFAR_STD)])  # fmt: skip
    ds = _PerImage(train_set.images, train_set.labels, tf)
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, drop_last=True,
                                       num_workers=workers, generator=g,
                                       persistent_workers=workers > 0)  # fmt: skip


def train_course(train_set, test_set, budget_s: float, *, seed: int = 0,
                 workers: int = 2) -> dict:  # fmt: skip
    """Train the course recipe (ResNet-20, see the module docstring) for ``budget_s`` seconds."""
    from cnnlab.models import create

    t0 = time.perf_counter()
    hp = COURSE
    bs = min(hp["batch_size"], len(train_set.labels))
    loader = course_loader(train_set, bs, workers, seed)

    def make():
        torch.manual_seed(seed)
        model = create("resnet20", num_classes=10, in_channels=3)
        opt = torch.optim.SGD(model.parameters(), lr=hp["lr"], momentum=hp["momentum"],
                              weight_decay=hp["weight_decay"])  # fmt: skip
        return model, opt

    clock = Budget(budget_s, len(test_set.labels), started=t0)
    model, opt = make()
    done, per_epoch, last = 0, len(loader), False
    while not last:
        for x, y in loader:
            t = clock.progress()  # divide by 10 at 50% and 75% of the run
            for g in opt.param_groups:
                g["lr"] = hp["lr"] * 0.1 ** sum(t >= m for m in hp["milestones"])
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            clock.trained(len(y))
            done += 1
            last = clock.done()
            if last:
                break
    train_s = time.perf_counter() - t0
    top1 = accuracy(model, test_set.images, test_set.labels, lambda m, x: m(x))
    return dict(name="course ResNet-20 (SGD, flip-crop, DataLoader)", top1=top1, steps=done,
                epochs=done / per_epoch, train_s=train_s,
                wall_s=time.perf_counter() - t0)  # fmt: skip


def over_budget(result: dict, budget_s: float) -> bool:
    """More than 10% over: the test pass took far longer than the clock expected."""
    return result["wall_s"] > 1.1 * budget_s
