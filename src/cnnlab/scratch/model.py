"""Models from layer specs in the book's style, training, evaluation, save/load (.npz).

A spec is a list of ``[kind, options]`` pairs, as in the book behind seed 003::

    [["conv", {"ksize": 5, "chn": 6}], ["max", {"stride": 2}],
     ["conv", {"ksize": 5, "chn": 16, "padding": "valid"}], ["max", {"stride": 2}],
     ["full", {"width": 120}], ["full", {"width": 84}]]

Kinds and their options (defaults in brackets):

* ``conv``: ``ksize``, ``chn``, ``stride`` [1], ``padding`` ["same"], ``actfunc`` ["relu"], ``bias``
* ``deconv`` (transposed convolution): ``ksize``, ``chn``, ``stride`` [1], ``padding`` [0],
  ``output_padding`` [0], ``actfunc`` ["relu"], ``bias``
* ``max`` / ``avg``: ``stride`` (window = stride unless ``ksize`` is given), ``ksize``,
  ``padding`` [0], ``ceil_mode`` [false]; ``ties`` ["first"] for max, ``count_include_pad`` [false]
  for avg
* ``full``: ``width``, ``actfunc`` ["relu"], ``bias``
* ``dropout``: ``keep_prob`` (the book's) or ``rate``; ``batch_normal``: ``momentum``, ``eps``
* ``relu``, ``sigmoid``, ``tanh``, ``flatten``

As in the book, ``conv`` and ``full`` include their activation, and ``build(..., num_classes=n)``
appends the output layer (``full`` to ``n`` with no activation; softmax lives in the loss).
"""

from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from cnnlab._util import atomic_write
from cnnlab.errors import ConfigError, DataError, suggest
from cnnlab.scratch import layers as L

LENET5 = [
    ["conv", {"ksize": 5, "chn": 6}],  # 28x28 'same' = LeCun's 32x32 input with 'valid'
    ["max", {"stride": 2}],
    ["conv", {"ksize": 5, "chn": 16, "padding": "valid"}],
    ["max", {"stride": 2}],
    ["full", {"width": 120}],
    ["full", {"width": 84}],
]
SPECS = {"lenet5": LENET5}
ACTIVATIONS = {"relu": L.ReLU, "sigmoid": L.Sigmoid, "tanh": L.Tanh, "none": None}
KINDS = (
    "conv",
    "deconv",
    "max",
    "avg",
    "full",
    "dropout",
    "batch_normal",
    "relu",
    "sigmoid",
    "tanh",
    "flatten",
)
ALIASES = {"fc": "full", "dense": "full", "maxpool": "max", "avgpool": "avg", "bn": "batch_normal"}


def _options(kind, opts, allowed):
    unknown = set(opts) - set(allowed)
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(
            f"layer '{kind}' has no option {key!r}; its options: {', '.join(allowed)}",
            suggest(key, allowed) or None,
        )


def _whole(v, low=1):
    """An int (not a bool, which JSON's true would be) of at least ``low``."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= low


def _number(v):
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and math.isfinite(v)


def _check_values(name, opts):
    """Refuse option values the layers would turn into a NumPy traceback (a negative 'chn' is a
    "negative dimensions" ValueError, 0 a ZeroDivisionError downstream) or silently misread
    (``int(2.5)``, ``bool("no")``)."""
    for key, v in opts.items():
        if key in ("chn", "width") and not _whole(v):
            raise ConfigError(
                f"{name}: '{key}' must be a whole number >= 1, got {v!r}",
                f"e.g. {{'{key}': 16}}",
            )
        if key in ("bias", "ceil_mode", "count_include_pad") and not isinstance(v, bool):
            raise ConfigError(
                f"{name}: '{key}' must be true or false, got {v!r}",
                "JSON true/false (YAML also yes/no), without quotes",
            )
        if key == "rate" and not (_number(v) and 0 <= v < 1):
            raise ConfigError(
                f"{name}: dropout 'rate' must be a number in [0, 1), got {v!r}",
                "the fraction of units dropped in training, e.g. 0.5",
            )
        if key == "keep_prob" and not (_number(v) and 0 < v <= 1):
            raise ConfigError(
                f"{name}: dropout 'keep_prob' must be a number in (0, 1], got {v!r}",
                "the fraction of units kept in training, e.g. 0.5",
            )
        if key == "momentum" and not (_number(v) and 0 <= v <= 1):
            raise ConfigError(
                f"{name}: batch-norm 'momentum' must be a number in [0, 1], got {v!r}",
                "running = (1 - momentum) * running + momentum * batch; e.g. 0.1",
            )
        if key == "eps" and not (_number(v) and v > 0):
            raise ConfigError(
                f"{name}: batch-norm 'eps' must be a number > 0, got {v!r}",
                "it keeps 1 / sqrt(var + eps) finite; e.g. 1e-5",
            )


def build_layers(kind, opts, shape, *, counts, rng, dtype):
    """Layers for one spec entry at per-sample input ``shape`` (activation layers included)."""
    kind = ALIASES.get(kind, kind)
    opts = dict(opts or {})
    counts[kind] = counts.get(kind, 0) + 1
    name = f"{kind}{counts[kind]}"
    if kind not in KINDS:
        raise ConfigError(
            f"unknown layer kind {kind!r}; kinds: {', '.join(KINDS)}", suggest(kind, KINDS) or None
        )
    try:
        return _build_layers(kind, name, opts, shape, counts=counts, rng=rng, dtype=dtype)
    except ConfigError as e:
        if e.message.startswith(f"{name}:") or e.message.startswith(f"{name} ("):
            raise
        # the layers' own checks ("ksize must be an int >= 1 ...") do not know the layer's name
        raise ConfigError(
            f"{name}: {e.message}",
            e.hint
            or "the layer options are listed in 'cnnlab scratch train --help'; "
            "e.g. ['conv', {'ksize': 3, 'chn': 8, 'stride': 1}]",
        ) from e


def _build_layers(kind, name, opts, shape, *, counts, rng, dtype):
    act = "none"
    _check_values(name, opts)
    if kind == "conv":
        _options(kind, opts, ("ksize", "chn", "stride", "padding", "actfunc", "bias"))
        if "ksize" not in opts or "chn" not in opts:
            raise ConfigError(f"{name}: 'conv' needs 'ksize' and 'chn', got {opts}")
        if len(shape) != 3:
            raise ConfigError(
                f"{name}: 'conv' needs an image input [h, w, c], got {list(shape)}",
                "put conv and pooling layers before the 'full' layers",
            )
        act = opts.get("actfunc", "relu")
        padding = opts.get("padding", "same")
        layer = L.Conv2D(
            shape[2],
            opts["chn"],
            opts["ksize"],
            opts.get("stride", 1),
            padding if isinstance(padding, str) else _tuples(padding),
            opts.get("bias", True),
            dtype=dtype,
            rng=rng,
            name=name,
        )
    elif kind == "deconv":
        opts_ok = ("ksize", "chn", "stride", "padding", "output_padding", "actfunc", "bias")
        _options(kind, opts, opts_ok)
        if "ksize" not in opts or "chn" not in opts or len(shape) != 3:
            raise ConfigError(
                f"{name}: 'deconv' needs 'ksize' and 'chn' and an image input [h, w, c], "
                f"got {opts} on {list(shape)}"
            )
        act = opts.get("actfunc", "relu")
        layer = L.ConvTranspose2D(
            shape[2],
            opts["chn"],
            _tuples(opts["ksize"]),
            _tuples(opts.get("stride", 1)),
            _tuples(opts.get("padding", 0)),
            _tuples(opts.get("output_padding", 0)),
            opts.get("bias", True),
            dtype=dtype,
            rng=rng,
            name=name,
        )
    elif kind in ("max", "avg"):
        extra = ("ties",) if kind == "max" else ("count_include_pad",)
        _options(kind, opts, ("ksize", "stride", "padding", "ceil_mode", *extra))
        if "ksize" not in opts and "stride" not in opts:
            raise ConfigError(f"{name}: '{kind}' needs 'stride' (and/or 'ksize'), got {opts}")
        k = _tuples(opts.pop("ksize", opts.get("stride")))
        cls = L.MaxPool2D if kind == "max" else L.AvgPool2D
        opts = {k2: _tuples(v) for k2, v in opts.items()}
        layer = cls(k, **opts, name=name)
    elif kind == "full":
        _options(kind, opts, ("width", "actfunc", "bias"))
        if "width" not in opts:
            raise ConfigError(f"{name}: 'full' needs 'width', got {opts}")
        act = opts.get("actfunc", "relu")
        layer = L.Dense(
            math.prod(shape), opts["width"], opts.get("bias", True), dtype=dtype, rng=rng, name=name
        )
    elif kind == "dropout":
        _options(kind, opts, ("rate", "keep_prob"))
        rate = opts.get("rate", 1 - opts["keep_prob"] if "keep_prob" in opts else 0.5)
        layer = L.Dropout(rate, rng=rng, name=name)
    elif kind == "batch_normal":
        _options(kind, opts, ("momentum", "eps"))
        layer = L.BatchNorm(shape[-1], dtype=dtype, name=name, **opts)
    elif kind in ("relu", "sigmoid", "tanh", "flatten"):
        _options(kind, opts, ())
        layer = (L.Flatten if kind == "flatten" else ACTIVATIONS[kind])(name=name)
    else:  # build_layers has refused unknown kinds
        raise AssertionError(kind)
    if act not in ACTIVATIONS:
        raise ConfigError(f"{name}: unknown actfunc {act!r}; choose from {', '.join(ACTIVATIONS)}")
    out = [layer]
    if ACTIVATIONS.get(act):
        counts[act] = counts.get(act, 0) + 1
        out.append(ACTIVATIONS[act](name=f"{act}{counts[act]}"))
    return out


def _tuples(v):
    """JSON/YAML lists back to the tuples the layers take (``[[1, 2], [0, 1]]`` -> nested)."""
    return tuple(_tuples(i) for i in v) if isinstance(v, list) else v


def loss_fn(name):
    """A loss by name: ``cross-entropy`` (softmax) or ``hinge`` (seed 001's multiclass SVM)."""
    if name not in L.LOSSES:
        raise ConfigError(
            f"unknown loss {name!r}; choose from {', '.join(L.LOSSES)}",
            suggest(name, L.LOSSES) or None,
        )
    return L.LOSSES[name]()


class Model:
    """A stack of layers with a loss: softmax cross-entropy (default) or multiclass hinge."""

    def __init__(self, layers, input_shape, loss="cross-entropy"):
        self.layers, self.input_shape = list(layers), tuple(int(s) for s in input_shape)
        self.loss, self.loss_name = loss_fn(loss), loss
        self.meta = {}  # saved alongside: normalisation, class names, history
        shape, self.shapes = self.input_shape, []
        for layer in self.layers:
            shape = layer.output_shape(shape)
            self.shapes.append(shape)
        for layer in self.layers:  # nothing upstream of the first trainable layer needs dx
            if isinstance(layer, L.Conv2D):
                layer.need_dx = False
            if layer.params:
                break

    @property
    def spec(self):
        return [layer.spec() for layer in self.layers]

    @property
    def num_params(self):
        return sum(p.size for layer in self.layers for p in layer.params.values())

    @property
    def dtype(self):
        return next(p.dtype for layer in self.layers for p in layer.params.values())

    def astype(self, dtype):
        """Cast every parameter and buffer (float64 for gradient checks); returns self."""
        for layer in self.layers:
            for d in (layer.params, layer.buffers):
                for k, v in d.items():
                    d[k] = v.astype(dtype)
        return self

    def forward(self, x, train=False):
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
            if dy is None:
                break
        return dy

    def train_step(self, x, labels, optimizer):
        """One mini-batch: forward, loss, backward, update. Returns the data loss."""
        loss = self.loss.forward(self.forward(x, train=True), labels)
        self.backward(self.loss.backward())
        optimizer.step(self)
        return loss

    def predict(self, x, batch_size=1000):
        """Logits for ``x`` in evaluation mode, in batches."""
        return np.concatenate(
            [self.forward(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        )

    def evaluate(self, x, labels, batch_size=1000):
        """(mean loss, accuracy) in evaluation mode."""
        logits = self.predict(x, batch_size)
        loss = loss_fn(self.loss_name).forward(logits, labels)
        return loss, float((logits.argmax(1) == labels).mean())

    def summary_rows(self):
        """(name, description, output shape, params) per layer."""
        return [
            (layer.name, layer.describe(), ("mb", *s), sum(p.size for p in layer.params.values()))
            for layer, s in zip(self.layers, self.shapes)
        ]

    def save(self, path):
        """Write spec, parameters and buffers to ``path`` (.npz), atomically."""
        arrays = {
            "spec": np.array(json.dumps(self.spec)),
            "input_shape": np.array(self.input_shape),
            "meta": np.array(json.dumps(self.meta)),
            "loss": np.array(self.loss_name),
        }
        for i, layer in enumerate(self.layers):
            arrays.update({f"{i}/params/{k}": v for k, v in layer.params.items()})
            arrays.update({f"{i}/buffers/{k}": v for k, v in layer.buffers.items()})
        return atomic_write(path, lambda f: np.savez(f, **arrays))

    @classmethod
    def load(cls, path):
        """Rebuild a model saved by :meth:`save` (``np.load`` with ``allow_pickle=False``)."""
        if isinstance(path, (str, os.PathLike)) and not Path(path).is_file():
            raise DataError(
                f"scratch model {path} not found" + (" (it is a folder)" * Path(path).is_dir()),
                "give the .npz written by 'cnnlab scratch train --save'",
            )
        try:
            with np.load(path, allow_pickle=False) as f:
                data = {k: f[k] for k in f.files}
            if "spec" not in data or "input_shape" not in data:
                raise DataError(
                    f"{path} is an .npz but not a cnnlab scratch model (no 'spec' entry)",
                    "give a file written by 'cnnlab scratch train --save'",
                )
            spec, meta = json.loads(str(data["spec"])), json.loads(str(data.get("meta", "{}")))
            input_shape = tuple(int(s) for s in data["input_shape"])
        except DataError:
            raise
        # np.load's failures on a bad file are many and misleading (EOFError for an empty file,
        # BadZipFile for a truncated one, "allow_pickle" for text): one message for them all.
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
            raise _unreadable(path) from e
        model = build(
            spec,
            input_shape,
            dtype=np.float32,
            loss=str(data.get("loss", "cross-entropy")),
        )
        model.meta = meta
        for i, layer in enumerate(model.layers):
            for group in ("params", "buffers"):
                d = getattr(layer, group)
                for k in d:
                    a = data.get(f"{i}/{group}/{k}")
                    if a is None or a.shape != d[k].shape:
                        raise DataError(
                            f"{path}: {layer.name}.{k} is missing or has the wrong shape"
                        )
                    d[k] = a
        return model


def _unreadable(path):
    return DataError(
        f"{path} is not a readable scratch model "
        "(empty, truncated or not an .npz written by cnnlab scratch train)",
        "train and save it again with 'cnnlab scratch train ... --save FILE.npz'; "
        "a copy may have been cut short",
    )


def build(spec, input_shape, num_classes=None, *, dtype=np.float32, seed=0, loss="cross-entropy"):
    """A :class:`Model` from a spec (a name in ``SPECS`` or a list of ``[kind, options]``).

    ``input_shape`` is per sample, ``(h, w, c)`` for images; ``num_classes`` appends the output
    layer; ``loss`` is ``cross-entropy`` or ``hinge``.
    """
    loss_fn(loss)  # an unknown loss fails before any layer is built
    if isinstance(spec, str):
        if spec not in SPECS:
            raise ConfigError(
                f"unknown spec {spec!r}; built in: {', '.join(SPECS)}", suggest(spec, SPECS) or None
            )
        spec = SPECS[spec]
    if num_classes is not None and not _whole(num_classes, 2):
        # 0 used to drop the output layer silently and a negative count crashed in NumPy; one
        # class is no classifier (softmax over one unit is always 1, the hinge always 0)
        raise ConfigError(
            f"the number of classes must be a whole number >= 2, got {num_classes!r}",
            "one output unit per class, e.g. 10 for digits",
        )
    if not (len(input_shape) in (1, 3) and all(_whole(s) for s in input_shape)):
        raise ConfigError(
            f"the input shape must be (h, w, c) or (width,) of whole numbers >= 1, "
            f"got {tuple(input_shape)}",
            "e.g. (28, 28, 1) for MNIST",
        )
    spec = list(spec) + (
        [["full", {"width": num_classes, "actfunc": "none"}]] if num_classes else []
    )
    rng, counts, layers = np.random.default_rng(seed), {}, []
    shape = tuple(input_shape)
    for entry in spec:
        if isinstance(entry, str):
            entry = [entry, {}]
        if not (
            isinstance(entry, (list, tuple))
            and 1 <= len(entry) <= 2
            and isinstance(entry[0], str)
            and (len(entry) == 1 or isinstance(entry[1], dict))
        ):
            raise ConfigError(f"each spec entry is [kind, {{options}}], got {entry!r}")
        for layer in build_layers(
            entry[0],
            entry[1] if len(entry) == 2 else {},
            shape,
            counts=counts,
            rng=rng,
            dtype=dtype,
        ):
            shape = layer.output_shape(shape)
            layers.append(layer)
    return Model(layers, input_shape, loss)


def load_spec(source):
    """A spec from a built-in name or a JSON/YAML file: a list, or a mapping with ``layers``."""
    if source in SPECS:
        return SPECS[source]
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"{source!r} is neither a built-in spec ({', '.join(SPECS)}) nor a file")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            spec = yaml.safe_load(text)
        else:
            spec = json.loads(text)
    except Exception as e:  # json.JSONDecodeError, yaml.YAMLError
        raise ConfigError(f"cannot parse spec file {path}: {e}") from e
    if isinstance(spec, dict):
        spec = spec.get("layers")
    if not isinstance(spec, list):
        raise ConfigError(f"{path}: a spec is a list of [kind, options] (or {{'layers': [...]}})")
    return spec
