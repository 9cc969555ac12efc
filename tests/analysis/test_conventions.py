"""Each --convention preset reproduces what that tool itself reports, measured side by side."""

import contextlib
import io
import logging
import warnings

import pytest
import torch
import torchvision

from cnnlab.analysis import summary


def tool_total(tool, model, size):
    x = torch.zeros(1, 3, size, size)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if tool == "torchinfo":
            import torchinfo

            return torchinfo.summary(model, input_data=x, verbose=0).total_mult_adds
        if tool == "fvcore":
            from fvcore.nn import FlopCountAnalysis

            logging.getLogger("fvcore").setLevel(logging.ERROR)
            f = FlopCountAnalysis(model, x)
            f.unsupported_ops_warnings(False)
            f.uncalled_modules_warnings(False)
            return f.total()
        if tool == "thop":
            import thop

            return int(thop.profile(model, inputs=(x,), verbose=False)[0])
        if tool == "ptflops":
            import ptflops

            return ptflops.get_model_complexity_info(
                model, (3, size, size), as_strings=False, print_per_layer_stat=False
            )[0]
    raise AssertionError(tool)


@pytest.fixture(scope="module")
def resnet18():
    torch.manual_seed(0)
    return torchvision.models.resnet18().eval()


@pytest.fixture(scope="module")
def resnet18_summary(resnet18):
    return summary(resnet18, (3, 32, 32))


@pytest.mark.parametrize("tool", ["torchinfo", "fvcore", "thop", "ptflops"])
def test_preset_equals_the_tool(resnet18, resnet18_summary, tool):
    assert resnet18_summary.with_convention(tool).totals["flops"] == tool_total(tool, resnet18, 32)


def test_presets_on_relu6_depthwise_and_inception_nets():
    torch.manual_seed(0)
    m = torchvision.models.mobilenet_v2().eval()  # grouped convs, ReLU6, dropout
    sm = summary(m, (3, 32, 32))
    for tool in ("thop", "ptflops"):
        assert sm.with_convention(tool).totals["flops"] == tool_total(tool, m, 32), tool
    g = torchvision.models.googlenet(aux_logits=False, init_weights=False).eval()  # F.relu, cat
    assert summary(g, (3, 32, 32), convention="ptflops").totals["flops"] == tool_total(
        "ptflops", g, 32
    )


def test_why_tools_disagree_on_resnet18(resnet18_summary):
    s = resnet18_summary
    lec, fv = s.totals, s.with_convention("fvcore")
    pt, th = s.with_convention("ptflops"), s.with_convention("thop")
    # everyone agrees on the conv+linear MACs when bias is left out...
    assert (
        lec["macs"]
        == fv.totals["macs"]
        == th.totals["macs"]
        == s.with_convention("pytorch").totals["flops"] // 2
    )
    # ...fvcore then skips ReLU, max pooling and the residual adds (listed, not hidden)
    assert {"aten.relu_", "aten.max_pool2d_with_indices", "aten.add_"} <= set(fv.not_counted)
    # ptflops counts each ReLU and pooling twice: module hook + patched F.relu/F.max_pool2d;
    # thop counts them as zero; the lectures once (pooling: K*K per output)
    relu, pool = s.layer("relu"), s.layer("maxpool")
    relu_n, pool_in = relu.activation_bytes // 4, 64 * 16 * 16
    assert pt.layer("relu").flops == 2 * relu_n and th.layer("relu").flops == 0
    assert pt.layer("maxpool").flops == 2 * pool_in and th.layer("maxpool").flops == 0
    assert relu.flops == relu_n and pool.flops == 64 * 8 * 8 * 9
    # nobody but the lectures counts the residual `out += identity`
    for other in (fv, pt, th, s.with_convention("torchinfo")):
        assert other.layer("layer1.0 (add)").flops == 0
    assert s.layer("layer1.0 (add)").flops == 64 * 8 * 8
    # the lecture convention counts every op it sees
    assert s.coverage == 1.0
