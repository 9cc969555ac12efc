"""The errata table: well-formed, every right value recomputed with cnnlab's own arithmetic and
model summaries, on the command line, and footnoted by summary / compare."""

import pathlib
import re

import pytest

import cnnlab.arithmetic as A
from cnnlab.teaching.errata import ERRATA, KINDS, by_id, errata

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "errata.md"

# each erratum's right value, computed by the library (not copied from the table)
RECOMPUTED = {
    "001-alexnet-conv4-macs": lambda: A.conv_macs(384, 256, 13, 13, 3),
    "001-alexnet-fc6-params": lambda: sum(A.linear_params(256 * 6 * 6, 4096)),
    "001-alexnet-fc7-params": lambda: sum(A.linear_params(4096, 4096)),
    "001-alexnet-fc8-params": lambda: sum(A.linear_params(4096, 1000)),
    "001-vgg-padding": lambda: A.resolve_padding("same", 3),
    "001-vgg16-fc6-params": lambda: sum(A.linear_params(512 * 7 * 7, 4096)),
    "001-vgg16-fc7-params": lambda: sum(A.linear_params(4096, 4096)),
    "001-vgg16-fc8-params": lambda: sum(A.linear_params(4096, 1000)),
    "001-googlenet-fc-memory": lambda: A.activation_bytes(1000, "float32"),
    "001-googlenet-conv1-floor": lambda: A.conv_output_size(224, 7, 2, 3, strict=False),
    "000-receptive-field-recurrence": lambda: A.receptive_field([(7, 1), (3, 1), (3, 2)])[-1][0],
    "000-alexnet-conv1-params": lambda: sum(A.conv_params(3, 96, 11)),
    "000-alexnet-conv2-params": lambda: sum(A.conv_params(96, 256, 5, groups=2)),
    "000-alexnet-conv3-params": lambda: sum(A.conv_params(256, 384, 3)),
    "000-alexnet-conv4-params": lambda: sum(A.conv_params(384, 384, 3, groups=2)),
    "000-alexnet-conv5-params": lambda: sum(A.conv_params(384, 256, 3, groups=2)),
    "000-alexnet-fc6-params": lambda: sum(A.linear_params(9216, 4096)),
    "000-alexnet-fc7-params": lambda: sum(A.linear_params(4096, 4096)),
    "000-alexnet-fc8-params": lambda: sum(A.linear_params(4096, 1000)),
    "002-zfnet-conv1-stride": lambda: 2,  # a fact from the ZFNet paper, not a computation
    "002-gap-fc-weights": lambda: A.linear_params(7 * 7 * 1024, 1024)[0],
    "004-bottleneck-30pct": lambda: (
        A.conv_params(128, 32, 1, bias=False)[0] + A.conv_params(32, 128, 3, bias=False)[0]
    ),
    "000-googlenet-no-fc": lambda: _summary("googlenet", aux_logits=False).layer("fc").params,
    "000-googlenet-12x-fewer": lambda: round(
        _params("alexnet2012") / _params("googlenet_paper", aux_logits=False), 1
    ),
    "000-vgg-fewer-params": lambda: round(_params("vgg16") / _params("alexnet"), 2),
    "004-alexnet-11x11-params": lambda: _summary("alexnet2012").layers[0].params,
    "004-vgg-year": lambda: 2014,  # facts from the papers, not computations
    "004-googlenet-year": lambda: 2014,
    "004-rcnn-random-regions": lambda: 2000,
    "004-yolo-b-times-5": lambda: A.yolo_output(S=7, B=2, C=20).outputs,
    "004-densenet-growth": lambda: _block1_channels()[-1],
    "004-resnet-bottleneck": lambda: sum(
        r.weights for r in _summary("resnet50").layers if r.name.startswith("layer1.1.conv")
    ),
    "001-lenet-sigmoid": lambda: _lenet_tanh_scale(),
}


def _summary(name, **options):
    import cnnlab.models as M
    from cnnlab.analysis import summary

    model = M.create(name, **options)
    return summary(model, M.get_info(name).input_size)


def _block1_channels():
    """Channels after each concatenation of DenseNet-121's first block, from its summary."""
    s = _summary("densenet121")
    return [r.output_shape[0] for r in s.layers if r.name.startswith("features.denseblock1")
            and r.name.endswith("(cat)")]  # fmt: skip


def _params(name, **options):
    return _summary(name, **options).totals["params"]


def _lenet_tanh_scale():
    import torch

    import cnnlab.models as M

    acts = [m for m in M.create("lenet5_1998").modules() if type(m).__name__ == "ScaledTanh"]
    assert acts  # the paper's form really uses it
    return round(float(acts[0](torch.tensor(1.0)) / torch.tanh(torch.tensor(2 / 3))), 4)


def test_table_is_well_formed():
    ids = [e.id for e in ERRATA]
    assert len(ids) == len(set(ids))
    for e in ERRATA:
        assert e.seed in {"000", "001", "002", "003", "004"} and e.id.startswith(e.seed)
        assert e.kind in KINDS
        assert e.section and e.says and e.right and e.why
        assert e.says != e.right


@pytest.mark.parametrize("erratum", [e for e in ERRATA if e.value is not None], ids=lambda e: e.id)
def test_every_value_is_recomputed(erratum):
    assert RECOMPUTED[erratum.id]() == erratum.value


# the unit each wrong cell is printed in (seed 001 prints params in k and MACs in M)
PRINTED_UNIT = {
    "001-alexnet-conv4-macs": 10**6,
    "001-alexnet-fc6-params": 1000,
    "001-alexnet-fc7-params": 1000,
    "001-alexnet-fc8-params": 1000,
    "001-vgg16-fc6-params": 1000,
    "001-vgg16-fc7-params": 1000,
    "001-vgg16-fc8-params": 1000,
    "000-alexnet-conv1-params": 1000,
    "000-alexnet-conv2-params": 1000,
    "000-alexnet-conv3-params": 1000,
    "000-alexnet-conv4-params": 1000,
    "000-alexnet-conv5-params": 1000,
    "000-alexnet-fc6-params": 1000,
    "000-alexnet-fc7-params": 1000,
    "000-alexnet-fc8-params": 1000,
    "002-gap-fc-weights": 10**6,
}


@pytest.mark.parametrize("erratum_id", sorted(PRINTED_UNIT))
def test_printed_cell_differs_from_the_right_value_in_its_unit(erratum_id):
    e = by_id(erratum_id)
    printed = float(re.match(r"[0-9][0-9,.]*", e.says).group().replace(",", ""))
    right = e.value / PRINTED_UNIT[erratum_id]
    assert abs(right - printed) >= 0.05, (right, printed)
    assert f"{e.value:,}" in e.right  # the exact right number is spelled out


def test_receptive_field_example_in_the_seed_is_self_contradictory():
    e = by_id("000-receptive-field-recurrence")
    assert 9 + (3 - 1) * 2 == 13 != 11  # the seed's own expression
    assert A.receptive_field_step(9, 1, 3, 2) == (e.value, 2)


def test_lookup_helpers():
    assert {e.seed for e in errata(seed="001")} == {"001"}
    assert all(e.kind == "fact" for e in errata(kind="fact"))
    with pytest.raises(KeyError, match="known: 001-alexnet-conv4-macs"):
        by_id("nope")


def test_docs_mention_every_erratum():
    text = DOCS.read_text()
    missing = [e.id for e in ERRATA if e.id not in text]
    assert not missing, f"docs/errata.md lacks {missing}"


def test_every_addition_the_issue_names_is_in_the_table():
    wanted = {
        "004-yolo-b-times-5", "004-densenet-growth", "000-googlenet-no-fc",
        "000-googlenet-12x-fewer", "000-vgg-fewer-params", "004-alexnet-11x11-params",
        "001-bn-sigma-std", "004-vgg-year",
        "004-googlenet-year", "004-rcnn-random-regions", "004-resnet-bottleneck",
        "004-deconv-same-filter", "001-lenet-sigmoid", "001-covariate-shift",
    }  # fmt: skip
    assert wanted <= {e.id for e in ERRATA}


def test_ratios_and_shares_the_notes_state():
    # GoogLeNet: 8.7x fewer (paper forms), 9.2x (torchvision's), never 12x
    assert round(_params("alexnet") / _params("googlenet", aux_logits=False), 1) == 9.2
    # AlexNet conv1 is 0.06% of the paper network, its FC layers about 96%
    s = _summary("alexnet2012")
    total = s.totals["params"]
    assert round(100 * s.layers[0].params / total, 2) == 0.06
    fc = sum(r.params for r in s.layers if r.type == "Linear")
    assert round(100 * fc / total) == 96
    # DenseNet's growth is linear: every dense layer adds exactly k = 32 channels
    assert _block1_channels() == [64, 96, 128, 160, 192, 224, 256]


def test_resnet_bottleneck_is_1x1_3x3_1x1():
    s = _summary("resnet50")
    kernels = [r.kernel[0] for r in s.layers if r.name.startswith("layer1.1.conv")]
    assert kernels == [1, 3, 1]


def test_bn_sigma_squared_is_the_variance():
    import torch

    x = torch.randn(64, 3, 4, 4)
    bn = torch.nn.BatchNorm2d(3, momentum=1.0).train()
    bn(x)  # with momentum 1 the running variance is this batch's (unbiased) variance
    var = x.transpose(0, 1).reshape(3, -1).var(dim=1)
    assert torch.allclose(bn.running_var, var, atol=1e-5)
    assert not torch.allclose(bn.running_var, var.sqrt(), atol=1e-2)


def test_seed_accepts_short_form_and_rejects_unknown():
    from cnnlab.errors import ConfigError

    assert errata(seed="1") == errata(seed="001")
    with pytest.raises(ConfigError, match="unknown seed"):
        errata(seed="7")
    with pytest.raises(ConfigError, match="did you mean: statement"):
        errata(kind="statment")


def _cli(*args):
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(__file__).resolve().parents[2] / "src"))
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, env=env
    )


def test_cli_json_lists_every_erratum_with_the_contract_fields():
    import json

    r = _cli("errata", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [d["id"] for d in rows] == [e.id for e in ERRATA]
    for d in rows:
        assert {"id", "seed", "section", "says", "right", "why"} <= set(d)


def test_cli_text_markdown_and_bad_seed():
    from cnnlab.cli import main

    r = _cli("errata", "--seed", "8")
    assert r.returncode == 2 and "unknown seed" in r.stderr and "Traceback" not in r.stderr
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["errata", "--seed", "004", "--format", "markdown"]) == 0
    md = buf.getvalue()
    assert md.startswith("| id | seed |") and "004-yolo-b-times-5" in md and "001-" not in md
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main(["errata", "--seed", "002"])
    assert "[002-zfnet-conv1-stride]" in buf.getvalue() and "right" in buf.getvalue()


def test_summary_and_compare_footnote_the_wrong_cells():
    import contextlib
    import io

    from cnnlab.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main(["summary", "alexnet", "--input", "3x227x227", "--format", "json"])
    import json

    notes = json.loads(buf.getvalue())["notes"]
    errata_notes = [n for n in notes if n.startswith("errata:")]
    assert any("features.8 macs = 149,520,384" in n and "001-alexnet-conv4-macs" in n
               for n in errata_notes)  # fmt: skip
    assert len(errata_notes) == 4  # conv4 MACs, fc6, fc7, fc8 params
    # a batch of 2 is not the notes' unit: no footnotes
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main(["summary", "alexnet", "--input", "3x227x227", "--format", "json", "-b", "2"])
    assert not [n for n in json.loads(buf.getvalue())["notes"] if n.startswith("errata:")]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main(["compare", "--builtin", "fc-vs-gap", "--format", "json"])
    notes = json.loads(buf.getvalue())["notes"]
    assert any("001-vgg16-fc6-params" in n and n.startswith("errata: A: 1 ") for n in notes)
    assert any("001-googlenet-fc-memory" in n for n in notes)
