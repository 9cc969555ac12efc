"""Models from specs, save/load, training, the naive reference, shape errors, the data readers."""

import gzip
import json
import subprocess
import sys

import numpy as np
import pytest

from cnnlab.errors import ConfigError, DataError, ShapeError
from cnnlab.scratch import layers as L
from cnnlab.scratch.data import load_digits, load_mnist, read_idx
from cnnlab.scratch.model import LENET5, Model, build, load_spec
from cnnlab.scratch.optim import SGD, Adam, Penalty, make_optimizer
from cnnlab.scratch.train import fit, lr_at, normalize


def test_package_never_imports_torch():
    code = "import cnnlab.scratch, cnnlab.scratch.data, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "c,o,k,s,p",
    [(3, 4, 3, 1, "same"), (2, 3, 4, 2, "same"), (2, 2, (3, 2), (2, 1), "valid"), (1, 2, 5, 3, 2)],
)
@pytest.mark.parametrize("method", ["im2col", "banded"])
def test_fast_conv_equals_naive_loops(c, o, k, s, p, method, rng):
    fast = L.Conv2D(c, o, k, s, p, dtype=np.float64, rng=rng, method=method)
    naive = L.Conv2DNaive(c, o, k, s, p, dtype=np.float64, rng=rng)
    naive.params = fast.params
    x = rng.standard_normal((2, 9, 8, c))
    y = fast.forward(x, True)
    np.testing.assert_allclose(y, naive.forward(x, True), atol=1e-12)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(fast.backward(dy), naive.backward(dy), atol=1e-12)
    for key in ("w", "b"):
        np.testing.assert_allclose(fast.grads[key], naive.grads[key], atol=1e-12)


def _tied_maxpool_reference(x, k, s, ties):
    """Loops over windows, seed 003's three tie rules spelled out (no padding)."""
    mb, h, w, c = x.shape
    yh, yw = (h - k) // s + 1, (w - k) // s + 1
    dx = np.zeros_like(x)
    for n in range(mb):
        for i in range(yh):
            for j in range(yw):
                for ch in range(c):
                    win = x[n, i * s : i * s + k, j * s : j * s + k, ch]
                    rows, cols = np.nonzero(win == win.max())  # row-major order
                    if ties == "first":
                        rows, cols = rows[:1], cols[:1]
                    share = 1 / len(rows) if ties == "split" else 1.0
                    for r, q in zip(rows, cols):
                        dx[n, i * s + r, j * s + q, ch] += share  # dy = 1 everywhere
    return dx


@pytest.mark.parametrize("ties", ["first", "all", "split"])
@pytest.mark.parametrize("k,s,h", [(2, 2, 7), (2, 2, 8), (3, 2, 7), (3, 1, 7)])  # 8: exact tiling
def test_maxpool_tie_rules(ties, k, s, h, rng):
    x = rng.integers(0, 2, (2, h, h - 1, 2)).astype(np.float64)  # many tied maxima
    layer = L.MaxPool2D(k, s, ties=ties)
    y = layer.forward(x, True)
    dx = layer.backward(np.ones_like(y))
    np.testing.assert_allclose(dx, _tied_maxpool_reference(x, k, s, ties))
    if ties != "all":  # first and split pass on exactly the output gradient
        assert dx.sum() == pytest.approx(y.size)


def test_avgpool_border_counts_are_real_pixels_and_cached():
    layer = L.AvgPool2D(2, 2, ceil_mode=True)
    x = np.ones((1, 5, 5, 1))
    np.testing.assert_allclose(layer.forward(x), 1.0)  # partial windows divide by their size
    counts = layer.geometry((5, 5))[2]
    np.testing.assert_array_equal(counts, [[4, 4, 2], [4, 4, 2], [2, 2, 1]])
    assert layer.geometry((5, 5))[2] is counts  # computed once per input shape
    incl = L.AvgPool2D(3, 2, 1, count_include_pad=True)
    assert incl.geometry((5, 5))[2].min() == 9  # padding counted: always the full window
    assert L.AvgPool2D(3, 2, 1).geometry((5, 5))[2][0, 0] == 4  # corner: 2x2 real pixels


def test_lenet5_spec_shapes_and_params():
    model = build("lenet5", (28, 28, 1), 10)
    assert [s for s in model.shapes if len(s) == 3] == [(28, 28, 6)] * 2 + [(14, 14, 6)] + [
        (10, 10, 16)
    ] * 2 + [(5, 5, 16)]
    assert model.shapes[-1] == (10,)
    assert model.num_params == 156 + 2416 + 48120 + 10164 + 850  # = 61,706 (LeNet-5 with ReLU)
    assert model.layers[0].need_dx is False and model.layers[3].need_dx is True
    assert model.dtype == np.float32
    assert model.forward(np.zeros((2, 28, 28, 1), np.float32)).dtype == np.float32
    assert model.astype(np.float64).forward(np.zeros((1, 28, 28, 1))).dtype == np.float64


def test_book_style_spec_with_every_kind():
    spec = [
        ["conv", {"ksize": 3, "chn": 4, "actfunc": "tanh"}],
        ["batch_normal", {}],
        ["avg", {"stride": 2}],
        [
            "conv",
            {"ksize": [2, 2], "chn": 6, "stride": 2, "padding": "valid", "actfunc": "sigmoid"},
        ],
        ["max", {"ksize": 3, "stride": 1, "padding": 1, "ties": "split"}],
        ["dropout", {"keep_prob": 0.75}],
        "flatten",
        ["full", {"width": 8}],
    ]
    model = build(spec, (12, 12, 2), 3)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "Conv2D",
        "Tanh",
        "BatchNorm",
        "AvgPool2D",
        "Conv2D",
        "Sigmoid",
        "MaxPool2D",
        "Dropout",
        "Flatten",
        "Dense",
        "ReLU",
        "Dense",
    ]
    assert model.layers[7].rate == pytest.approx(0.25)
    assert model.layers[6].ties == "split"
    assert model.forward(np.zeros((2, 12, 12, 2), np.float32), train=True).shape == (2, 3)


def test_spec_errors_name_the_problem():
    with pytest.raises(ConfigError, match="did you mean: conv"):
        build([["cnov", {"ksize": 3, "chn": 2}]], (8, 8, 1))
    with pytest.raises(ConfigError, match="no option 'kszie'"):
        build([["conv", {"kszie": 3, "chn": 2}]], (8, 8, 1))
    with pytest.raises(ConfigError, match="needs 'width'"):
        build([["full", {}]], (8, 8, 1))
    with pytest.raises(ConfigError, match="ties must be one of"):
        build([["max", {"stride": 2, "ties": "random"}]], (8, 8, 1))
    with pytest.raises(ConfigError, match="image input"):
        build([["full", {"width": 4}], ["conv", {"ksize": 3, "chn": 2}]], (8, 8, 1))


def test_shape_errors_name_layer_and_shapes():
    model = build("lenet5", (28, 28, 1), 10)
    conv2 = model.layers[3]
    with pytest.raises(ShapeError) as e:
        conv2.forward(np.zeros((32, 14, 14, 3), np.float32))
    assert "conv2 (Conv2D 5x5, 6->16) expects input [mb, h, w, 6], got [32, 14, 14, 3]" in str(
        e.value
    )
    with pytest.raises(ShapeError, match=r"conv1 .* expects input \[mb, h, w, 1\], got \[28, 28\]"):
        model.forward(np.zeros((28, 28), np.float32))
    with pytest.raises(ShapeError, match="smaller than the 5x5 kernel"):
        build("lenet5", (8, 8, 1), 10)
    with pytest.raises(ShapeError, match=r"full1 \(Dense 400->120\) expects input \[mb, 400\]"):
        model.layers[6].forward(np.zeros((2, 300), np.float32))
    with pytest.raises(ShapeError, match="smaller than the window"):
        L.MaxPool2D(4).forward(np.zeros((1, 3, 3, 1)))


def test_save_load_roundtrip(tmp_path, rng):
    spec = [
        ["conv", {"ksize": 4, "chn": 3}],
        ["batch_normal", {}],
        ["max", {"stride": 2, "ties": "all"}],
        ["avg", {"ksize": 3, "stride": 1, "padding": 1, "count_include_pad": True}],
        ["conv", {"ksize": [2, 3], "chn": 2, "padding": [[0, 1], [1, 1]]}],
        ["full", {"width": 5}],
    ]
    model = build(spec, (8, 8, 1), 4, seed=3)
    x = rng.standard_normal((3, 8, 8, 1)).astype(np.float32)
    model.forward(x, train=True)  # moves the batch-norm running statistics
    model.meta = {"mean": 0.5, "classes": ["a", "b", "c", "d"]}
    path = model.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as f:  # plain arrays only
        assert json.loads(str(f["spec"]))[0][0] == "conv"
    again = Model.load(path)
    np.testing.assert_array_equal(again.forward(x), model.forward(x))
    assert again.meta == model.meta and again.spec == model.spec
    assert again.layers[3].ties == "all" and again.layers[4].count_include_pad
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError):
        Model.load(tmp_path / "bad.npz")


def test_spec_files(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"layers": LENET5}))
    (tmp_path / "s.yaml").write_text("- [conv, {ksize: 5, chn: 6}]\n- [max, {stride: 2}]\n")
    assert load_spec(str(tmp_path / "s.json")) == LENET5
    assert load_spec(str(tmp_path / "s.yaml"))[1] == ["max", {"stride": 2}]
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_spec(str(tmp_path / "bad.json"))
    with pytest.raises(ConfigError, match="neither"):
        load_spec("lenet6")


def test_training_learns_a_separable_task(rng):
    """Bright top half vs bright bottom half: a small CNN must reach 100% quickly."""
    x = rng.normal(0, 0.3, (256, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 2, 256)
    x[y == 0, :4] += 1
    x[y == 1, 4:] += 1
    model = build([["conv", {"ksize": 3, "chn": 4}], ["max", {"stride": 2}]], (8, 8, 1), 2)
    loss0, _ = model.evaluate(x, y)
    hist = fit(
        model,
        Adam(1e-2),
        x[:192],
        y[:192],
        epochs=3,
        batch_size=32,
        x_test=x[192:],
        y_test=y[192:],
        progress=False,
    )
    assert hist[-1]["loss"] < loss0 / 4
    assert hist[-1]["test_acc"] == 1.0


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam"])
def test_optimizers_reduce_loss_with_penalty(name, rng):
    x = rng.standard_normal((64, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = build([["full", {"width": 8}]], (6,), 2, seed=0)
    lr = {"sgd": 0.3, "adam": 0.01}.get(name, 0.05)
    opt = make_optimizer(name, lr, Penalty(l2=1e-4, l1=1e-4))
    first = model.train_step(x, y, opt)
    for _ in range(30):
        last = model.train_step(x, y, opt)
    assert last < first / 2


def test_sgd_step_rule():
    model = build([["full", {"width": 2, "actfunc": "none"}]], (3,), None)
    dense = model.layers[0]
    w0 = dense.params["w"].copy()
    dense.grads = {"w": np.ones_like(w0), "b": np.zeros(2, np.float32)}
    SGD(0.1, penalty=Penalty(l2=0.5)).step(model)  # w -= lr * (g + 2 * l2 * w)
    np.testing.assert_allclose(dense.params["w"], w0 - 0.1 * (1 + w0), rtol=1e-6)


def test_lr_schedule():
    assert lr_at(0, 100, 1.0) == 1.0 and lr_at(50, 100, 1.0) == pytest.approx(0.5)
    assert lr_at(0, 100, 1.0, warmup=10) == pytest.approx(0.1)
    assert lr_at(99, 100, 1.0, "constant") == 1.0
    assert normalize(np.array([0, 255], np.uint8), 0.5, 0.5).tolist() == [-1.0, 1.0]


def _write_idx(path, magic, arr):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_mnist_reader(tmp_path, rng):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    imgs, labels = rng.integers(0, 256, (5, 28, 28)), rng.integers(0, 10, 5)
    for stem in ("train", "t10k"):
        _write_idx(raw / f"{stem}-images-idx3-ubyte.gz", 2051, imgs)
        _write_idx(raw / f"{stem}-labels-idx1-ubyte.gz", 2049, labels)
    x, y = load_mnist(tmp_path, "test")
    assert x.shape == (5, 28, 28, 1) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[..., 0], imgs)
    np.testing.assert_array_equal(y, labels)
    _write_idx(raw / "bad.gz", 2050, labels)
    with pytest.raises(DataError, match="magic 2050"):
        read_idx(raw / "bad.gz")
    with gzip.open(raw / "short.gz", "wb") as f:
        f.write((2049).to_bytes(4, "big") + (10).to_bytes(4, "big") + b"\x01\x02")
    with pytest.raises(DataError, match="10 bytes of data, the file has 2"):
        read_idx(raw / "short.gz")
    with pytest.raises(DataError, match="not found"):
        load_mnist(tmp_path / "nowhere", "train")


def test_digits():
    x, y = load_digits("test")
    xt, _ = load_digits("train")
    assert x.shape[1:] == (32, 32, 1) and x.dtype == np.uint8 and x.max() == 255
    assert len(x) + len(xt) == 1797 and len(x) == 359
    assert set(np.unique(y)) == set(range(10))


def test_model_from_layer_objects_saves_and_rebuilds(tmp_path, rng):
    layers = [
        L.Conv2D(1, 3, 3, stride=2, padding="same", rng=rng, name="c"),
        L.BatchNorm(3),
        L.ReLU(),
        L.AvgPool2D(2, ceil_mode=True),
        L.Flatten(),
        L.Dense(3 * 2 * 2, 4, rng=rng),
    ]
    model = Model(layers, (7, 7, 1))
    assert model.shapes == [(4, 4, 3), (4, 4, 3), (4, 4, 3), (2, 2, 3), (12,), (4,)]
    x = rng.standard_normal((2, 7, 7, 1)).astype(np.float32)
    again = Model.load(model.save(tmp_path / "objects.npz"))
    np.testing.assert_array_equal(again.forward(x), model.forward(x))
    with pytest.raises(ShapeError, match=r"expects input \[mb, 20\]"):
        Model([L.Flatten(), L.Dense(20, 2)], (7, 7, 1))


def test_loss_rejects_bad_labels_and_pools_take_integers():
    ce = L.SoftmaxCrossEntropy()
    with pytest.raises(ShapeError, match=r"labels must lie in \[0, 3\)"):
        ce.forward(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ShapeError, match="mb labels"):
        ce.forward(np.zeros((2, 3)), np.array([0, 1, 2]))
    y = L.MaxPool2D(2, padding=1).forward(np.arange(16).reshape(1, 4, 4, 1))
    assert y.dtype == np.float32 and y[0, -1, -1, 0] == 15


@pytest.mark.parametrize(
    "k,s,p", [(3, 1, "same"), (4, 2, "same"), ((3, 2), (2, 1), ((1, 2), (0, 1)))]
)
def test_col2im_equals_transposed_convolution(k, s, p, rng):
    layer = L.Conv2D(3, 4, k, s, p, dtype=np.float64, rng=rng, method="im2col")
    x = rng.standard_normal((2, 9, 8, 3))
    dy = rng.standard_normal(layer.forward(x, True).shape)
    np.testing.assert_allclose(
        layer.backward(dy), L.transposed_conv_input_grad(layer, dy, x.shape), atol=1e-12
    )


def test_auto_method_picks_banded_rows_for_narrow_images_only(rng):
    lenet = build("lenet5", (28, 28, 1), 10)
    conv1, conv2 = (m for m in lenet.layers if isinstance(m, L.Conv2D))
    assert conv1.use_banded(32) and conv2.use_banded(14)  # LeNet's 28x28 (padded) and 14x14
    assert not L.Conv2D(16, 32, 3).use_banded(34)  # 32x32, 16->32: im2col
    assert not L.Conv2D(64, 64, 3).use_banded(10)  # many output channels: im2col
    assert L.Conv2D(64, 64, 3, method="banded").use_banded(34)
    assert not L.Conv2D(1, 6, 5, method="im2col").use_banded(32)
    # whichever it picks, the numbers are the same
    x = rng.standard_normal((2, 10, 10, 3)).astype(np.float32)
    a, b = L.Conv2D(3, 4, 3, rng=rng, method="im2col"), L.Conv2D(3, 4, 3, method="banded")
    b.params = a.params
    np.testing.assert_allclose(a.forward(x, True), b.forward(x, True), atol=1e-5)


def test_bad_layer_options():
    for bad in (dict(ksize=0), dict(ksize=3, stride=0), dict(ksize=3, padding=-1)):
        with pytest.raises(ConfigError):
            L.Conv2D(1, 2, **bad)
    with pytest.raises(ConfigError, match=r"method must be one of \('auto', 'im2col', 'banded'\)"):
        L.Conv2D(1, 2, 3, method="winograd")
    with pytest.raises(ConfigError, match="more than half the window"):
        L.MaxPool2D(2, padding=2)
    with pytest.raises(ConfigError, match="dropout rate"):
        L.Dropout(1.0)
