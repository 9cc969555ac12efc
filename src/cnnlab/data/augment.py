"""Batch data augmentation: whole ``[B, C, H, W]`` tensors, per-sample random parameters.

Seed 001 lists the classic augmentations: horizontal flips; random crops and scales (training:
shorter side random in [256, 480], then a random 224x224 crop); colour jitter; and "random mixes
of translation, rotation, stretching, shearing, lens distortions". Seed 000 adds vertical flips
and hue jitter (``vflip``, ``hue``; its whole list is the ``seed000`` preset). Course code
applies them one PIL image at a time, which starves a laptop's CPU. Here each is a few tensor
operations on the whole batch, on whatever device the batch is on:

- flips and pad-and-crop are index gathers (exact: a flip is a true mirror, a crop a true window);
- scale jitter, random-resized crop, affine warps and lens distortion are fused into ONE sampling
  grid per image and done by a single ``F.grid_sample`` (one interpolation, not one per op);
- colour jitter, cutout and mixup are broadcast arithmetic with per-sample factors.

Random parameters are drawn on the CPU (from ``generator``, an ``Augment(seed=...)``'s own, or
torch's global generator when neither is given) and moved to the batch's device, so a seed gives
the same augmentation on a CPU and a GPU. The trainer uses the global generator, which it
re-seeds every step from ``cnnlab._util.derive_seed(seed, step, rank)``: the run's one seeding
mechanism, which makes ``--resume`` exact without saving any generator state.

Pixel scale: uint8 input [0, 255] or float input in [0, 1]. The output has the input's dtype
(``out_dtype`` can ask for float32 instead, saving a round trip through uint8).

Mixup (Zhang et al., 2018, "mixup: Beyond Empirical Risk Minimization"): with ``mixup=alpha`` the
call needs labels and returns ``(images, targets)`` where targets are ``[B, K]`` probabilities
``lam * onehot(y) + (1 - lam) * onehot(y[perm])``; ``F.cross_entropy(logits, targets)`` accepts
them as they are (label smoothing too), and accuracy is measured against ``targets.argmax(1)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from cnnlab.errors import ConfigError, ShapeError, suggest


@dataclass(frozen=True)
class AugmentConfig:
    """Every switch; 0 / None means off. Sizes in pixels, angles in degrees."""

    flip: float = 0.0  # probability of a horizontal flip
    vflip: float = 0.0  # probability of a vertical flip (seed 000: "Flip (Horizontal, Vertical)")
    alternating_flip: bool = False  # airbench: flip every other epoch per image (needs index=)
    pad: int = 0  # pad-and-crop: pad each side by `pad`, take a random window of the output size
    pad_mode: str = "zeros"  # zeros | reflect | edge
    crop: int | None = None  # output size (scale jitter, resized crop, or a smaller random crop)
    scale_jitter: tuple[float, float] | None = None  # shorter side random in [lo, hi], then crop
    resized_crop: tuple[float, float] | None = None  # area fraction range (Inception style)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # aspect-ratio range of resized_crop
    brightness: float = 0.0  # factor in [1 - b, 1 + b]
    contrast: float = 0.0  # factor in [1 - c, 1 + c]
    saturation: float = 0.0  # factor in [1 - s, 1 + s]
    hue: float = 0.0  # hue shift in [-h, h] of the colour circle (h <= 0.5, torchvision's rule)
    translate: float = 0.0  # shift up to this fraction of width / height
    rotate: float = 0.0  # angle in [-r, r]
    scale: float = 0.0  # isotropic zoom factor in [1 - s, 1 + s]
    stretch: float = 0.0  # anisotropic: x by sqrt(a), y by 1/sqrt(a), a in [1/(1+s), 1+s]
    shear: float = 0.0  # shear angle in [-s, s]
    lens: float = 0.0  # radial distortion strength k in [-l, l]: k > 0 barrel, k < 0 pincushion
    warp_p: float = 1.0  # probability that an image gets the affine / lens warp
    fill: float = 0.0  # value outside the image after a warp, in [0, 1] units
    cutout: int = 0  # side of the square cut out (DeVries & Taylor, 2017)
    cutout_fill: float = 0.5  # grey: after standardisation about the mean, i.e. about 0
    mixup: float = 0.0  # Beta(alpha, alpha) mixing; 0 = off

    def describe(self) -> str:
        on = []
        if self.flip:
            on.append(f"flip p={self.flip:g}")
        if self.vflip:
            on.append(f"vertical flip p={self.vflip:g}")
        if self.alternating_flip:
            on.append("alternating flip")
        if self.scale_jitter:
            lo, hi = self.scale_jitter
            on.append(f"scale jitter {lo:g}-{hi:g} -> crop {self.crop or 'input size'}")
        if self.resized_crop:
            lo, hi = self.resized_crop
            on.append(f"resized crop area {lo:g}-{hi:g} -> {self.crop or 'input size'}")
        if self.pad or (self.crop and not (self.scale_jitter or self.resized_crop)):
            on.append(f"pad {self.pad} ({self.pad_mode}) + random crop {self.crop or ''}".strip())
        for name in (
            "brightness",
            "contrast",
            "saturation",
            "hue",
            "translate",
            "scale",
            "stretch",
        ):
            if getattr(self, name):
                on.append(f"{name} {getattr(self, name):g}")
        for name in ("rotate", "shear"):
            if getattr(self, name):
                on.append(f"{name} {getattr(self, name):g} deg")
        if self.lens:
            on.append(f"lens {self.lens:g}")
        if self.cutout:
            on.append(f"cutout {self.cutout}px")
        if self.mixup:
            on.append(f"mixup alpha={self.mixup:g}")
        return ", ".join(on) or "none"

    @property
    def warps(self) -> bool:
        return bool(
            self.scale_jitter
            or self.resized_crop
            or self.translate
            or self.rotate
            or self.scale
            or self.stretch
            or self.shear
            or self.lens
        )


# Presets: name -> (description, switches as a function of the input's shorter side s).
PRESETS = {
    "none": ("no augmentation", lambda s: {}),
    "flip": ("horizontal flip, p = 0.5", lambda s: dict(flip=0.5)),
    "flip-crop": (
        "the CIFAR standard (He et al. 2016): pad s/8 (4 px at 32) with zeros, random crop, flip",
        lambda s: dict(flip=0.5, pad=max(1, round(s / 8))),
    ),
    "alternating-flip": (
        "airbench's flips: each image flipped on alternate epochs (pass index=), "
        "plus pad s/16 (2 px at 32) and random crop",
        lambda s: dict(alternating_flip=True, pad=max(1, round(s / 16)), pad_mode="reflect"),
    ),
    "imagenet": (
        "seed 001's scale jitter: shorter side random in [256, 480], random 224 crop, flip "
        "(scaled by s/224 for inputs under 256 px: at 32, sides 37-69 -> crop 32)",
        lambda s: (
            dict(flip=0.5, scale_jitter=(256.0, 480.0), crop=224)
            if s >= 256
            else dict(flip=0.5, scale_jitter=(s * 256 / 224, s * 480 / 224), crop=s)
        ),
    ),
    "rrc": (
        "Inception-style random-resized crop (area 8-100%, aspect 3/4-4/3) to the input size, flip",
        lambda s: dict(flip=0.5, resized_crop=(0.08, 1.0)),
    ),
    "digits": (
        "handwriting: rotate 10 deg, shift 10%, zoom 10%, shear 5 deg; no flip (a mirrored 2 "
        "is no 2)",
        lambda s: dict(rotate=10.0, translate=0.1, scale=0.1, shear=5.0),
    ),
    "strong": (
        "flip-crop + colour jitter 0.4 + rotate 15 deg, stretch 0.1, shear 10 deg + cutout s/4",
        lambda s: dict(
            flip=0.5,
            pad=max(1, round(s / 8)),
            brightness=0.4,
            contrast=0.4,
            saturation=0.4,
            rotate=15.0,
            stretch=0.1,
            shear=10.0,
            cutout=max(1, s // 4),
        ),
    ),
    "seed000": (
        "seed 000's list: horizontal and vertical flips, random crop (pad s/8), brightness, "
        "saturation and hue jitter",
        lambda s: dict(
            flip=0.5,
            vflip=0.5,
            pad=max(1, round(s / 8)),
            brightness=0.3,
            saturation=0.3,
            hue=0.05,
        ),
    ),
    "lecture": (
        "seed 001's 'go crazy' mix: flip, crop, colour jitter, translation, rotation, "
        "stretching, shearing, lens distortion",
        lambda s: dict(
            flip=0.5,
            pad=max(1, round(s / 8)),
            brightness=0.3,
            contrast=0.3,
            saturation=0.3,
            translate=0.05,
            rotate=10.0,
            stretch=0.15,
            shear=8.0,
            lens=0.2,
            warp_p=0.5,
        ),
    ),
}
_PRESET_ALIASES = {"cifar": "flip-crop", "standard": "flip-crop", "scale-jitter": "imagenet"}
_PAD_MODES = ("zeros", "reflect", "edge")
_FIELDS = {f.name for f in fields(AugmentConfig)}


class Augment:
    """Batch augmentation built from a preset and/or individual switches.

    >>> aug = Augment("flip-crop")                        # CIFAR standard
    >>> aug = Augment("strong", mixup=0.2)                # a preset with extra switches
    >>> aug = Augment(flip=0.5, rotate=15, lens=0.2)      # switches only
    >>> x = aug(batch)                                    # same shape (or `crop`), same dtype
    >>> x, targets = aug(batch, labels, num_classes=10)   # targets soft when mixup is on

    Switches are the fields of :class:`AugmentConfig`. Presets (``PRESETS``) depend on the input
    size and are resolved at the first call (or ``image_size=`` now).
    """

    def __init__(
        self,
        preset: str = "none",
        *,
        image_size: int | None = None,
        seed: int | None = None,
        num_classes: int | None = None,
        out_dtype: torch.dtype | None = None,
        **switches,
    ):
        name = _PRESET_ALIASES.get(preset, preset)
        if name not in PRESETS:
            raise ConfigError(
                f"unknown augmentation preset {preset!r}; choose one of {', '.join(PRESETS)}",
                suggest(preset, list(PRESETS) + list(_PRESET_ALIASES)) or None,
            )
        unknown = sorted(set(switches) - _FIELDS)
        if unknown:
            raise ConfigError(
                f"unknown augmentation switch {unknown[0]!r}",
                suggest(unknown[0], _FIELDS) or f"switches: {', '.join(sorted(_FIELDS))}",
            )
        self.preset = name
        self.switches = switches
        self.num_classes = num_classes
        self.out_dtype = out_dtype
        self.epoch = 0
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self._configs: dict[int, AugmentConfig] = {}
        self.config = self.resolve(image_size) if image_size is not None else None

    @classmethod
    def from_spec(cls, spec: str, **kw) -> Augment:
        """Parse ``"flip-crop,cutout=8,mixup=0.2"`` or ``"flip=0.5,scale_jitter=36:68,crop=32"``
        (a preset name first, optional; ranges as ``lo:hi``; booleans as true/false)."""
        parts = [p.strip() for p in str(spec).split(",") if p.strip()]
        preset = "none"
        if parts and "=" not in parts[0]:
            preset = parts.pop(0)
        switches = {}
        for part in parts:
            if "=" not in part:
                raise ConfigError(
                    f"cannot read {part!r} in augmentation {spec!r}",
                    "write switches as name=value after the preset: flip-crop,cutout=8",
                )
            key, value = (s.strip() for s in part.split("=", 1))
            key = key.replace("-", "_")
            switches[key] = _parse_value(key, value)
        return cls(preset, **switches, **kw)

    # ------------------------------------------------------------------ configuration
    def resolve(self, size: int) -> AugmentConfig:
        """The concrete switches for inputs whose shorter side is ``size``."""
        if size not in self._configs:
            values = dict(PRESETS[self.preset][1](int(size)))
            values.update(self.switches)
            for key in ("scale_jitter", "resized_crop", "ratio"):
                if values.get(key) is not None:
                    values[key] = tuple(float(v) for v in values[key])
            cfg = AugmentConfig(**values)
            _validate(cfg)
            if cfg.cutout >= size:  # every image would be one grey square
                raise ConfigError(
                    f"augmentation: cutout={cfg.cutout} covers the whole {size}-pixel image",
                    f"give cutout below {size}, e.g. cutout={max(1, size // 4)} (a quarter)",
                )
            self._configs[size] = cfg
        return self._configs[size]

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        cfg = self.resolve(min(height, width))
        return (cfg.crop, cfg.crop) if cfg.crop else (height, width)

    def set_epoch(self, epoch: int) -> None:
        """Only alternating flips depend on the epoch."""
        self.epoch = int(epoch)

    def to_dict(self) -> dict:
        """Preset and switches, for a run's config file."""
        return {"preset": self.preset, **self.switches}

    def __repr__(self) -> str:
        cfg = self.config or (self._configs and next(iter(self._configs.values())))
        detail = f": {cfg.describe()}" if cfg else ""
        extra = "".join(f", {k}={v!r}" for k, v in self.switches.items())
        return f"Augment({self.preset!r}{extra}){detail}"

    # ------------------------------------------------------------------ the call
    def __call__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        num_classes: int | None = None,
        index: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ):
        """Augment a batch. Returns images, or ``(images, targets)`` when labels are given.

        ``index``: the dataset indices of the batch (``BatchLoader(..., return_index=True)``);
        only alternating flips use them (without them they fall back to random flips)."""
        if images.ndim != 4:
            raise ShapeError(f"Augment wants a [B, C, H, W] batch, got {tuple(images.shape)}")
        cfg = self.resolve(min(images.shape[-2:]))
        g = generator if generator is not None else self.generator
        in_dtype = images.dtype
        out_dtype = self.out_dtype or in_dtype
        x = images
        r = _Draws(len(x), g, x.device)
        if cfg.warps:
            x = _warp(_as_float(x), cfg, r)
        if cfg.pad or (cfg.crop and tuple(x.shape[-2:]) != (cfg.crop, cfg.crop)):
            x = _pad_crop(x, cfg.pad, cfg.crop, cfg.pad_mode, r)
        if cfg.alternating_flip:
            x = _alternating_flip(x, index, self.epoch, r)
        if cfg.flip:
            x = _flip(x, cfg.flip, r)
        if cfg.vflip:
            x = _flip_where(x, r.rand() < cfg.vflip, dim=-2)
        if cfg.brightness or cfg.contrast or cfg.saturation or cfg.hue:
            x = _color(_as_float(x), cfg, r)
        if cfg.cutout:
            x = _cutout(x, cfg.cutout, cfg.cutout_fill, r)
        targets = labels
        if cfg.mixup:
            if labels is None:
                raise ConfigError("mixup mixes labels too: call aug(images, labels)")
            k = num_classes or self.num_classes or (labels.shape[1] if labels.ndim == 2 else None)
            if k is None:  # a batch's largest label is no safe guess of the class count
                raise ConfigError(
                    "mixup needs the number of classes for its soft targets",
                    "give Augment(..., num_classes=K) or aug(images, labels, num_classes=K)",
                )
            x, targets = mixup(_as_float(x), labels, k, cfg.mixup, g)
        x = _restore(x, out_dtype)
        return x if labels is None else (x, targets)


# ---------------------------------------------------------------------- the operations


class _Draws:
    """One call's random numbers: a [COLUMNS, B] table of uniforms drawn at once on the CPU
    (from the generator, or torch's global one), sent to the batch's device in one copy and
    handed out a column (one number per image) at a time."""

    COLUMNS = 24  # the most any combination of switches takes is 23

    def __init__(self, n: int, generator, device: torch.device):
        table = torch.rand(self.COLUMNS, n, generator=generator)
        if device.type == "cuda":
            table = table.pin_memory().to(device, non_blocking=True)
        self.table, self.used = table.to(device), 0

    def rand(self) -> torch.Tensor:
        """One uniform number in [0, 1) per image."""
        self.used += 1
        return self.table[self.used - 1]

    def uniform(self, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * self.rand()


def _as_float(x: torch.Tensor) -> torch.Tensor:
    """float32 in [0, 1]: uint8 is scaled; half precision is widened so that sampling grids
    keep sub-pixel accuracy (bf16 has 8 bits of mantissa); the output is cast back."""
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _restore(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if x.dtype == dtype:
        return x
    if dtype == torch.uint8:
        return x.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    if x.dtype == torch.uint8:
        return x.to(dtype).div_(255.0)
    return x.to(dtype)


def _flip(x: torch.Tensor, p: float, r: _Draws) -> torch.Tensor:
    return _flip_where(x, r.rand() < p)


def _flip_where(x: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Mirror the images where ``mask`` is set: horizontally (``dim=-1``) or vertically (-2)."""
    if x.device.type != "cpu":  # nonzero() below would wait for the GPU; where() does not
        return torch.where(mask.view(-1, 1, 1, 1), x.flip(dim), x)
    idx = mask.nonzero().squeeze(1)  # on a CPU, copying only the flipped images is faster
    out = x.clone()
    out[idx] = x[idx].flip(dim)
    return out


def _alternating_flip(x, index, epoch, r: _Draws):
    """airbench (Keller Jordan, 2024): instead of a fresh coin per epoch, image i is flipped in
    epochs of one parity and not in the other, so consecutive epochs see both versions."""
    if index is None:
        return _flip(x, 0.5, r)
    index = index.to(x.device)
    # a fixed pseudo-random bit per image (Knuth's multiplicative hash), xor the epoch's parity
    bit = ((index * 2654435761) >> 16) & 1
    return _flip_where(x, (bit ^ (epoch % 2)).bool())


def _pad_crop(x: torch.Tensor, pad: int, crop: int | None, mode: str, r: _Draws) -> torch.Tensor:
    """A random ``crop x crop`` window (default: the input size) of the image padded by ``pad``
    (zeros, reflect or edge). Exact for any dtype: the windows are views of the padded batch
    (``unfold``), and one advanced index picks each image's own window."""
    b, c, h, w = x.shape
    oh = ow = crop if crop else None
    oh, ow = (oh or h), (ow or w)
    span_y, span_x = h + 2 * pad - oh, w + 2 * pad - ow
    if span_y < 0 or span_x < 0:
        big = f"{h + 2 * pad}x{w + 2 * pad}"
        raise ShapeError(f"crop {oh}x{ow} is larger than the padded image {big}")
    dev = x.device
    oy = (r.rand() * (span_y + 1)).long().clamp_(max=span_y)
    ox = (r.rand() * (span_x + 1)).long().clamp_(max=span_x)
    if pad:
        fmode = {"zeros": "constant", "reflect": "reflect", "edge": "replicate"}[mode]
        x = F.pad(x, (pad, pad, pad, pad), mode=fmode)
    windows = x.unfold(2, oh, 1).unfold(3, ow, 1)  # [B, C, span_y + 1, span_x + 1, oh, ow]
    return windows[torch.arange(b, device=dev), :, oy, ox]


def _warp(x: torch.Tensor, cfg: AugmentConfig, r: _Draws) -> torch.Tensor:
    """Scale jitter / resized crop, affine and lens distortion as one ``grid_sample``.

    For each output pixel centre we walk backwards: undo the lens distortion, undo the affine
    map (about the image centre), then map into the crop box in the input. Pixel coordinates
    with centres at +0.5 (``align_corners=False``)."""
    b, c, h, w = x.shape
    dev = x.device
    oh = ow = cfg.crop if (cfg.crop and (cfg.scale_jitter or cfg.resized_crop)) else None
    oh, ow = oh or h, ow or w

    # 1. crop box in input pixels: (x0, y0, bw, bh) -> the output frame
    if cfg.scale_jitter:
        lo, hi = cfg.scale_jitter
        side = r.uniform(lo, hi)  # the shorter side after resizing
        s = side / min(h, w)  # resize factor
        free_x = (w * s - ow).clamp(min=0)
        free_y = (h * s - oh).clamp(min=0)
        bw, bh = ow / s, oh / s
        x0 = (r.rand() * free_x - (ow - w * s).clamp(min=0) / 2) / s
        y0 = (r.rand() * free_y - (oh - h * s).clamp(min=0) / 2) / s
    elif cfg.resized_crop:
        lo, hi = cfg.resized_crop
        area = r.uniform(lo, hi) * h * w
        log_r = r.uniform(math.log(cfg.ratio[0]), math.log(cfg.ratio[1]))
        ratio = log_r.exp()
        bw = (area * ratio).sqrt().clamp(max=w)
        bh = (area / ratio).sqrt().clamp(max=h)
        x0 = r.rand() * (w - bw)
        y0 = r.rand() * (h - bh)
    else:
        x0 = y0 = torch.zeros(b, device=dev)
        bw, bh = torch.full((b,), float(w), device=dev), torch.full((b,), float(h), device=dev)

    # 2. affine, forward map about the centre: p_out = A p_in + t  (we need its inverse)
    on = (r.rand() < cfg.warp_p).float() if cfg.warp_p < 1 else torch.ones(b, device=dev)
    ang = r.uniform(-cfg.rotate, cfg.rotate).deg2rad() * on
    shear = r.uniform(-cfg.shear, cfg.shear).deg2rad() * on
    zoom = 1 + r.uniform(-cfg.scale, cfg.scale) * on
    log_a = r.uniform(-math.log1p(cfg.stretch), math.log1p(cfg.stretch)) * on
    sx, sy = zoom * (log_a / 2).exp(), zoom * (-log_a / 2).exp()
    tx = r.uniform(-cfg.translate, cfg.translate) * ow * on
    ty = r.uniform(-cfg.translate, cfg.translate) * oh * on
    k = r.uniform(-cfg.lens, cfg.lens) * on
    cos, sin, tan = ang.cos(), ang.sin(), shear.tan()
    # A = R(ang) @ Shear_x(shear) @ diag(sx, sy)
    a11, a12 = cos * sx, (cos * tan - sin) * sy
    a21, a22 = sin * sx, (sin * tan + cos) * sy
    det = a11 * a22 - a12 * a21
    i11, i12, i21, i22 = a22 / det, -a12 / det, -a21 / det, a11 / det

    # 3. compose "inverse affine, then into the crop box, then normalise" into one 2x3 map
    #    from the output's normalised coordinates (pixel centres, align_corners=False) to the
    #    input's: with p = (u * ow/2, v * oh/2) centred output pixels,
    #    x_in = x0 + bw/ow * (Ainv (p - t) + (ow/2, oh/2)), then g = 2 x_in / (w, h) - 1.
    theta = torch.stack(
        (
            torch.stack((bw / w * i11, bw / w * i12 * oh / ow), -1),
            torch.stack((bh / h * i21 * ow / oh, bh / h * i22), -1),
        ),
        1,
    )  # [B, 2, 2]
    shift = torch.stack(
        (
            2 / w * (x0 + bw / ow * (ow / 2 - i11 * tx - i12 * ty)) - 1,
            2 / h * (y0 + bh / oh * (oh / 2 - i21 * tx - i22 * ty)) - 1,
        ),
        -1,
    )  # [B, 2]
    # output pixel centres in normalised coordinates; broadcasting keeps the per-pixel work to
    # a few full-size passes (affine_grid's bmm with a 3-wide inner dimension is slower)
    u = ((torch.arange(ow, device=dev, dtype=x.dtype) * 2 + 1) / ow - 1).view(1, 1, ow)
    v = ((torch.arange(oh, device=dev, dtype=x.dtype) * 2 + 1) / oh - 1).view(1, oh, 1)
    th = theta.to(x.dtype).view(b, 4, 1, 1).unbind(1)
    sh = shift.to(x.dtype).view(b, 2, 1, 1).unbind(1)
    if cfg.lens:
        # radial distortion in the output frame first, r = 1 at the corners. An output pixel at
        # radius r samples radius r (1 + k r^2) (k > 0: barrel) or r / (1 + |k| r^2) (k < 0:
        # pincushion); both are monotonic in r for |k| < 1, so the image never folds over.
        kk = k.to(x.dtype).view(-1, 1, 1)
        r2 = (u.square() + v.square()) / 2
        f = torch.where(kk >= 0, 1 + kk * r2, 1 / (1 - kk * r2))
        u, v = u * f, v * f
    grid = torch.stack((th[0] * u + (th[1] * v + sh[0]), th[2] * u + (th[3] * v + sh[1])), -1)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # Inside the image (within its outer pixel edges) we sampled with edge clamping, so a pure
    # resize is exactly F.interpolate's; outside it goes the fill value. An affine map keeps
    # the output inside when its four outer corners are: then no mask is needed.
    if not cfg.lens and not x.is_cuda:  # (on a GPU the mask is cheaper than a host sync)
        corners = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]], device=dev)
        mapped = corners @ theta.transpose(1, 2) + shift[:, None]
        if bool((mapped.abs() <= 1 + 1e-5).all()):
            return out
    inside = (grid.abs() <= 1).all(-1).unsqueeze(1)
    return out.where(inside, torch.as_tensor(cfg.fill, dtype=out.dtype, device=dev))


def _gray(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma, the weights torchvision's rgb_to_grayscale uses."""
    if x.shape[1] == 1:
        return x
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def _color(x: torch.Tensor, cfg: AugmentConfig, r: _Draws) -> torch.Tensor:
    """Brightness, contrast, saturation and hue with a factor per image (torchvision's
    functional ops take one factor per call, so the same blends are written out here; the hue
    shift uses torchvision's own RGB <-> HSV conversions, which take whole batches)."""
    f = lambda a: r.uniform(1 - a, 1 + a).view(-1, 1, 1, 1).to(x.dtype)  # noqa: E731
    if cfg.brightness:
        x = (x * f(cfg.brightness)).clamp_(0, 1)
    if cfg.contrast:
        mean = _gray(x).mean((1, 2, 3), keepdim=True)
        x = ((x - mean) * f(cfg.contrast) + mean).clamp_(0, 1)
    if cfg.saturation and x.shape[1] == 3:
        gray = _gray(x)
        x = ((x - gray) * f(cfg.saturation) + gray).clamp_(0, 1)
    if cfg.hue:
        shift = r.uniform(-cfg.hue, cfg.hue)  # drawn for grey images too: same stream
        if x.shape[1] == 3:  # a grey image has no hue (PIL's and torchvision's rule)
            from torchvision.transforms._functional_tensor import _hsv2rgb, _rgb2hsv

            h, sat, v = _rgb2hsv(x.float()).unbind(1)
            h = (h + shift.view(-1, 1, 1).float()) % 1.0
            x = _hsv2rgb(torch.stack((h, sat, v), 1)).to(x.dtype)
    return x


def _cutout(x: torch.Tensor, size: int, fill: float, r: _Draws) -> torch.Tensor:
    """A ``size x size`` square at a random centre (it may hang over the edge, as in DeVries &
    Taylor's cutout) set to ``fill``."""
    b, _, h, w = x.shape
    dev = x.device
    cy = (r.rand() * h).long().view(-1, 1, 1)
    cx = (r.rand() * w).long().view(-1, 1, 1)
    ys = torch.arange(h, device=dev).view(1, -1, 1)
    xs = torch.arange(w, device=dev).view(1, 1, -1)
    lo = size // 2
    inside = (ys >= cy - lo) & (ys < cy - lo + size) & (xs >= cx - lo) & (xs < cx - lo + size)
    value = round(fill * 255) if x.dtype == torch.uint8 else fill
    return x.masked_fill(inside[:, None], value)


def mixup(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    alpha: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix each image with a random partner: ``lam * x + (1 - lam) * x[perm]``, one
    ``lam ~ Beta(alpha, alpha)`` per image. Returns float images and ``[B, K]`` soft targets."""
    b, dev = len(images), images.device
    perm = torch.randperm(b, generator=generator).to(dev)
    # Beta from two Gammas would need torch's unseedable sampler; numpy's seeded by our stream
    import numpy as np

    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    lam = torch.from_numpy(np.random.default_rng(seed).beta(alpha, alpha, size=b)).float()
    lam = lam.to(dev)
    x = _as_float(images)
    mixed = lam.view(-1, 1, 1, 1) * x + (1 - lam.view(-1, 1, 1, 1)) * x[perm]
    if labels.ndim == 1:
        onehot = F.one_hot(labels.long(), num_classes).float()
    else:
        onehot = labels.float()
    targets = lam.view(-1, 1) * onehot + (1 - lam.view(-1, 1)) * onehot[perm]
    return mixed, targets


# ---------------------------------------------------------------------- parsing, checks


def _parse_value(key: str, value: str):
    if key not in _FIELDS:
        raise ConfigError(
            f"unknown augmentation switch {key!r}",
            suggest(key, _FIELDS) or f"switches: {', '.join(sorted(_FIELDS))}",
        )
    kind = {f.name: f.type for f in fields(AugmentConfig)}[key]
    try:
        if "tuple" in str(kind):
            lo, hi = value.replace("-", ":").split(":") if ":" in value else (value, value)
            return (float(lo), float(hi))
        if "bool" in str(kind):
            if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(value)
            return value.lower() in ("1", "true", "yes", "on")
        if "int" in str(kind) and "float" not in str(kind):
            return int(value) if value.lower() != "none" else None
        if "str" in str(kind):
            return value
        return float(value)
    except ValueError:
        raise ConfigError(
            f"bad value {value!r} for augmentation switch {key!r}",
            "numbers as 8 or 0.5, ranges as lo:hi, booleans as true/false (e.g. cutout=8)",
        ) from None


def _validate(cfg: AugmentConfig) -> None:
    def bad(msg):
        raise ConfigError(f"augmentation: {msg}", "see docs/data.md for each switch's range")

    if not 0 <= cfg.flip <= 1 or not 0 <= cfg.vflip <= 1 or not 0 <= cfg.warp_p <= 1:
        bad("flip, vflip and warp_p are probabilities in [0, 1]")
    if cfg.pad < 0 or cfg.cutout < 0 or (cfg.crop is not None and cfg.crop < 1):
        bad("pad, cutout and crop must be positive")
    if cfg.pad_mode not in _PAD_MODES:
        bad(f"pad_mode must be one of {', '.join(_PAD_MODES)}, got {cfg.pad_mode!r}")
    if cfg.scale_jitter and cfg.resized_crop:
        bad("choose scale_jitter or resized_crop, not both")
    if cfg.scale_jitter and not 0 < cfg.scale_jitter[0] <= cfg.scale_jitter[1]:
        bad(f"scale_jitter wants 0 < lo <= hi, got {cfg.scale_jitter}")
    if cfg.resized_crop and not 0 < cfg.resized_crop[0] <= cfg.resized_crop[1] <= 1:
        bad(f"resized_crop is an area fraction range in (0, 1], got {cfg.resized_crop}")
    for name in ("brightness", "contrast", "saturation"):
        if not 0 <= getattr(cfg, name) <= 1:
            bad(f"{name} must be in [0, 1] (factor 1 - {name} .. 1 + {name})")
    if not 0 <= cfg.hue <= 0.5:
        bad("hue must be in [0, 0.5] (a shift of at most half the colour circle)")
    if not 0 <= cfg.scale < 1:
        bad("scale must be in [0, 1)")
    if cfg.mixup < 0:
        bad("mixup alpha must be positive (0 = off)")
    if cfg.lens >= 1:
        bad("lens must be under 1 (stronger distortion folds the image over)")
    if cfg.lens < 0 or cfg.stretch < 0 or cfg.translate < 0 or cfg.rotate < 0 or cfg.shear < 0:
        bad("translate, rotate, scale, stretch, shear and lens take magnitudes >= 0")
    if abs(cfg.shear) >= 90:
        bad("shear must be under 90 degrees")
