"""ConvTranspose2D (seed 004's deconvolution) against PyTorch, finite differences and the
zero-insert-and-pad picture; `cnnlab scratch deconv`."""

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scratch_helpers import nchw, nhwc

from cnnlab.cli import main
from cnnlab.errors import ConfigError, ShapeError
from cnnlab.scratch import layers as L
from cnnlab.scratch.deconv import deconv_walkthrough
from cnnlab.scratch.gradcheck import check_layer
from cnnlab.scratch.model import Model, build

CASES = [  # (h, w, xchn, ychn, ksize, stride, padding, output_padding)
    (2, 2, 1, 1, 3, 2, 0, 0),
    (4, 5, 3, 2, 3, 2, 1, 1),
    (3, 3, 2, 4, (2, 3), (3, 2), (1, 0), (2, 1)),
    (5, 4, 2, 3, 4, 1, 2, 0),
    (3, 4, 2, 2, 2, 2, 3, 1),  # padding > kernel - 1: the crop is all that is left
]


def torch_deconv_kernel(w):
    """[kh, kw, xchn, ychn] -> conv_transpose2d's [xchn, ychn, kh, kw]."""
    return torch.tensor(np.ascontiguousarray(w.transpose(2, 3, 0, 1)), requires_grad=True)


@pytest.mark.parametrize("h,w,c,o,k,s,p,op", CASES)
def test_forward_backward_match_torch_conv_transpose2d(h, w, c, o, k, s, p, op, rng):
    layer = L.ConvTranspose2D(c, o, k, s, p, op, dtype=np.float64, rng=rng)
    layer.params["b"][:] = rng.standard_normal(o)
    x = rng.standard_normal((2, h, w, c))
    y = layer.forward(x, train=True)
    assert y.shape[1:] == layer.output_shape((h, w, c))
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)

    xt, wt = nchw(x), torch_deconv_kernel(layer.params["w"])
    bt = torch.tensor(layer.params["b"], requires_grad=True)
    yt = F.conv_transpose2d(xt, wt, bt, stride=s, padding=p, output_padding=op)
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(y, nhwc(yt), atol=1e-12)
    np.testing.assert_allclose(dx, nhwc(xt.grad), atol=1e-12)
    np.testing.assert_allclose(layer.grads["w"], wt.grad.numpy().transpose(2, 3, 0, 1), atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], bt.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("h,w,c,o,k,s,p,op", CASES)
def test_gradients_match_finite_differences(h, w, c, o, k, s, p, op, rng):
    layer = L.ConvTranspose2D(c, o, k, s, p, op, dtype=np.float64, rng=rng)
    errors = check_layer(layer, rng.standard_normal((2, h, w, c)))
    assert set(errors) == {"x", "w", "b"}
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("h,w,c,o,k,s,p,op", [c for c in CASES if c[6] != 3])
def test_equals_zero_insertion_padding_and_flipped_convolution(h, w, c, o, k, s, p, op, rng):
    """Seed 004's picture: zeros between pixels, k - 1 - p around, convolve with the flipped
    kernel at stride 1."""
    layer = L.ConvTranspose2D(c, o, k, s, p, op, bias=False, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, h, w, c))
    conv = L.Conv2D(c, o, k, 1, "valid", bias=False, dtype=np.float64)
    conv.params["w"] = layer.flipped_kernel()
    np.testing.assert_allclose(conv.forward(layer.zero_insert_pad(x)), layer.forward(x), atol=1e-12)


def test_is_the_adjoint_of_the_strided_convolution(rng):
    """<conv(u), x> = <u, deconv(x)> for the same kernel, stride and padding."""
    deconv = L.ConvTranspose2D(3, 2, 3, 2, 1, 1, bias=False, dtype=np.float64, rng=rng)
    conv = L.Conv2D(2, 3, 3, 2, 1, bias=False, dtype=np.float64)
    conv.params["w"] = deconv.params["w"].transpose(0, 1, 3, 2)
    x = rng.standard_normal((1, 4, 4, 3))
    u = rng.standard_normal((1, *deconv.output_shape((4, 4, 3))))
    assert conv.forward(u).shape == x.shape
    np.testing.assert_allclose((conv.forward(u) * x).sum(), (u * deconv.forward(x)).sum())


def test_walkthrough_2x2_kernel_3_stride_2():
    walk = deconv_walkthrough(2, 3, 2)
    assert walk.zero_inserted.tolist() == [[1, 0, 2], [0, 0, 0], [3, 0, 4]]
    assert walk.padded.shape == (7, 7) and walk.padded[2:5, 2:5].tolist() == [
        [1, 0, 2],
        [0, 0, 0],
        [3, 0, 4],
    ]
    assert walk.padded.sum() == 10  # only the four input values, everything else zero
    ref = F.conv_transpose2d(
        torch.arange(1.0, 5).reshape(1, 1, 2, 2),
        torch.arange(1.0, 10).reshape(1, 1, 3, 3),
        stride=2,
    )
    np.testing.assert_array_equal(walk.y, ref[0, 0].numpy())
    # the centre lies under all four patches, each with the kernel value at its offset
    assert walk.y[2, 2] == 1 * 9 + 2 * 7 + 3 * 3 + 4 * 1
    assert walk.conv_of_y.shape == walk.x.shape and not np.allclose(walk.conv_of_y, walk.x)
    assert walk.adjoint[0] == pytest.approx(walk.adjoint[1])
    assert walk.size_working[0] == "H' = (2 - 1)*2 - 2*0 + 3 + 0 = 5"


def test_bad_options_are_cnnlab_errors():
    with pytest.raises(ConfigError, match="output_padding"):
        L.ConvTranspose2D(1, 1, 3, 2, 0, 2)
    with pytest.raises(ShapeError, match="not positive"):
        deconv_walkthrough(1, 1, 1, 3)
    with pytest.raises(ShapeError, match="expects input"):
        L.ConvTranspose2D(2, 1, 3).forward(np.zeros((1, 3, 3, 1)))


def test_deconv_spec_kind_builds_trains_and_saves(tmp_path, rng):
    spec = [
        ["conv", {"ksize": 3, "chn": 4, "stride": 2}],
        ["deconv", {"ksize": 4, "chn": 2, "stride": 2, "padding": 1}],
        ["flatten"],
    ]
    model = build(spec, (6, 6, 1), num_classes=3)
    assert model.shapes[2] == (6, 6, 2)  # 3 -> (3 - 1)*2 - 2 + 4 = 6: the size comes back
    x = rng.standard_normal((4, 6, 6, 1)).astype(np.float32)
    before = model.predict(x)
    path = model.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(Model.load(path).predict(x), before)
    with pytest.raises(ConfigError, match="no option"):
        build([["deconv", {"ksize": 3, "chn": 2, "dilation": 2}]], (4, 4, 1))


def test_cli_show_prints_every_step(capsys):
    assert (
        main(["scratch", "deconv", "--input", "2x2", "--kernel", "3", "--stride", "2", "--show"])
        == 0
    )
    out = capsys.readouterr().out
    for text in (
        "2x2 -> 5x5",
        "1. insert",
        "2. pad k - 1 - p = 2x2",
        "3. flip",
        "5. not the inverse",
    ):
        assert text in out
    assert "36" in out  # the centre value y[2, 2]
    assert main(["scratch", "deconv", "--input", "3", "--kernel", "4", "--padding", "1"]) == 0
    assert "H' = (3 - 1)*2 - 2*1 + 4 + 0 = 6" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--output-padding", "2"], "output_padding"),
        (["--input", "2x"], "malformed --input"),
        (["--input", "1", "--kernel", "1", "--padding", "3"], "not positive"),
    ],
)
def test_cli_bad_input_exit_2(args, msg, capsys):
    assert main(["scratch", "deconv", *args]) == 2
    assert msg in capsys.readouterr().err


def test_cli_bad_input_through_subprocess_has_no_traceback():
    r = subprocess.run(
        [sys.executable, "-m", "cnnlab", "scratch", "deconv", "--stride", "0"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--stride" in r.stderr
