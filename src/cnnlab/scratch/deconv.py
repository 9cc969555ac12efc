"""Seed 004's "deconvolution" worked on numbers: a transposed convolution as zero insertion,
padding and an ordinary convolution, and why it is not the inverse of the convolution.

``deconv_walkthrough((2, 2), 3, 2)`` returns every intermediate array for one channel with
readable integer values (input 1..H*W, kernel 1..K*K); ``cnnlab scratch deconv --show`` prints
them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlab.scratch.layers import Conv2D, ConvTranspose2D, _pair


@dataclass
class DeconvWalkthrough:
    """Arrays of one single-channel transposed convolution, all 2-D ``[h, w]``."""

    layer: ConvTranspose2D
    x: np.ndarray  # the small input
    kernel: np.ndarray  # w[:, :, 0, 0]
    zero_inserted: np.ndarray  # stride - 1 zeros between input pixels
    padded: np.ndarray  # ... and k - 1 - padding zeros around (+ output_padding)
    flipped: np.ndarray  # the kernel rotated 180 degrees
    y: np.ndarray  # padded (*) flipped at stride 1 == layer.forward(x)
    conv_of_y: np.ndarray  # the ordinary convolution (same kernel, stride, padding) of y
    adjoint: tuple[float, float]  # <conv(y), x> and <y, deconv(x)>: equal (transpose)

    @property
    def size_working(self) -> list[str]:
        (kh, kw), (sh, sw) = self.layer.ksize, self.layer.stride
        (ph, pw), (oh, ow) = self.layer.padding, self.layer.output_padding
        return [
            f"{axis}' = ({n} - 1)*{s} - 2*{p} + {k} + {op} = {m}"
            for axis, n, s, p, k, op, m in (
                ("H", self.x.shape[0], sh, ph, kh, oh, self.y.shape[0]),
                ("W", self.x.shape[1], sw, pw, kw, ow, self.y.shape[1]),
            )
        ]


def deconv_walkthrough(input_size, kernel, stride=1, padding=0, output_padding=0, x=None, w=None):
    """Work one transposed convolution through seed 004's picture (see the module docstring).

    ``input_size`` and ``kernel`` are an int or ``(h, w)``; ``x``/``w`` replace the default
    1..N values. Raises ``ConfigError``/``ShapeError`` for options that do not fit.
    """
    h, wd = _pair(input_size, "input size")
    layer = ConvTranspose2D(
        1, 1, kernel, stride, padding, output_padding, bias=False, dtype=np.float64
    )
    kh, kw = layer.ksize
    layer.output_shape((h, wd, 1))  # checks the output size is positive
    x = np.arange(1, h * wd + 1, dtype=np.float64).reshape(h, wd) if x is None else np.asarray(x)
    k = np.arange(1, kh * kw + 1, dtype=np.float64).reshape(kh, kw) if w is None else np.asarray(w)
    layer.params["w"] = k.astype(np.float64)[:, :, None, None]
    x4 = x.astype(np.float64)[None, :, :, None]
    y = layer.forward(x4)[0, :, :, 0]
    (sh, sw), (ph, pw) = layer.stride, layer.padding
    inserted = np.zeros(((h - 1) * sh + 1, (wd - 1) * sw + 1))
    inserted[::sh, ::sw] = x
    padded = layer.zero_insert_pad(x4)[0, :, :, 0] if ph < kh and pw < kw else None
    conv = Conv2D(1, 1, (kh, kw), (sh, sw), (ph, pw), bias=False, dtype=np.float64)
    conv.params["w"] = layer.params["w"]
    conv_of_y = conv.forward(y[None, :, :, None])[0, :, :, 0]
    return DeconvWalkthrough(
        layer=layer,
        x=x,
        kernel=k,
        zero_inserted=inserted,
        padded=padded,
        flipped=k[::-1, ::-1].copy(),
        y=y,
        conv_of_y=conv_of_y,
        adjoint=(float((conv_of_y * x).sum()), float((y * y).sum())),
    )
