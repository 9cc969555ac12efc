"""`cnnlab shape`: the working lines, the JSON and markdown forms, and bad input (exit 2)."""

import json

import pytest

from cnnlab.cli import main


def run(capsys, *argv):
    code = main(["shape", *argv])
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())  # rich may wrap stderr; compare on words


def test_alexnet_conv1_working(capsys):
    code, out, _ = run(capsys, "--input", "3x227x227", "--filters", "64", "--kernel", "11",
                       "--stride", "4", "--pad", "2")  # fmt: skip
    assert code == 0
    for line in [
        "output H = (227 - 11 + 2*2)/4 + 1 = 56",
        "output W = (227 - 11 + 2*2)/4 + 1 = 56",
        "memory: 64 * 56 * 56 = 200,704 elements * 4 B (float32) / 1024 = 784 KB",
        "params: 64*3*11*11 + 64 = 23,296",
        "= 200,704 * 363 = 72,855,552",
        "receptive field = r_in + (K_eff - 1)*jump_in = 1 + (11 - 1)*1 = 11; jump = 1*4 = 4",
    ]:
        assert line in out, line
    assert "64x56x56" in out


def test_pool_needs_floor_then_shows_the_floor(capsys):
    argv = ["--input", "64x56x56", "--type", "maxpool", "--kernel", "3", "--stride", "2"]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert "(56 - 3 + 2*0)/2 + 1 = 27.5 is not an integer" in err
    assert "--floor" in err and "--ceil-mode" in err
    code, out, err = run(capsys, *argv, "--floor")
    assert code == 0
    assert "output H = (56 - 3 + 2*0)/2 + 1 = 27.5 -> floor 27 (as PyTorch)" in out
    assert "memory: 64 * 27 * 27 = 46,656 elements * 4 B (float32) / 1024 = 182.25 KB" in out
    assert "FLOPs: (C*H'*W') * (K*K) = (64*27*27) * (3*3) = 46,656 * 9 = 419,904" in out
    assert "warning:" in err and "floored to 27 as PyTorch does" in err
    code, out, _ = run(capsys, *argv, "--ceil-mode")
    assert code == 0 and "27.5 -> ceil 28 (ceil_mode)" in out


def test_fc_json(capsys):
    code, out, _ = run(capsys, "--input", "9216", "--type", "fc", "--filters", "4096",
                       "--format", "json")  # fmt: skip
    assert code == 0
    row = json.loads(out)
    assert row["output_shape"] == [4096]
    assert (row["weights"], row["bias"], row["params"]) == (37_748_736, 4096, 37_752_832)
    assert row["macs"] == 37_748_736 and row["activation_bytes"] == 16_384
    assert "params: 9216*4096 + 4096 = 37,752,832" in row["working"]
    for key in ("name", "type", "input_shape", "kernel", "stride", "padding", "flops",
                "receptive_field", "jump"):  # fmt: skip
        assert key in row


def test_flattening_fc_and_out_features_alias(capsys):
    code, out, _ = run(capsys, "--input", "256x6x6", "--type", "linear", "--out-features", "4096")
    assert code == 0 and "in features = flatten 256*6*6 = 9,216" in out


def test_markdown_dtype_groups_dilation_same(capsys):
    code, out, _ = run(capsys, "--input", "64x28x28", "--filters", "64", "--kernel", "3",
                       "--pad", "same", "--dilation", "2", "--groups", "4", "--dtype", "float16",
                       "--format", "markdown")  # fmt: skip
    assert code == 0
    assert out.startswith("| layer |")
    assert "effective kernel = D*(K - 1) + 1 = 2*(3 - 1) + 1 = 5" in out
    assert "(5 - 1)/2 = 2 per side" in out
    assert "64*(64/4)*3*3 = 9,216" in out
    assert "* 2 B (float16) / 1024 = 98 KB" in out


def test_convtranspose(capsys):
    code, out, _ = run(capsys, "--input", "64x14x14", "--type", "convtranspose", "--filters",
                       "32", "--kernel", "4", "--stride", "2", "--pad", "1")  # fmt: skip
    assert code == 0
    assert "(14 - 1)*2 - 2*1 + 1*(4 - 1) + 0 + 1 = 28" in out
    assert "32x28x28" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--input", "3x227", "--filters", "8", "--kernel", "3"], "malformed --input '3x227'"),
        (["--input", "3xaxb", "--filters", "8", "--kernel", "3"], "expected CxHxW like 3x227x227"),
        (["--input", "0x8x8", "--filters", "8", "--kernel", "3"], "or a single number for fc"),
        (["--input", "9216", "--filters", "8", "--kernel", "3"], "needs a C x H x W input"),
        (["--input", "3x32x32", "--filters", "8", "--kernel", "5", "--stride", "2"],
         "(32 - 5 + 2*0)/2 + 1 = 14.5 is not an integer"),
        (["--input", "3x4x4", "--filters", "8", "--kernel", "5"], "larger than the padded input"),
        (["--input", "3x8x8", "--filters", "8", "--kernel", "3", "--groups", "2"],
         "in_channels 3 is not divisible by groups 2"),
        (["--input", "3x8x8", "--filters", "8"], "needs a kernel size"),
        (["--input", "3x8x8", "--kernel", "3"], "needs a number of filters"),
        (["--input", "3x8x8", "--filters", "8", "--kernel", "3", "--type", "pooling"],
         "unknown layer type 'pooling'"),
        (["--input", "3x8x8", "--filters", "8", "--kernel", "3", "--pad", "lots"],
         "malformed --pad 'lots'"),
        (["--input", "3x8x8", "--filters", "8", "--kernel", "3", "--dtype", "float33"],
         "unknown dtype 'float33'"),
        (["--input", "9216", "--type", "fc", "--filters", "8", "--kernel", "3"],
         "--kernel does not apply to an fc layer"),
        (["--input", "3x8x8", "--filters", "8", "--kernel", "3", "--stride", "2", "--pad",
          "same"], "padding='same' needs stride 1"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_a_message(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and out == ""


def test_help_lists_examples(capsys):
    with pytest.raises(SystemExit) as info:
        main(["shape", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--ceil-mode" in out and "3x227x227" in out


def test_how_the_input_was_read_is_in_every_output_form(capsys):
    argv = ("--input", "227x227x3", "--filters", "96", "--kernel", "11", "--stride", "4")
    code, out, _ = run(capsys, *argv, "--format", "json")
    d = json.loads(out)
    assert code == 0 and d["input_shape"] == [3, 227, 227] and d["output_shape"] == [96, 55, 55]
    assert "as H x W x C" in d["notes"][0]
    _, out, _ = run(capsys, *argv, "--format", "markdown")
    assert "as H x W x C" in out
    # a square map after pooling stays channels first: 512 channels of 1 x 1
    code, out, _ = run(capsys, "--input", "512x1x1", "--filters", "10", "--kernel", "1",
                       "--format", "json")  # fmt: skip
    d = json.loads(out)
    assert d["input_shape"] == [512, 1, 1] and d["output_shape"] == [10, 1, 1]
    assert d["params"] == 512 * 10 + 10 and not any("H x W x C" in n for n in d["notes"])


def test_a_square_map_says_each_spp_note_once(capsys):
    code, out, _ = run(capsys, "--type", "spp", "--input", "16x13x13", "--bins", "20",
                       "--format", "json")  # fmt: skip
    notes = json.loads(out)["notes"]
    assert code == 0 and sum("13 cells < 20 bins" in n for n in notes) == 1


def test_rf_in_below_one_names_the_flag(capsys):
    code, _, err = run(capsys, "--input", "3x32x32", "--filters", "8", "--kernel", "3",
                       "--rf-in", "0")  # fmt: skip
    assert code == 2 and "--rf-in" in err and "must be >= 1, got 0" in err
