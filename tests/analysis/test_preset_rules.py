"""The four preset rules of issue #13, each parameter total, and `--mode`, against the tools.

Each rule test was written first against the presets before the rule existed and failed
with the difference the issue describes (pruned LeNet: 21,840 / 14,633,600 instead of
torchinfo's 10,965 / 3,957,600; a leaf root: 0; fvcore's training batch norm: 32 instead of
80; ViT under ptflops: the attention not priced).
"""

import contextlib
import io
import json
import logging
import subprocess
import sys
import warnings

import peer_fixtures as fx
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from cnnlab.analysis import summary
from cnnlab.cli import main
from cnnlab.errors import ConfigError


def quiet(fn, *a, **kw):
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        logging.getLogger("fvcore").setLevel(logging.ERROR)
        return fn(*a, **kw)


def torchinfo_totals(model, shape, mode="eval"):
    import torchinfo

    r = quiet(torchinfo.summary, model, input_data=torch.zeros(shape), verbose=0, mode=mode)
    return r.total_params, r.total_mult_adds


def fvcore_total(model, shape):
    from fvcore.nn import FlopCountAnalysis

    f = FlopCountAnalysis(model, torch.zeros(shape))
    f.unsupported_ops_warnings(False)
    f.uncalled_modules_warnings(False)
    return quiet(f.total)


def ptflops_totals(model, res):
    import ptflops

    macs, params = quiet(
        ptflops.get_model_complexity_info,
        model,
        res,
        as_strings=False,
        print_per_layer_stat=False,
    )
    return params, macs


def thop_totals(model, shape):
    import thop

    ops, params = quiet(thop.profile, model, inputs=(torch.zeros(shape),), verbose=False)
    return int(params), int(ops)


def totals(model, size, convention, **kw):
    t = summary(model, size, convention=convention, **kw).totals
    return t["params"], t["flops"]


# ----------------------------------------------------------------------------- 1. pruning


def test_torchinfo_prices_pruned_weights_by_their_mask():
    s = summary(fx.pruned_lenet(), (1, 28, 28), batch_size=16, convention="torchinfo")
    assert (s.totals["params"], s.totals["flops"]) == (10_965, 3_957_600)
    assert torchinfo_totals(fx.pruned_lenet(), (16, 1, 28, 28)) == (10_965, 3_957_600)
    # the raw element count stays beside it, with the reason
    assert s.totals["params_raw"] == 21_840
    assert any("10,965 as torchinfo" in n and "unmasked" in n for n in s.notes)
    assert "(21,840 elements)" in s.to_text()
    # conv1 keeps 125 of its 250 weights: 135 priced at each of 16x24x24 positions
    assert s.layer("conv1").flops == 135 * 16 * 24 * 24
    # a `weight_orig` that is not a pruned weight keeps the recurrent-weight rule's fallback
    plain = summary(fx.LeNetLike(), (1, 28, 28), batch_size=16, convention="torchinfo")
    assert plain.totals["params"] == plain.totals["params_raw"] == 21_840


def test_pruning_mask_on_meta_is_named_as_not_counted():
    m = fx.pruned_lenet().to("meta")
    s = summary(m, (1, 28, 28), convention="torchinfo")
    assert any("pruning mask of conv1.weight is on the meta device" in k for k in s.not_counted)
    assert "not counted:" in s.to_text()


# ----------------------------------------------------------------------------- 2. leaf root


class RootLinear(nn.Module):
    """A model without children that owns its weight and bias and calls F.linear."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 8))
        self.bias = nn.Parameter(torch.randn(4))

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


@pytest.mark.parametrize(
    ("build", "shape", "want"),
    [(fx.OwnWeight, (1, 1), (32, 4 * 32)), (RootLinear, (2, 8), (36, 2 * 36))],
    ids=["custom_parameter", "functional_linear"],
)
def test_torchinfo_takes_a_childless_root_as_one_layer(build, shape, want):
    s = summary(build(), shape[1:], batch_size=shape[0], convention="torchinfo")
    assert (s.totals["params"], s.totals["flops"]) == want == torchinfo_totals(build(), shape)
    assert s.layers[-1].name == "(model)" and s.layers[-1].type == build.__name__
    # only torchinfo sees the root as a layer: the other presets keep its functional ops
    lec = s.with_convention("lecture")
    assert all(r.name != "(model)" for r in lec.layers)


# ----------------------------------------------------------------------------- 3. fvcore BN


@pytest.mark.parametrize("affine", [True, False])
def test_fvcore_counts_batch_norm_in_training_mode(affine):
    def bn():
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, affine=affine))

    # a model left in training mode: fvcore prices BN as a norm with statistics (5 or 4/elem)
    train = totals(bn(), (3, 8, 8), "fvcore", batch_size=2, mode="train")[1]
    assert train == fvcore_total(bn().train(), (2, 3, 8, 8))
    evaluated = totals(bn(), (3, 8, 8), "fvcore", batch_size=2)[1]
    assert evaluated == fvcore_total(bn().eval(), (2, 3, 8, 8))
    conv = 2 * 4 * 6 * 6 * 27
    assert (train - conv, evaluated - conv) == (
        (5 if affine else 4) * 288,
        (2 if affine else 1) * 288,
    )


def test_batch_norm_without_running_stats_is_training_even_in_eval():
    def bn():
        return nn.Sequential(nn.BatchNorm2d(4, track_running_stats=False)).eval()

    s = summary(bn(), (4, 5, 5), batch_size=3, convention="fvcore")
    assert s.totals["flops"] == fvcore_total(bn(), (3, 4, 5, 5)) == 5 * 300
    # the lectures count statistics for it too: 4 per element + 2 for the affine
    assert s.with_convention("lecture").totals["flops"] == 6 * 300
    frozen = nn.Sequential(nn.BatchNorm2d(4)).eval()
    assert summary(frozen, (4, 5, 5), batch_size=3).totals["flops"] == 2 * 300


def test_functional_batch_norm_with_training_true():
    s = summary(fx.BatchNormFn(training=True).eval(), (2, 2, 2), batch_size=2)
    assert s.with_convention("fvcore").totals["flops"] == 80  # fvcore's handle test


# ----------------------------------------------------------------------------- 4. attention


class Attend(nn.Module):
    def __init__(self, need_weights=True, mask=False, **kw):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, **kw)
        self.need_weights = need_weights
        self.register_buffer("mask", torch.zeros(5, 5) if mask else None)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=self.need_weights, attn_mask=self.mask)[0]


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"need_weights": False},
        {"mask": True, "batch_first": True},
        {"batch_first": True},
        {"bias": False, "batch_first": True},
    ],
    ids=["weights", "no_weights", "mask", "batch_first", "no_bias"],
)
def test_ptflops_prices_multihead_attention(kw):
    torch.manual_seed(0)
    m = Attend(**kw)
    # ptflops adds the batch dimension: (1, 5, 8) is 5 sequences of one token, or one of 5
    assert totals(m, (5, 8), "ptflops") == ptflops_totals(m, (5, 8))
    assert summary(m, (5, 8), convention="ptflops").not_counted == {}


def test_ptflops_on_a_vision_transformer():
    torch.manual_seed(0)
    v = torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32
    )
    s = summary(v, (3, 32, 32), convention="ptflops")
    assert (s.totals["params"], s.totals["flops"]) == ptflops_totals(v, (3, 32, 32))
    # one row per attention call, owning its out_proj parameters
    row = s.layer("encoder.layers.encoder_layer_0.self_attention")
    assert row.type == "MultiheadAttention" and row.params == 4 * 16 * 16 + 4 * 16


def test_all_four_tools_on_a_vision_transformer():
    """Attention under each preset: ptflops' module rule; torchinfo and thop price neither
    the attention nor its projections (a module with a child, a type without a rule);
    fvcore's TorchScript trace keeps scaled_dot_product_attention as one op it cannot price
    but counts the projections around it."""

    def vit():
        torch.manual_seed(0)
        return torchvision.models.VisionTransformer(
            image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32
        ).eval()

    s = summary(vit(), (3, 32, 32), batch_size=2)
    x = (2, 3, 32, 32)
    assert totals(vit(), x[1:], "torchinfo", batch_size=2) == torchinfo_totals(vit(), x)
    assert totals(vit(), x[1:], "thop", batch_size=2) == thop_totals(vit(), x)
    fv = s.with_convention("fvcore")
    assert fv.totals["flops"] == fvcore_total(vit(), x)
    assert fv.not_counted["aten.scaled_dot_product_attention"] == 2
    # the lecture convention sees every matmul of the attention (flop_counter / 2 on meta)
    assert s.totals["macs"] * 2 == s.with_convention("pytorch").totals["flops"]
    assert s.totals["macs"] > fv.totals["macs"]


def test_ptflops_cannot_price_unbatched_attention_and_says_so():
    m = Attend()
    s = summary(m, (8,), batch_size=5, convention="ptflops")  # a (5, 8) unbatched sequence
    (label,) = s.not_counted
    assert label.startswith("MultiheadAttention (module) (cannot count: ptflops prices")
    assert s.coverage < 1


# ----------------------------------------------------------------------------- params totals


def test_thop_params_are_the_children_it_has_rules_for_that_ran():
    conv = nn.Conv2d(3, 8, 3)
    assert totals(conv, (3, 8, 8), "thop")[0] == thop_totals(conv, (1, 3, 8, 8))[0] == 0
    with torch.device("meta"):
        inc = torchvision.models.inception_v3(init_weights=False).eval()
    s = summary(inc, (3, 299, 299), convention="thop")
    _, params = quiet(
        __import__("thop").profile, inc, inputs=(torch.zeros(1, 3, 299, 299, device="meta"),)
    )
    # the auxiliary classifier does not run in eval: thop leaves its parameters out
    assert s.totals["params"] == int(params) == 23_834_568
    assert s.totals["params_raw"] == 27_161_264
    assert any("thop sums only" in n for n in s.notes)


def test_ptflops_params_leave_out_frozen_ones():
    s = summary(fx.frozen_resnet18(), (3, 64, 64), convention="ptflops")
    assert (s.totals["params"], s.totals["params_raw"]) == (11_006_440, 11_689_512)
    assert any("683,072 without requires_grad" in n for n in s.notes)
    # the other presets count every element
    for other in ("lecture", "fvcore", "torchinfo", "pytorch"):
        assert s.with_convention(other).totals["params"] == 11_689_512


# ----------------------------------------------------------------------------- --mode


def test_mode_is_restored_and_reported():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5)).eval()
    s = summary(m, (3, 8, 8), mode="train")
    assert not m.training and s.mode == "train" and s.to_dict()["mode"] == "train"
    assert "mode: train" in s.to_text()
    assert summary(m, (3, 8, 8)).mode == "eval"
    # batch norm's num_batches_tracked += 1 is a counter, not arithmetic on the model's data
    assert s.layer("1").flops == 6 * 4 * 6 * 6 and s.not_counted == {}


def test_bad_mode_and_eval_only_tools():
    m = nn.Sequential(nn.Conv2d(3, 4, 3))
    with pytest.raises(ConfigError, match="unknown mode 'trian'") as e:
        summary(m, (3, 8, 8), mode="trian")
    assert "did you mean: train" in str(e.value)
    for tool in ("thop", "ptflops"):
        with pytest.raises(ConfigError, match=f"{tool}.*always runs the model in eval mode"):
            summary(m, (3, 8, 8), convention=tool, mode="train")
    s = summary(m, (3, 8, 8), mode="train")
    with pytest.raises(ConfigError, match="--mode train"):
        s.with_convention("thop")


# ----------------------------------------------------------------------------- the CLI

FACTORIES = """
import torch, torch.nn as nn
from torch.nn.utils import prune

class Own(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4, 8))
    def forward(self, x):
        return self.weight

def pruned():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 10, 5), nn.ReLU(), nn.Flatten(), nn.Linear(5760, 10))
    for layer in (m[0], m[3]):
        prune.l1_unstructured(layer, "weight", 0.5)
    return m

def own():
    return Own()

def bn():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))

def sigmoid():
    return nn.Sequential(nn.Linear(5, 4), nn.Sigmoid())
"""


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def cli_json(capsys, *argv):
    rc, out, err = run(capsys, "summary", *argv, "--format", "json")
    assert rc == 0, err
    return json.loads(out)["totals"]


def test_cli_gives_each_tools_number(capsys, tmp_path):
    f = tmp_path / "nets.py"
    f.write_text(FACTORIES)
    t = cli_json(capsys, f"{f}:pruned", "-i", "1x28x28", "-c", "torchinfo")
    ns = {}
    exec(FACTORIES, ns)
    assert (t["params"], t["flops"]) == torchinfo_totals(ns["pruned"](), (1, 1, 28, 28))
    assert t["params"] < t["params_raw"]
    t = cli_json(capsys, f"{f}:own", "-i", "1x1x1", "-c", "torchinfo")
    assert (t["params"], t["flops"]) == (32, 128) == torchinfo_totals(ns["own"](), (1, 1, 1, 1))
    t = cli_json(capsys, f"{f}:bn", "-i", "3x8x8", "-c", "fvcore", "--mode", "train")
    assert t["flops"] == fvcore_total(ns["bn"]().train(), (1, 3, 8, 8))
    t = cli_json(capsys, f"{f}:bn", "-i", "3x8x8", "-c", "fvcore")
    assert t["flops"] == fvcore_total(ns["bn"]().eval(), (1, 3, 8, 8))


def test_cli_vit_b_16_under_ptflops(capsys):
    # ptflops on vit_b_16 at 224 (real tensors) gives 17,606,030,584 MACs, 86,567,656
    # params: its README's "17.61 GMac"; see test_peer_suites.py for the tool run
    t = cli_json(capsys, "torchvision:vit_b_16", "-c", "ptflops")
    assert (t["params"], t["flops"]) == (86_567_656, 17_606_030_584)


def test_cli_not_counted_is_named(capsys, tmp_path):
    f = tmp_path / "nets.py"
    f.write_text(FACTORIES)
    rc, out, err = run(capsys, "summary", f"{f}:sigmoid", "-i", "1x1x5", "-c", "fvcore")
    assert rc == 0 and "Traceback" not in err
    assert "not counted: aten.sigmoid x1" in out.replace("\n", " ")


def test_cli_bad_mode(capsys):
    rc, out, err = run(capsys, "summary", "lenet5", "--mode", "trian")
    assert rc == 2 and "unknown --mode 'trian'" in err and "did you mean: train" in err
    rc, out, err = run(capsys, "summary", "lenet5", "--mode", "train", "-c", "thop")
    assert rc == 2 and "always runs the model in eval mode" in err and out == ""


def test_cli_bad_mode_has_no_traceback():
    p = subprocess.run(
        [sys.executable, "-m", "cnnlab", "summary", "lenet5", "--mode", "inference"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "unknown --mode 'inference'" in p.stderr


def test_flop_counter_on_cpu_misses_fused_attention():
    """docs/summary.md: on real CPU tensors flop_counter cannot see inside the fused
    attention kernels (under no_grad the whole nn.MultiheadAttention fast path, with grad
    the CPU flash kernel of Q K^T and A V); on meta tensors cnnlab sees every matmul."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    layers, heads, dim, tokens = 2, 2, 16, (32 // 8) ** 2 + 1
    v = torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=layers, num_heads=heads, hidden_dim=dim,
        mlp_dim=32,
    ).eval()  # fmt: skip
    full = summary(v, (3, 32, 32), convention="pytorch").totals["flops"]
    counted = {}
    for grad in (False, True):
        with torch.set_grad_enabled(grad), FlopCounterMode(display=False) as fc:
            v(torch.zeros(1, 3, 32, 32))
        counted[grad] = fc.get_total_flops()
    qk_av = 2 * layers * 2 * tokens * tokens * dim
    projections = 2 * layers * 4 * tokens * dim * dim
    assert full - counted[True] == qk_av
    assert full - counted[False] == qk_av + projections
