"""Layers of the from-scratch engine (seed 003), NumPy only.

Layouts (seed 003): inputs ``[mb, xh, xw, xchn]``, kernels ``[kh, kw, xchn, ychn]``, outputs
``[mb, yh, yw, ychn]``. Every layer has ``forward(x, train)`` and ``backward(dy) -> dx``; trainable
arrays live in ``params`` and their gradients, after ``backward``, in ``grads`` (same keys). Running
statistics that are saved but not trained live in ``buffers``.

The two rules of seed 003 carry the whole convolution backward pass:

* sum of (output gradient x input)  = kernel gradient  -> ``dk = cols.T @ dy``
* sum of (output gradient x kernel) = input gradient   -> ``dcols = k @ dy.T``, then col2im

``Conv2DNaive`` spells both rules out as loops over every output value; ``Conv2D`` does each
pass as matrix products, 100x+ faster, in one of two layouts it picks per input size:

* **im2col**: one row per output pixel holding its kh*kw*xchn window (a strided view, copied once);
* **banded rows**: one row per output *row* holding its kh input rows, times a banded
  ``[kh*W*xchn, yw*ychn]`` matrix that repeats the kernel once per output column (zeros
  elsewhere). It does W/kw times the multiply-adds of im2col, but copies only kh rows per output
  row and needs no col2im scatter, which wins for narrow images (LeNet's 14x14 and 32x32).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from cnnlab.arithmetic.core import conv_transpose_output_size
from cnnlab.errors import ConfigError, ShapeError


def _pair(v, what="size", low=1) -> tuple[int, int]:
    """``v`` or ``(v_h, v_w)`` as a pair of ints, each at least ``low``."""
    pair = (v, v) if isinstance(v, (int, np.integer)) else v
    if (
        isinstance(pair, (tuple, list))
        and len(pair) == 2
        and all(isinstance(i, (int, np.integer)) and i >= low for i in pair)
    ):
        return int(pair[0]), int(pair[1])
    raise ConfigError(f"{what} must be an int >= {low} or a pair (h, w) of them, got {v!r}")


def _fmt(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def windows(x, kh, kw, sh=1, sw=1):
    """View ``x [mb, H, W, C]`` as its sliding windows ``[mb, yh, yw, kh, kw, C]`` (no copy)."""
    mb, h, w, c = x.shape
    s0, s1, s2, s3 = x.strides
    yh, yw = (h - kh) // sh + 1, (w - kw) // sw + 1
    return as_strided(
        x, (mb, yh, yw, kh, kw, c), (s0, sh * s1, sw * s2, s1, s2, s3), writeable=False
    )


def row_windows(x, kh, sh=1):
    """View ``x [mb, H, W, C]`` as ``[mb, yh, kh, W*C]``: for each output row its kh input rows."""
    mb, h, w, c = x.shape
    x3 = np.ascontiguousarray(x).reshape(mb, h, w * c)
    s0, s1, s2 = x3.strides
    shape = (mb, (h - kh) // sh + 1, kh, w * c)
    return as_strided(x3, shape, (s0, sh * s1, s1, s2), writeable=False)


def band_diagonals(band, kw, sw):
    """The kernel's place in a banded matrix ``[kh, W, xchn, yw, ychn]`` (see ``Conv2D._band``):
    a view ``[yw, kh, kw, xchn, ychn]`` whose entry j is ``band[:, j*sw : j*sw + kw, :, j, :]``."""
    kh, _, c, yw, o = band.shape
    s = band.strides
    return as_strided(band, (yw, kh, kw, c, o), (s[3] + sw * s[1], s[0], s[1], s[2], s[4]))


def same_pads(n, k, s):
    """'same' padding (TF rule; PyTorch's for stride 1): output ceil(n/s); extra pad goes after."""
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


class Layer:
    """Base class: a named layer with ``params``/``grads``/``buffers`` dicts and shape checks."""

    kind = "layer"

    def __init__(self, name=None):
        self.name = name or type(self).__name__.lower()
        self.params, self.grads, self.buffers = {}, {}, {}

    def describe(self) -> str:
        return type(self).__name__

    def spec(self):
        """``[kind, options]``: enough to rebuild this layer (see ``cnnlab.scratch.model``)."""
        return [self.kind, {}]

    def output_shape(self, shape):
        """Per-sample output shape for a per-sample input shape (raises ShapeError if unfit)."""
        return tuple(shape)

    def _fail(self, expected, shape, hint=None):
        """Raise ShapeError naming this layer, the shape it expects and the shape it got."""
        raise ShapeError(
            f"{self.name} ({self.describe()}) expects input {expected}, got {_fmt(shape)}", hint
        )

    def forward(self, x, train=False):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def __repr__(self):
        return f"{self.name} ({self.describe()})"


def _image(layer, x, chn=None):
    """Check a 4-D NHWC input (and its channel count); return it as an ndarray."""
    x = np.asarray(x)
    if x.dtype.kind != "f":  # integer or boolean images compute in float32
        x = x.astype(np.float32)
    want = f"[mb, h, w, {chn if chn is not None else 'c'}]"
    if x.ndim != 4:
        layer._fail(want, x.shape, "images are NHWC: [batch, height, width, channels] (seed 003)")
    if chn is not None and x.shape[3] != chn:
        layer._fail(
            want, x.shape, f"the layer before gives {x.shape[3]} channels, this one takes {chn}"
        )
    return x


# --------------------------------------------------------------------------- convolution


def _init_kernel(layer, rng, fan_in, dtype) -> None:
    """He initialisation of an HWIO kernel (keeps ReLU activations' variance) and a zero bias."""
    kh, kw = layer.ksize
    rng = rng if rng is not None else np.random.default_rng()
    shape = (kh, kw, layer.in_chn, layer.chn)
    layer.params["w"] = (rng.standard_normal(shape) * math.sqrt(2 / fan_in)).astype(dtype)
    if layer.bias:
        layer.params["b"] = np.zeros(layer.chn, dtype)


def _describe_kernel(layer, kind: str) -> str:
    kh, kw = layer.ksize
    s = f", stride {layer.stride[0]}" if layer.stride != (1, 1) else ""
    return f"{kind} {kh}x{kw}, {layer.in_chn}->{layer.chn}{s}"


class Conv2D(Layer):
    """2-D convolution (cross-correlation, as in every framework) on NHWC inputs.

    ``padding``: ``"same"`` (output ``ceil(n/stride)``; with an even kernel the extra row/column
    of padding goes at the bottom/right, as TF and PyTorch's ``padding="same"`` do), ``"valid"``
    (none), an int, a pair ``(ph, pw)`` or ``((top, bottom), (left, right))``. Sizes that do not
    divide are floored like PyTorch: trailing rows no window reaches get zero gradient.

    ``method``: ``"im2col"`` or ``"banded"`` (see the module docstring) or ``"auto"``, which
    takes the banded rows when their extra multiply-adds (W/kw times im2col's) cost less than
    im2col's copy and scatter (``use_banded``): LeNet-5's two convolutions run banded, 1.6x
    faster; wide images and many channels run im2col. Both give the same numbers.
    """

    kind = "conv"
    METHODS = ("auto", "im2col", "banded")

    def __init__(
        self,
        in_chn,
        chn,
        ksize,
        stride=1,
        padding="same",
        bias=True,
        *,
        dtype=np.float32,
        rng=None,
        method="auto",
        name=None,
    ):
        super().__init__(name)
        if method not in self.METHODS:
            raise ConfigError(f"{self.name}: method must be one of {self.METHODS}, got {method!r}")
        self.method = method
        self.in_chn, self.chn = int(in_chn), int(chn)
        self.ksize, self.stride = _pair(ksize, "ksize"), _pair(stride, "stride")
        self.padding, self.bias = padding, bool(bias)
        self.need_dx = True  # the first layer of a model skips its (unused) input gradient
        self._pads = {}  # input (h, w) -> ((top, bottom), (left, right))
        kh, kw = self.ksize
        _init_kernel(self, rng, kh * kw * self.in_chn, dtype)
        self.pads((max(kh, 1), max(kw, 1)))  # validates the padding option early

    def describe(self):
        return _describe_kernel(self, "Conv2D")

    def spec(self):
        return [
            "conv",
            {
                "ksize": list(self.ksize),
                "chn": self.chn,
                "stride": list(self.stride),
                "padding": self.padding,
                "bias": self.bias,
                "actfunc": "none",
            },
        ]

    def pads(self, hw):
        """((top, bottom), (left, right)) for an input of spatial size ``hw``."""
        if hw in self._pads:
            return self._pads[hw]
        p, k, s = self.padding, self.ksize, self.stride
        if p == "same":
            pads = tuple(same_pads(hw[i], k[i], s[i]) for i in range(2))
        elif p == "valid":
            pads = ((0, 0), (0, 0))
        elif (
            isinstance(p, (list, tuple))
            and len(p) == 2
            and all(isinstance(q, (list, tuple)) for q in p)
        ):
            pads = tuple(_pair(q, "padding", 0) for q in p)
        else:
            ph, pw = _pair(p, "padding ('same', 'valid', int, (ph, pw) or ((t, b), (l, r)))", 0)
            pads = ((ph, ph), (pw, pw))
        self._pads[hw] = pads
        return pads

    def output_shape(self, shape):
        if len(shape) != 3 or shape[2] != self.in_chn:
            self._fail(f"[mb, h, w, {self.in_chn}]", ("mb", *shape))
        (pt, pb), (pl, pr) = self.pads(tuple(shape[:2]))
        hp, wp = shape[0] + pt + pb, shape[1] + pl + pr
        (kh, kw), (sh, sw) = self.ksize, self.stride
        if hp < kh or wp < kw:
            raise ShapeError(
                f"{self.name} ({self.describe()}): input [mb, {shape[0]}, {shape[1]}, {shape[2]}] "
                f"padded to {hp}x{wp} is smaller than the {kh}x{kw} kernel",
                "use padding='same', a smaller kernel, or remove a pooling layer before it",
            )
        return ((hp - kh) // sh + 1, (wp - kw) // sw + 1, self.chn)

    def _setup(self, x):
        x = _image(self, x, self.in_chn)
        self.output_shape(x.shape[1:])
        w = self.params["w"]
        x = x.astype(w.dtype, copy=False)
        (pt, pb), (pl, pr) = self.pads(x.shape[1:3])
        xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0))) if pt + pb + pl + pr else x
        return x, xp

    def use_banded(self, wp):
        """Whether ``method="auto"`` runs a padded input of width ``wp`` as banded rows."""
        if self.method != "auto":
            return self.method == "banded"
        # Banded rows do wp/kw times im2col's multiply-adds; im2col pays a copy and a scatter
        # per window value, which weigh less the more output channels share them. The rule is
        # fitted on 1 thread to the cases of benchmarks/scratch_speed.py and a few more.
        return wp / self.ksize[1] <= 1 + 40 / self.chn

    def forward(self, x, train=False):
        x, xp = self._setup(x)
        if self.use_banded(xp.shape[2]):
            y, cache = self._banded_forward(xp)
        else:
            y, cache = self._im2col_forward(xp)
        self._cache = (x.shape, cache)
        return y

    def backward(self, dy):
        xshape, cache = self._cache
        w = self.params["w"]
        dy = dy.astype(w.dtype, copy=False)
        if cache[0] == "banded":
            return self._banded_backward(dy, xshape, *cache[1:])
        cols = cache[1]
        dy2 = dy.reshape(-1, self.chn)
        self.grads["w"] = (cols.T @ dy2).reshape(w.shape)  # sum of dy x input = dk: one GEMM
        if self.bias:
            self.grads["b"] = np.ones(len(dy2), w.dtype) @ dy2  # a GEMV beats sum(0) here
        return self._input_grad(dy2, dy.shape, xshape) if self.need_dx else None

    def _add_bias(self, y2, yw):
        """``y2 [..., yw*ychn] += b`` per channel; adding a tiled row keeps the inner loop long."""
        if self.bias:
            y2 += np.tile(self.params["b"], yw)

    def _im2col_forward(self, xp):
        (kh, kw), (sh, sw) = self.ksize, self.stride
        win = windows(xp, kh, kw, sh, sw)  # [mb, yh, yw, kh, kw, xchn], a view
        mb, yh, yw = win.shape[:3]
        w = self.params["w"].reshape(-1, self.chn)
        # im2col, the one copy: rows = output pixels, columns = (kh, kw, xchn). It runs in
        # chunks of images, each multiplied while its rows are still in cache. Copy order only
        # matters for speed: with few channels, copying along the output width is 5-10x faster.
        thin = self.in_chn <= 3
        cols = np.empty((kh, kw, self.in_chn, mb, yh, yw) if thin else win.shape, w.dtype)
        y = np.empty((mb, yh * yw, self.chn), w.dtype)
        step = max(1, (1 << 19) // (yh * yw * w.shape[0] * w.itemsize))  # ~512 KiB of rows
        for s in range(0, mb, step):
            e = min(s + step, mb)
            out = y[s:e].reshape(-1, self.chn)
            if thin:
                part = cols[:, :, :, s:e]
                np.copyto(part, win[s:e].transpose(3, 4, 5, 0, 1, 2))
                np.matmul(part.reshape(len(w), -1).T, w, out=out)
            else:
                np.copyto(cols[s:e], win[s:e])
                np.matmul(cols[s:e].reshape(-1, len(w)), w, out=out)
        self._add_bias(y.reshape(-1, yw * self.chn), yw)
        cols = cols.reshape(len(w), -1).T if thin else cols.reshape(-1, len(w))
        return y.reshape(mb, yh, yw, self.chn), ("im2col", cols)

    def _band(self, wp, yw):
        """The banded weight matrix ``[kh*wp*xchn, yw*ychn]``: output column j of a row sees
        input columns ``j*sw .. j*sw + kw - 1``, so the kernel sits on a shifted diagonal."""
        (kh, kw), sw = self.ksize, self.stride[1]
        w = self.params["w"]
        band = np.zeros((kh, wp, self.in_chn, yw, self.chn), w.dtype)
        band_diagonals(band, kw, sw)[...] = w  # the same kernel for every output column j
        return band

    def _banded_forward(self, xp):
        (kh, kw), (sh, sw) = self.ksize, self.stride
        mb, _, wp, _ = xp.shape
        yw = (wp - kw) // sw + 1
        rows = row_windows(xp, kh, sh)  # [mb, yh, kh, wp*xchn], a view
        yh = rows.shape[1]
        rows = rows.reshape(mb * yh, -1)  # the copy: kh input rows per output row
        band = self._band(wp, yw)
        y = rows @ band.reshape(len(rows[0]), -1)  # [mb*yh, yw*ychn]: NHWC already
        self._add_bias(y, yw)
        return y.reshape(mb, yh, yw, self.chn), ("banded", rows, band, xp.shape)

    def _banded_backward(self, dy, xshape, rows, band, pshape):
        (kh, kw), (sh, sw) = self.ksize, self.stride
        mb, yh, yw, o = dy.shape
        dy2 = dy.reshape(mb * yh, yw * o)
        g = (rows.T @ dy2).reshape(band.shape)  # dk for every (column j, band position)
        self.grads["w"] = band_diagonals(g, kw, sw).sum(0)  # ... summed over the columns j
        if self.bias:
            self.grads["b"] = (np.ones(len(dy2), dy.dtype) @ dy2).reshape(yw, o).sum(0)
        if not self.need_dx:
            return None
        # dy x kernel: each output row sends to its kh input rows, [mb, yh, kh, wp*xchn]
        d = (dy2 @ band.reshape(len(rows[0]), -1).T).reshape(mb, yh, kh, -1)
        _, hp, wp, c = pshape
        dx = np.zeros((mb, hp, wp * c), dy.dtype)
        for a in range(kh):  # overlapping row windows add up; stride rows receive nothing
            dx[:, a : a + sh * (yh - 1) + 1 : sh] += d[:, :, a]
        (pt, _), (pl, _) = self.pads(xshape[1:3])
        return dx.reshape(pshape)[:, pt : pt + xshape[1], pl : pl + xshape[2]]

    def _input_grad(self, dy2, yshape, xshape):
        """dx: sum of dy x kernel (seed 003) as one matrix product, then col2im.

        ``d[a, b] = k[a, b] @ dy.T`` is what every output pixel sends to the input pixel under
        kernel offset (a, b). Adding each ``d[a, b]`` into a strided view of the padded input
        undoes both the window slide and the stride skip (skipped positions receive nothing).
        The Python loop runs over the kh*kw kernel offsets, never over pixels. (This equals the
        "transposed convolution" of the stride-dilated dy with the flipped kernel,
        ``transposed_conv_input_grad``, which measures slower: see benchmarks/scratch_speed.py.)
        """
        mb, h, wd, c = xshape
        (kh, kw), (sh, sw) = self.ksize, self.stride
        (pt, pb), (pl, pr) = self.pads((h, wd))
        _, yh, yw, _ = yshape
        w = self.params["w"]
        padded = (mb, h + pt + pb, wd + pl + pr, c)

        def at(a, b):  # the input pixels kernel offset (a, b) of every window lands on
            return slice(a, a + sh * (yh - 1) + 1, sh), slice(b, b + sw * (yw - 1) + 1, sw)

        if c <= 3:  # few channels: one GEMM, d[a, b] channel-first [xchn, mb, yh, yw], and
            # dx accumulated channel-first too, so the adds run along whole output rows
            d = (w.reshape(-1, self.chn) @ dy2.T).reshape(kh, kw, c, mb, yh, yw)
            dxp = np.zeros((c, *padded[:3]), w.dtype)
            for a in range(kh):
                for b in range(kw):
                    dxp[(slice(None), slice(None), *at(a, b))] += d[a, b]
            return dxp.transpose(1, 2, 3, 0)[:, pt : pt + h, pl : pl + wd]
        # one batched product per offset, d[a, b] NHWC [mb, yh, yw, xchn]; in chunks of images
        # (~2 MiB of d each) so that the adds read d from cache, not memory
        wt = w.reshape(kh * kw, c, self.chn).transpose(0, 2, 1)
        dx = np.zeros(padded, w.dtype)
        dy3 = dy2.reshape(mb, yh * yw, self.chn)
        step = max(1, (1 << 21) // (kh * kw * yh * yw * c * w.itemsize))
        for s in range(0, mb, step):
            e = min(s + step, mb)
            d = np.matmul(dy3[s:e].reshape(-1, self.chn), wt).reshape(kh, kw, e - s, yh, yw, c)
            part = dx[s:e]
            for a in range(kh):
                for b in range(kw):
                    part[(slice(None), *at(a, b))] += d[a, b]
        return dx[:, pt : pt + h, pl : pl + wd]


def transposed_conv_input_grad(layer, dy, xshape):
    """``layer``'s input gradient the other classic way, as a "transposed convolution": a full
    correlation of the stride-dilated ``dy`` with the flipped, in/out-swapped kernel (one strided
    view and one GEMM). Same numbers as ``Conv2D.backward``'s col2im; kept to show the identity
    (the tests check it) and for ``benchmarks/scratch_speed.py``, where it measures slower: its
    im2col is kh*kw*ychn wide and, for stride s, mostly zeros.
    """
    mb, h, wd, c = xshape
    (kh, kw), (sh, sw) = layer.ksize, layer.stride
    (pt, pb), (pl, pr) = layer.pads((h, wd))
    _, yh, yw, ychn = dy.shape
    w = layer.params["w"]
    z = np.zeros((mb, h + pt + pb + kh - 1, wd + pl + pr + kw - 1, ychn), w.dtype)
    z[:, kh - 1 : kh - 1 + sh * yh : sh, kw - 1 : kw - 1 + sw * yw : sw] = dy  # dilate, pad
    z = z[:, pt : pt + h + kh - 1, pl : pl + wd + kw - 1]  # only what lands inside x
    cols = windows(z, kh, kw).reshape(mb * h * wd, -1)
    flipped = w[::-1, ::-1].transpose(0, 1, 3, 2).reshape(-1, c)  # [kh, kw, ychn, xchn]
    return (cols @ flipped).reshape(xshape)


class ConvTranspose2D(Layer):
    """Transposed convolution ("deconvolution", seed 004) on NHWC inputs: the map from a small
    image to a larger one whose matrix is the transpose of a convolution's.

    Seed 004's picture: insert ``stride - 1`` zeros between input pixels, pad the result with
    ``k - 1 - padding`` zeros on every side (plus ``output_padding`` at the bottom/right), then
    convolve at stride 1 with the kernel flipped (``zero_insert_pad`` and ``flipped_kernel``
    build exactly that). Computed here the equivalent, cheaper way: every input pixel scatters
    ``x * kernel`` into a k x k patch of the output, patches ``stride`` apart (one GEMM and
    kh*kw strided adds); ``padding`` then crops that many rows/columns from each border.
    Output size ``(N - 1)*S - 2P + K + output_padding`` (``arithmetic.conv_transpose_output_size``).

    Kernels are ``[kh, kw, xchn, ychn]`` as in ``Conv2D``: ``w[a, b, c, o]`` carries input channel
    ``c`` to output channel ``o`` (PyTorch stores ``[xchn, ychn, kh, kw]``). It is the adjoint of
    ``Conv2D(ychn, xchn, k, stride, padding)`` with the same kernel, not its inverse: shapes go
    back, values do not (``cnnlab scratch deconv --show``).
    """

    kind = "deconv"

    def __init__(
        self,
        in_chn,
        chn,
        ksize,
        stride=1,
        padding=0,
        output_padding=0,
        bias=True,
        *,
        dtype=np.float32,
        rng=None,
        name=None,
    ):
        super().__init__(name)
        self.in_chn, self.chn = int(in_chn), int(chn)
        self.ksize, self.stride = _pair(ksize, "ksize"), _pair(stride, "stride")
        self.padding = _pair(padding, "padding", 0)
        self.output_padding = _pair(output_padding, "output_padding", 0)
        for op, s in zip(self.output_padding, self.stride):
            if op >= s:
                raise ConfigError(
                    f"output_padding {self.output_padding} must be smaller than the stride "
                    f"{self.stride}",
                    "it only picks among the output sizes a strided convolution maps back from",
                )
        self.bias = bool(bias)
        kh, kw = self.ksize
        taps = kh * kw * self.in_chn / (self.stride[0] * self.stride[1])  # taps per output
        _init_kernel(self, rng, taps, dtype)

    def describe(self):
        return _describe_kernel(self, "ConvTranspose2D")

    def spec(self):
        return [
            "deconv",
            {
                "ksize": list(self.ksize),
                "chn": self.chn,
                "stride": list(self.stride),
                "padding": list(self.padding),
                "output_padding": list(self.output_padding),
                "bias": self.bias,
                "actfunc": "none",
            },
        ]

    def output_shape(self, shape):
        if len(shape) != 3 or shape[2] != self.in_chn:
            self._fail(f"[mb, h, w, {self.in_chn}]", ("mb", *shape))
        h, w = conv_transpose_output_size(
            tuple(shape[:2]), self.ksize, self.stride, self.padding, self.output_padding
        )
        return (h, w, self.chn)

    def _full(self, hw):
        """Size of the uncropped output: (N - 1)*S + K + output_padding per axis."""
        return tuple(
            (n - 1) * s + k + op
            for n, s, k, op in zip(hw, self.stride, self.ksize, self.output_padding)
        )

    def forward(self, x, train=False):
        x = _image(self, x, self.in_chn)
        oh, ow, _ = self.output_shape(x.shape[1:])
        w = self.params["w"]
        x = x.astype(w.dtype, copy=False)
        mb, h, wd, c = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.ksize, self.stride, self.padding
        x2 = x.reshape(-1, c)
        # d[a, b] = x @ w[a, b]: what each input pixel sends to offset (a, b) of its patch
        d = (x2 @ w.transpose(2, 0, 1, 3).reshape(c, -1)).reshape(mb, h, wd, kh, kw, self.chn)
        z = np.zeros((mb, *self._full((h, wd)), self.chn), w.dtype)
        for a in range(kh):
            for b in range(kw):
                z[:, a : a + sh * (h - 1) + 1 : sh, b : b + sw * (wd - 1) + 1 : sw] += d[
                    :, :, :, a, b
                ]
        y = z[:, ph : ph + oh, pw : pw + ow]
        if self.bias:
            y = y + self.params["b"]
        self._cache = (x.shape, x2)
        return y

    def backward(self, dy):
        xshape, x2 = self._cache
        w = self.params["w"]
        mb, h, wd, c = xshape
        (kh, kw), (sh, sw), (ph, pw) = self.ksize, self.stride, self.padding
        dy = dy.astype(w.dtype, copy=False)
        dz = np.zeros((mb, *self._full((h, wd)), self.chn), w.dtype)  # undo the crop
        dz[:, ph : ph + dy.shape[1], pw : pw + dy.shape[2]] = dy
        # each input pixel's patch of dz, [mb, h, w, kh, kw, ychn]: a strided convolution of dy
        dcols = windows(dz, kh, kw, sh, sw).reshape(mb * h * wd, -1)
        self.grads["w"] = (x2.T @ dcols).reshape(c, kh, kw, self.chn).transpose(1, 2, 0, 3)
        if self.bias:
            self.grads["b"] = dy.sum((0, 1, 2))
        return (dcols @ w.transpose(0, 1, 3, 2).reshape(-1, c)).reshape(xshape)

    def zero_insert_pad(self, x):
        """Seed 004's padded input: ``stride - 1`` zeros between pixels, ``k - 1 - padding``
        zeros around (``output_padding`` more at the bottom/right). Convolving it at stride 1
        with ``flipped_kernel()`` gives ``forward(x)`` (without bias). Needs padding < k."""
        x = _image(self, x, self.in_chn)
        mb, h, wd, c = x.shape
        (kh, kw), (sh, sw) = self.ksize, self.stride
        (ph, pw), (oph, opw) = self.padding, self.output_padding
        if ph > kh - 1 or pw > kw - 1:
            raise ConfigError(
                f"padding {self.padding} > kernel - 1: the picture would pad negatively",
                "use forward(), which crops instead",
            )
        th, tw = kh - 1 - ph, kw - 1 - pw
        z = np.zeros((mb, (h - 1) * sh + 1 + 2 * th + oph, (wd - 1) * sw + 1 + 2 * tw + opw, c))
        z = z.astype(x.dtype)
        z[:, th : th + (h - 1) * sh + 1 : sh, tw : tw + (wd - 1) * sw + 1 : sw] = x
        return z

    def flipped_kernel(self):
        """The kernel rotated 180 degrees, as a ``Conv2D`` kernel ``[kh, kw, xchn, ychn]``."""
        return self.params["w"][::-1, ::-1].copy()


class Conv2DNaive(Conv2D):
    """The same convolution as plain loops, one output value at a time: the seed's picture.

    Each output ``y[n, i, j, o]`` is the sum of input window x kernel ``k[:, :, :, o]``. It
    computes the stride-1 output and then keeps every ``stride``-th pixel ("stride as a
    post-processing skip", seed 003); backward first zero-fills the skipped positions, then
    applies the two rules to every output value. For reading and as the tests' reference.
    """

    def describe(self):
        return super().describe().replace("Conv2D", "Conv2DNaive")

    def forward(self, x, train=False):
        x, xp = self._setup(x)
        (kh, kw), (sh, sw) = self.ksize, self.stride
        k = self.params["w"]
        mb, hp, wp, _ = xp.shape
        y = np.zeros((mb, hp - kh + 1, wp - kw + 1, self.chn), k.dtype)
        for n in range(mb):
            for i in range(y.shape[1]):
                for j in range(y.shape[2]):
                    window = xp[n, i : i + kh, j : j + kw]
                    for o in range(self.chn):  # sum of input x kernel = output
                        y[n, i, j, o] = np.sum(window * k[:, :, :, o])
        if self.bias:
            y += self.params["b"]
        self._cache = (x.shape, xp, y.shape)
        return y[:, ::sh, ::sw]  # stride: skip

    def backward(self, dy):
        xshape, xp, full = self._cache
        (kh, kw), (sh, sw) = self.ksize, self.stride
        (pt, _), (pl, _) = self.pads(xshape[1:3])
        dfull = np.zeros(full, xp.dtype)
        dfull[:, ::sh, ::sw] = dy  # undo the skip: skipped outputs get zero gradient
        k = self.params["w"]
        dk, dxp = np.zeros_like(k), np.zeros_like(xp)
        for n in range(full[0]):
            for i in range(full[1]):
                for j in range(full[2]):
                    for o in range(self.chn):
                        g = dfull[n, i, j, o]
                        dk[:, :, :, o] += g * xp[n, i : i + kh, j : j + kw]  # dy x input
                        dxp[n, i : i + kh, j : j + kw] += g * k[:, :, :, o]  # dy x kernel
        self.grads["w"] = dk
        if self.bias:
            self.grads["b"] = dfull.sum((0, 1, 2))
        return dxp[:, pt : pt + xshape[1], pl : pl + xshape[2]] if self.need_dx else None


# --------------------------------------------------------------------------- pooling


class _Pool2D(Layer):
    """What max and average pooling share: window, stride, padding, ceil_mode (PyTorch's)."""

    def __init__(self, ksize=2, stride=None, padding=0, ceil_mode=False, name=None):
        super().__init__(name)
        self.ksize = _pair(ksize, "ksize")
        self.stride = _pair(stride if stride is not None else ksize, "stride")
        self.padding, self.ceil_mode = _pair(padding, "padding", 0), bool(ceil_mode)
        if any(2 * p > k for p, k in zip(self.padding, self.ksize)):
            raise ConfigError(
                f"{self.name}: padding {self.padding} is more than half the window {self.ksize}",
                "PyTorch's rule: pad at most ksize // 2, so every window sees a real pixel",
            )
        self._geo = {}  # input (h, w) -> (out size, pads, border counts): depends on shape only

    def describe(self):
        (kh, kw), (sh, sw) = self.ksize, self.stride
        return f"{type(self).__name__} {kh}x{kw}, stride {sh}" + ("" if sh == sw else f"x{sw}")

    def spec(self):
        return [
            self.kind,
            {
                "ksize": list(self.ksize),
                "stride": list(self.stride),
                "padding": list(self.padding),
                "ceil_mode": self.ceil_mode,
            },
        ]

    def geometry(self, hw):
        """Output size and (top, bottom), (left, right) pads; bottom/right include ceil overhang."""
        if hw in self._geo:
            return self._geo[hw]
        out, pads = [], []
        for n, k, s, p in zip(hw, self.ksize, self.stride, self.padding):
            if n + 2 * p < k:
                raise ShapeError(
                    f"{self.name} ({self.describe()}): input {hw[0]}x{hw[1]} (padded "
                    f"{self.padding}) is smaller than the window",
                    "remove a pooling layer or use a smaller window",
                )
            o = (n + 2 * p - k + (s - 1 if self.ceil_mode else 0)) // s + 1
            if self.ceil_mode and (o - 1) * s >= n + p:  # last window must start inside
                o -= 1
            out.append(o)
            pads.append((p, max((o - 1) * s + k - n - p, 0)))
        self._geo[hw] = (tuple(out), tuple(pads), self._counts(hw, out, pads))
        return self._geo[hw]

    def _counts(self, hw, out, pads):
        return None

    def output_shape(self, shape):
        if len(shape) != 3:
            self._fail("[mb, h, w, c]", ("mb", *shape))
        return (*self.geometry(tuple(shape[:2]))[0], shape[2])

    def _slices(self, xp, out):
        """One strided view per window offset (a, b): loops run over kh*kw offsets, not pixels."""
        (kh, kw), (sh, sw), (yh, yw) = self.ksize, self.stride, out
        for a in range(kh):
            for b in range(kw):
                yield (
                    slice(None),
                    slice(a, a + sh * (yh - 1) + 1, sh),
                    slice(b, b + sw * (yw - 1) + 1, sw),
                )

    def _pad(self, x, pads, fill):
        (pt, pb), (pl, pr) = pads
        if pt + pb + pl + pr == 0:
            return x
        return np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)

    def _scatter(self, parts, xshape, pads):
        """Sum per-offset gradients back into the (padded) input, then crop the padding."""
        (pt, pb), (pl, pr) = pads
        mb, h, w, c = xshape
        shape, (yh, yw) = (mb, h + pt + pb, w + pl + pr, c), parts[0][1].shape[1:3]
        (kh, kw), dtype = self.ksize, parts[0][1].dtype
        if self.ksize == self.stride and shape[1:3] == (h, w) == (yh * kh, yw * kw):
            dx = np.empty(shape, dtype)  # windows tile the input: each pixel is written once
            for idx, g in parts:
                dx[idx] = g
            return dx
        dxp = np.zeros(shape, dtype)
        for idx, g in parts:
            dxp[idx] += g  # overlapping windows add up (seed 003)
        return dxp[:, pt : pt + h, pl : pl + w]


class MaxPool2D(_Pool2D):
    """Max pooling; padding is -inf as in PyTorch. Ties (seed 003's three choices) in backward:

    * ``"first"``: the whole gradient to the first maximum in row-major window order
      (PyTorch's ``max_pool2d`` picks the same one);
    * ``"all"``: every tied maximum gets the full gradient;
    * ``"split"``: tied maxima share it equally (as ``torch.amax`` does).
    """

    kind = "max"
    TIES = ("first", "all", "split")

    def __init__(self, ksize=2, stride=None, padding=0, ceil_mode=False, ties="first", name=None):
        super().__init__(ksize, stride, padding, ceil_mode, name)
        if ties not in self.TIES:
            raise ConfigError(f"{self.name}: ties must be one of {self.TIES}, got {ties!r}")
        self.ties = ties

    def spec(self):
        kind, opts = super().spec()
        return [kind, {**opts, "ties": self.ties}]

    def forward(self, x, train=False):
        x = _image(self, x)
        out, pads, _ = self.geometry(x.shape[1:3])
        xp = self._pad(x, pads, -np.inf)
        parts = [xp[i] for i in self._slices(xp, out)]
        y = parts[0].copy()
        for p in parts[1:]:
            np.maximum(y, p, out=y)
        self._cache = (x.shape, xp, y)
        return y

    def backward(self, dy):
        xshape, xp, y = self._cache
        out, pads, _ = self.geometry(xshape[1:3])
        idx = list(self._slices(xp, out))
        hits = [xp[i] == y for i in idx]  # where each offset holds its window's maximum
        if self.ties == "first":
            taken = np.zeros(y.shape, bool)
            for m in hits:
                m &= ~taken
                taken |= m
        elif self.ties == "split":
            dy = dy / sum(m.astype(dy.dtype) for m in hits)
        return self._scatter([(i, dy * m) for i, m in zip(idx, hits)], xshape, pads)


class AvgPool2D(_Pool2D):
    """Average pooling. By default each window divides by its number of real pixels (seed 003's
    border rule; PyTorch ``count_include_pad=False``); ``count_include_pad=True`` also counts zero
    padding (PyTorch's default). The counts depend only on shapes, so they are computed once per
    input size and cached.
    """

    kind = "avg"

    def __init__(
        self, ksize=2, stride=None, padding=0, ceil_mode=False, count_include_pad=False, name=None
    ):
        super().__init__(ksize, stride, padding, ceil_mode, name)
        self.count_include_pad = bool(count_include_pad)

    def spec(self):
        kind, opts = super().spec()
        return [kind, {**opts, "count_include_pad": self.count_include_pad}]

    def _counts(self, hw, out, pads):
        (pt, pb), (pl, pr) = pads
        real = np.zeros((1, hw[0] + pt + pb, hw[1] + pl + pr, 1))
        if self.count_include_pad:  # padding counts, the ceil_mode overhang never does
            p, q = self.padding
            real[:, : hw[0] + 2 * p, : hw[1] + 2 * q] = 1
        else:
            real[:, pt : pt + hw[0], pl : pl + hw[1]] = 1
        return sum(real[i] for i in self._slices(real, out))[0, :, :, 0]  # [yh, yw]

    def forward(self, x, train=False):
        x = _image(self, x)
        out, pads, counts = self.geometry(x.shape[1:3])
        xp = self._pad(x, pads, 0)
        y = sum(xp[i] for i in self._slices(xp, out))
        y = y / counts[:, :, None].astype(y.dtype)
        self._cache = x.shape
        return y

    def backward(self, dy):
        xshape = self._cache
        out, pads, counts = self.geometry(xshape[1:3])
        g = dy / counts[:, :, None].astype(dy.dtype)  # each input gets 1/N of each window's dy
        (pt, pb), (pl, pr) = pads
        shape = (1, xshape[1] + pt + pb, xshape[2] + pl + pr, 1)
        return self._scatter([(i, g) for i in self._slices(np.empty(shape), out)], xshape, pads)


# --------------------------------------------------------------------------- dense and shape


class Dense(Layer):
    """Fully connected layer ``y = x @ w + b``; inputs of any rank are flattened per sample."""

    kind = "full"

    def __init__(self, in_width, width, bias=True, *, dtype=np.float32, rng=None, name=None):
        super().__init__(name)
        self.in_width, self.width, self.bias = int(in_width), int(width), bool(bias)
        rng = rng if rng is not None else np.random.default_rng()
        w = rng.standard_normal((in_width, width)) * math.sqrt(2 / in_width)
        self.params["w"] = w.astype(dtype)
        if self.bias:
            self.params["b"] = np.zeros(width, dtype)

    def describe(self):
        return f"Dense {self.in_width}->{self.width}"

    def spec(self):
        return ["full", {"width": self.width, "bias": self.bias, "actfunc": "none"}]

    def output_shape(self, shape):
        if math.prod(shape) != self.in_width:
            self._fail(
                f"[mb, {self.in_width}] (or any shape of {self.in_width} per sample)",
                ("mb", *shape),
            )
        return (self.width,)

    def forward(self, x, train=False):
        x = np.asarray(x)
        if x.ndim < 2 or math.prod(x.shape[1:]) != self.in_width:
            self._fail(
                f"[mb, {self.in_width}] (or any shape of {self.in_width} per sample)", x.shape
            )
        w = self.params["w"]
        x2 = x.reshape(len(x), -1).astype(w.dtype, copy=False)
        self._cache = (x.shape, x2)
        y = x2 @ w
        return y + self.params["b"] if self.bias else y

    def backward(self, dy):
        shape, x2 = self._cache
        self.grads["w"] = x2.T @ dy
        if self.bias:
            self.grads["b"] = dy.sum(0)
        return (dy @ self.params["w"].T).reshape(shape)


class Flatten(Layer):
    """``[mb, h, w, c] -> [mb, h*w*c]`` (NHWC order: channels vary fastest)."""

    kind = "flatten"

    def output_shape(self, shape):
        return (math.prod(shape),)

    def forward(self, x, train=False):
        self._shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dy):
        return dy.reshape(self._shape)


# --------------------------------------------------------------------------- activations


class ReLU(Layer):
    kind = "relu"

    def forward(self, x, train=False):
        self._mask = x > 0
        return x * self._mask

    def backward(self, dy):
        return dy * self._mask


class Sigmoid(Layer):
    kind = "sigmoid"

    def forward(self, x, train=False):
        self._y = 0.5 * (1 + np.tanh(0.5 * x))  # stable for large |x|
        return self._y

    def backward(self, dy):
        return dy * self._y * (1 - self._y)


class Tanh(Layer):
    kind = "tanh"

    def forward(self, x, train=False):
        self._y = np.tanh(x)
        return self._y

    def backward(self, dy):
        return dy * (1 - self._y * self._y)


class Dropout(Layer):
    """Inverted dropout: in training keep each unit with probability ``1 - rate`` and scale by
    ``1 / (1 - rate)``, so evaluation is the identity."""

    kind = "dropout"

    def __init__(self, rate=0.5, *, rng=None, name=None):
        super().__init__(name)
        if not 0 <= rate < 1:
            raise ConfigError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate, self.rng = float(rate), rng if rng is not None else np.random.default_rng()

    def describe(self):
        return f"Dropout {self.rate:g}"

    def spec(self):
        return ["dropout", {"rate": self.rate}]

    def forward(self, x, train=False):
        if not train or self.rate == 0:
            self._mask = None
            return x
        keep = self.rng.random(x.shape, dtype=np.float64 if x.dtype == np.float64 else np.float32)
        self._mask = (keep >= self.rate).astype(x.dtype) / x.dtype.type(1 - self.rate)
        return x * self._mask

    def backward(self, dy):
        return dy if self._mask is None else dy * self._mask


class BatchNorm(Layer):
    """Batch normalisation over every axis but the last: per channel for NHWC conv outputs, per
    feature for dense outputs. Training uses batch statistics and updates running averages
    (PyTorch's convention: ``running = (1 - momentum) * running + momentum * batch``, unbiased
    running variance); evaluation uses the running averages.
    """

    kind = "batch_normal"

    def __init__(self, chn, momentum=0.1, eps=1e-5, *, dtype=np.float32, name=None):
        super().__init__(name)
        self.chn, self.momentum, self.eps = int(chn), float(momentum), float(eps)
        self.params = {"gamma": np.ones(chn, dtype), "beta": np.zeros(chn, dtype)}
        self.buffers = {"mean": np.zeros(chn, dtype), "var": np.ones(chn, dtype)}

    def describe(self):
        return f"BatchNorm {self.chn}"

    def spec(self):
        return ["batch_normal", {"momentum": self.momentum, "eps": self.eps}]

    def output_shape(self, shape):
        if shape[-1] != self.chn:
            self._fail(f"[mb, ..., {self.chn}]", ("mb", *shape))
        return tuple(shape)

    def forward(self, x, train=False):
        if x.ndim < 2 or x.shape[-1] != self.chn:
            self._fail(f"[mb, ..., {self.chn}]", x.shape)
        g, b = self.params["gamma"], self.params["beta"]
        axes = tuple(range(x.ndim - 1))
        if train:
            mu, var = x.mean(axes), x.var(axes)
            n = x.size // self.chn
            m = self.momentum
            self.buffers["mean"] = ((1 - m) * self.buffers["mean"] + m * mu).astype(g.dtype)
            unbiased = var * n / max(n - 1, 1)
            self.buffers["var"] = ((1 - m) * self.buffers["var"] + m * unbiased).astype(g.dtype)
        else:
            mu, var = self.buffers["mean"], self.buffers["var"]
        inv = 1 / np.sqrt(var + self.eps)
        xhat = (x - mu) * inv
        self._cache = (xhat, inv, axes, train)
        return (xhat * g + b).astype(g.dtype, copy=False)

    def backward(self, dy):
        xhat, inv, axes, train = self._cache
        g = self.params["gamma"]
        self.grads = {"gamma": (dy * xhat).sum(axes), "beta": dy.sum(axes)}
        dxhat = dy * g
        if not train:  # fixed running statistics: a per-channel affine map
            return dxhat * inv
        # d/dx of (x - mean) / std with mean and std from the same batch
        return inv * (dxhat - dxhat.mean(axes) - xhat * (dxhat * xhat).mean(axes))


def _labels(what, logits, labels, soft=False):
    """Check ``logits [mb, classes]`` against ``mb`` class ids (or, if ``soft``, probability
    rows ``[mb, classes]``); return the labels as an array."""
    labels = np.asarray(labels)
    if logits.ndim != 2 or len(labels) != len(logits) or (labels.ndim != 1 and not soft):
        raise ShapeError(
            f"{what} takes logits [mb, classes] and mb labels, "
            f"got {_fmt(logits.shape)} and {_fmt(labels.shape)}"
        )
    if labels.ndim == 1 and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ShapeError(
            f"labels must lie in [0, {logits.shape[1]}), got {labels.min()}..{labels.max()}",
            "the output layer needs one unit per class",
        )
    return labels


class SoftmaxCrossEntropy:
    """Softmax + cross-entropy averaged over the batch, computed from log-sum-exp (stable).

    ``forward(logits, labels) -> loss``; ``backward() -> dlogits = (softmax - onehot) / mb``.
    ``labels``: integer class ids ``[mb]`` or one-hot/probability rows ``[mb, classes]``.
    """

    def forward(self, logits, labels):
        z = logits - logits.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        labels = _labels("softmax cross-entropy", logits, labels, soft=True)
        if labels.ndim == 1:
            target = np.zeros_like(logp)
            target[np.arange(len(labels)), labels] = 1
        else:
            target = labels.astype(logp.dtype)
        self._cache = (np.exp(logp), target)
        return float(-(target * logp).sum() / len(logp))

    def backward(self):
        p, target = self._cache
        return (p - target) / len(p)


class MulticlassHinge:
    """Seed 001's multiclass SVM loss, margin 1, averaged over the batch::

        L = 1/N sum_i sum_{j != y_i} max(0, s_j - s_{y_i} + 1)

    ``forward(scores, labels) -> loss``; ``backward() -> dscores``: each violated margin adds
    ``+1/N`` to its class and ``-1/N`` to the true class (subgradient 0 at the kink).
    ``torch.nn.MultiMarginLoss`` is the same sum divided by the number of classes.
    """

    margin = 1.0

    def forward(self, logits, labels):
        labels = _labels("multiclass hinge", logits, labels)
        mb = len(logits)
        true = logits[np.arange(mb), labels][:, None]
        margins = np.maximum(0, logits - true + self.margin)
        margins[np.arange(mb), labels] = 0  # j != y_i
        self._cache = (margins > 0, labels, margins.dtype)
        return float(margins.sum() / mb)

    def backward(self):
        violated, labels, dtype = self._cache
        g = violated.astype(dtype)
        g[np.arange(len(g)), labels] = -violated.sum(1)
        return g / len(g)


LOSSES = {"cross-entropy": SoftmaxCrossEntropy, "hinge": MulticlassHinge}
