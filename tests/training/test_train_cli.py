"""`cnnlab train | eval | predict | recipes` end to end on the built-in digits."""

import json

import pytest
import torch

from cnnlab.cli import main


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    code = main(["train", "lenet5", "--data", "digits", "--epochs", "1", "--batch-size", "64",
                 "--lr", "0.05", "--warmup", "0.3", "--runs-dir", str(runs), "--name", "cli",
                 "--threads", "1", "--quiet", "--seed", "1"])  # fmt: skip
    assert code == 0
    return runs / "cli"


def test_train_writes_the_run(digits_run):
    s = json.loads((digits_run / "summary.json").read_text())
    assert s["model"] == "lenet5" and s["dataset"] == "digits" and s["epochs"] == 1
    assert 0 <= s["test"]["top1"] <= 100 and s["test"]["top5"] >= s["test"]["top1"]
    assert s["splits"]["test"]["images"] == 359 and s["splits"]["validation"]["images"] == 144
    assert (digits_run / "loss.png").stat().st_size > 1000


def test_eval_with_tta(digits_run, capsys):
    assert main(["eval", str(digits_run / "best.pt"), "--tta", "none"]) == 0
    plain = capsys.readouterr().out
    assert "top-1" in plain and "359 images, TTA none" in plain
    assert main(["eval", str(digits_run / "best.pt"), "--tta", "flip"]) == 0
    out = capsys.readouterr().out
    assert "top-1" in out and "top-5" in out and "359 images, TTA flip" in out
    csv = (digits_run / "confusion-digits-test-flip.csv").read_text().splitlines()
    assert len(csv) == 11  # header + 10 classes
    assert sum(int(v) for r in csv[1:] for v in r.split(",")[1:]) == 359  # the test split
    assert (digits_run / "confusion-digits-test-flip.png").is_file()


def test_eval_10crop_scores_every_image(digits_run, capsys):
    assert main(["eval", str(digits_run / "last.pt"), "--tta", "10crop", "--out",
                 str(digits_run / "e")]) == 0  # fmt: skip
    assert "359 images" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torchvision.io's write_png
def test_predict_png(digits_run, tmp_path, capsys):
    from torchvision.io import write_png

    from cnnlab.data import load_dataset

    te = load_dataset("digits", "test")
    i = int((te.labels == 3).nonzero()[0])
    write_png(te.images[i], str(tmp_path / "three.png"))
    rgb = te.images[i].repeat(3, 1, 1)[:, ::2, ::2].contiguous()  # another size and RGB
    write_png(rgb, str(tmp_path / "small_rgb.png"))
    assert main(["predict", str(digits_run / "best.pt"), str(tmp_path / "three.png"),
                 str(tmp_path / "small_rgb.png")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "three.png" in out and "small_rgb.png" in out and out.count("%") == 10


def test_predict_missing_image_is_a_clear_error(digits_run, tmp_path, capsys):
    assert main(["predict", str(digits_run / "best.pt"), str(tmp_path / "nope.png")]) == 2
    assert "does not exist" in " ".join(capsys.readouterr().err.split())


def test_corrupt_checkpoint_is_reported(digits_run, tmp_path, capsys):
    bad = tmp_path / "best.pt"
    data = bytearray((digits_run / "best.pt").read_bytes())
    data[len(data) // 2] ^= 1  # inside the weights
    bad.write_bytes(bytes(data))  # a copy outside its run folder is verified all the same
    assert main(["eval", str(bad)]) == 2
    assert "is corrupt" in " ".join(capsys.readouterr().err.split())


def test_recipes_listed(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    for name in ("lenet5-mnist", "fashion-mnist", "cifar-fast", "cifar100-assignment"):
        assert name in out


def test_train_needs_a_model(capsys):
    assert main(["train", "--data", "digits"]) == 2
    assert "which model" in capsys.readouterr().err


def test_ckpt_loads_weights_only(digits_run):
    ck = torch.load(digits_run / "best.pt", weights_only=True)
    assert ck["model_name"] == "lenet5" and ck["pipeline"]["preprocessor"]["mode"] == "standardize"


def test_flags_override_the_recipe_and_options_parse():
    from cnnlab.cli import build_parser
    from cnnlab.cli.train import config_from_args

    args = build_parser().parse_args(["train", "--recipe", "fashion-mnist", "--lr", "0.3",
                                      "-O", "widths=[24, 48]", "-O", "dropout=0.5"])  # fmt: skip
    cfg = config_from_args(args)
    assert cfg.lr == 0.3 and cfg.epochs == 10 and cfg.recipe == "fashion-mnist"
    assert cfg.model_options == {"widths": [24, 48], "dropout": 0.5}


def test_bad_option_is_a_clear_error(capsys):
    assert main(["train", "lenet5", "-O", "dropout"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_no_flag_turns_off_a_recipes_switch():
    """A recipe's switch (cifar-fast trains in bf16) can be turned off: --no-amp."""
    from cnnlab.cli import build_parser
    from cnnlab.cli.train import config_from_args

    parse = build_parser().parse_args
    assert config_from_args(parse(["train", "--recipe", "cifar-fast"])).amp is True
    assert config_from_args(parse(["train", "--recipe", "cifar-fast", "--no-amp"])).amp is False
    assert config_from_args(parse(["train", "lenet5", "--amp"])).amp is True
    # channels_last is on unless turned off; an older config's null means on
    assert config_from_args(parse(["train", "lenet5"])).channels_last is None
    off = config_from_args(parse(["train", "lenet5", "--no-channels-last"]))
    assert off.channels_last is False


def test_a_switch_given_a_value_is_a_clear_error(capsys):
    """--amp takes no value: the parser says which flag, exit 2, no traceback."""
    with pytest.raises(SystemExit) as e:
        main(["train", "lenet5", "--amp=yes"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--amp/--no-amp" in err and "Traceback" not in err


def test_no_test_leaves_the_test_split_unseen_until_eval(tmp_path, capsys):
    """--no-test: tuning on validation without the test split (not loaded, not scored); the
    outcome says how to score it, and `cnnlab eval RUN` (a run folder) then scores it once."""
    code = main(["train", "lenet5", "--data", "digits", "--epochs", "0.5", "--batch-size", "64",
                 "--runs-dir", str(tmp_path), "--name", "tune", "--threads", "1", "--no-test",
                 "--no-plots"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "--no-test" in out and "cnnlab eval" in out
    s = json.loads((tmp_path / "tune" / "summary.json").read_text())
    assert s["test"] is None and s["test_skipped"] is True and s["splits"]["test"] is None
    assert s["validation"]["top1"] is not None  # validation still chose
    assert not (tmp_path / "tune" / "confusion.csv").exists()  # no test-split outputs
    assert main(["eval", str(tmp_path / "tune")]) == 0
    shown = capsys.readouterr().out
    assert "359" in shown  # the 359 test digits, scored now
    assert list((tmp_path / "tune").glob("confusion-digits-test-none.*"))  # in the run folder
    (tmp_path / "empty").mkdir()
    assert main(["eval", str(tmp_path / "empty")]) == 2
    assert "no best.pt or last.pt" in capsys.readouterr().err
