"""Bad input to the scratch engine and ``cnnlab scratch``: each is one clear error (exit status 2,
"error: ... / hint: ..."), never a traceback, a silent misreading or a NaN that passes."""

import math

import numpy as np
import pytest

from cnnlab.cli import main
from cnnlab.errors import ConfigError, DataError, TrainingDiverged
from cnnlab.scratch import Model, build, fit, make_optimizer
from cnnlab.scratch.gradcheck import numeric_grad, passes, rel_error
from cnnlab.scratch.optim import SGD, Penalty


def _err(capsys, args, code=2):
    """Run the CLI and return its stderr with the wrapping undone."""
    assert main(args) == code
    return " ".join(capsys.readouterr().err.split())


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny saved LeNet-5 for 32x32 digits (no training needed to test loading)."""
    path = tmp_path_factory.mktemp("m") / "good.npz"
    model = build("lenet5", (32, 32, 1), 10)
    model.meta = {"data": "digits", "mean": 0.0, "std": 1.0}
    return model.save(path)


# ------------------------------------------------------------------ 1. gradcheck


@pytest.mark.parametrize("eps", ["nan", "0", "-0.5", "inf"])
def test_gradcheck_refuses_bad_eps(eps, capsys):
    err = _err(capsys, ["scratch", "gradcheck", "--only", "max", "--eps", eps])
    assert "error: --eps must be a finite number > 0" in err and "hint:" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("tol", ["nan", "-1", "0"])
def test_gradcheck_refuses_bad_tol(tol, capsys):
    err = _err(capsys, ["scratch", "gradcheck", "--only", "max", "--tol", tol])
    assert "error: --tol must be a finite number > 0" in err and "hint:" in err


def test_gradcheck_only_matching_nothing_lists_the_cases(capsys):
    err = _err(capsys, ["scratch", "gradcheck", "--only", "nosuchcase"])
    assert "--only 'nosuchcase' matches no case" in err
    assert "max 2x2 stride 2, odd 7x7" in err and "multiclass hinge" in err


def test_nan_error_never_passes():
    assert math.isnan(rel_error([np.nan, 1.0], [1.0, 1.0]))  # was 0.0: 'den > 0' fails on NaN
    assert math.isnan(rel_error([np.inf], [1.0]))
    assert rel_error([0.0], [0.0]) == 0.0  # both zero is still an exact match
    assert not passes(float("nan"), 1e-6) and not passes(float("inf"), 1e-6)
    assert passes(1e-10, 1e-6) and not passes(1e-3, 1e-6)


def test_numeric_grad_refuses_zero_step():
    with pytest.raises(ConfigError, match="eps must be a finite number > 0"):
        numeric_grad(lambda: 0.0, np.zeros(3), eps=0)


def test_gradcheck_counts_a_nan_row_as_failed(monkeypatch, capsys):
    import cnnlab.scratch.gradcheck as gc

    real = gc.check_layer
    monkeypatch.setattr(gc, "check_layer", lambda *a, **k: {**real(*a, **k), "x": float("nan")})
    assert main(["scratch", "gradcheck", "--only", "max 2x2"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "1 FAILED" in out and "all pass" not in out and "worst relative error nan" in out


# ------------------------------------------------------------------ 2. corrupt model files


def _unreadable(err, name):
    assert f"error: {name} is not a readable scratch model (empty, truncated or not an .npz" in err
    assert "hint: train and save it again" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["eval", "summary"])
def test_corrupt_model_files(command, saved, tmp_path, capsys, monkeypatch):
    raw = saved.read_bytes()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "zero.npz").write_bytes(b"")  # was EOFError
    (tmp_path / "trunc.npz").write_bytes(raw[:1000])  # was zipfile.BadZipFile
    (tmp_path / "text.npz").write_text("hello\n")  # was "... allow_pickle ..."
    (tmp_path / "tail.npz").write_bytes(raw[: len(raw) - 100])  # end of the zip cut off
    for name in ("zero.npz", "trunc.npz", "text.npz", "tail.npz"):
        _unreadable(_err(capsys, ["scratch", command, name]), name)
        with pytest.raises(DataError, match="not a readable scratch model"):
            Model.load(name)


def test_every_truncation_is_a_data_error(saved, tmp_path):
    raw, path = saved.read_bytes(), tmp_path / "t.npz"
    for n in range(0, len(raw), len(raw) // 40):
        path.write_bytes(raw[:n])
        with pytest.raises(DataError):
            Model.load(path)


def test_other_npz_is_not_a_scratch_model(tmp_path, capsys):
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    err = _err(capsys, ["scratch", "eval", str(tmp_path / "other.npz")])
    assert "is an .npz but not a cnnlab scratch model (no 'spec' entry)" in err and "hint:" in err


def test_missing_model_file(tmp_path, capsys):
    err = _err(capsys, ["scratch", "eval", str(tmp_path / "nope.npz")])
    assert "nope.npz not found" in err and "hint:" in err


# ------------------------------------------------------------------ 3. spec values


@pytest.mark.parametrize(
    "spec,msg",
    [
        ('[["conv",{"ksize":3,"chn":-4}]]', "conv1: 'chn' must be a whole number >= 1, got -4"),
        ('[["conv",{"ksize":3,"chn":0}]]', "conv1: 'chn' must be a whole number >= 1, got 0"),
        ('[["conv",{"ksize":3,"chn":2.5}]]', "conv1: 'chn' must be a whole number >= 1, got 2.5"),
        ('[["deconv",{"ksize":3,"chn":0}]]', "deconv1: 'chn' must be a whole number >= 1"),
        ('[["full",{"width":0}]]', "full1: 'width' must be a whole number >= 1, got 0"),
        ('[["full",{"width":"8"}]]', "full1: 'width' must be a whole number >= 1, got '8'"),
        ('[["conv",{"ksize":0,"chn":4}]]', "conv1: ksize must be an int >= 1"),
        ('[["conv",{"ksize":3,"chn":4}],["max",{"stride":-2}]]', "max1: ksize must be an int >= 1"),
        ('[["conv",{"ksize":3,"chn":4,"bias":"no"}]]', "conv1: 'bias' must be true or false"),
        ('[["dropout",{"rate":"a"}]]', "dropout1: dropout 'rate' must be a number in [0, 1)"),
        (
            '[["dropout",{"keep_prob":0}]]',
            "dropout1: dropout 'keep_prob' must be a number in (0, 1]",
        ),
        ('[["batch_normal",{"eps":-1}]]', "batch_normal1: batch-norm 'eps' must be a number > 0"),
    ],
)
def test_bad_spec_values_name_the_layer(spec, msg, tmp_path, capsys):
    path = tmp_path / "s.json"
    path.write_text(spec)
    err = _err(capsys, ["scratch", "summary", str(path)])
    assert f"error: {msg}" in err and "hint:" in err and "Traceback" not in err


@pytest.mark.parametrize("classes", ["-3", "0", "1"])
def test_summary_classes_must_be_two_or_more(classes, capsys):
    err = _err(capsys, ["scratch", "summary", "lenet5", "--classes", classes])
    assert f"error: --classes must be at least 2, got {classes}" in err and "hint:" in err


@pytest.mark.parametrize("shape", ["28,28,0", "28,-1,1", "0"])
def test_summary_input_sizes_must_be_positive(shape, capsys):
    assert "--input must be h,w,c" in _err(
        capsys, ["scratch", "summary", "lenet5", "--input", shape]
    )


def test_build_refuses_bad_classes_and_shapes():
    for n in (0, -3, 1, 2.5, True):
        with pytest.raises(ConfigError, match="number of classes must be a whole number >= 2"):
            build("lenet5", (28, 28, 1), n)
    with pytest.raises(ConfigError, match="input shape must be"):
        build("lenet5", (28, 28, 0), 10)
    assert build("lenet5", (28, 28, 1), 2).layers[-1].describe() == "Dense 84->2"
    assert build("lenet5", (28, 28, 1), None).layers[-1].describe() == "ReLU"  # no output layer


# ------------------------------------------------------------------ 4. scratch train numbers

TRAIN = ["scratch", "train", "lenet5", "--epochs", "1", "--no-progress"]


@pytest.mark.parametrize(
    "extra,msg",
    [
        (["--limit", "-5"], "--limit must be a whole number >= 1, got -5"),
        (["--limit", "0"], "--limit must be a whole number >= 1, got 0"),
        (["--lr", "nan"], "--lr must be a finite number > 0, got nan"),
        (["--lr", "inf"], "--lr must be a finite number > 0, got inf"),
        (["--lr", "0"], "--lr must be a finite number > 0, got 0"),
        (["--epochs", "0"], "--epochs must be a whole number >= 1, got 0"),
        (["--batch-size", "-1"], "--batch-size must be a whole number >= 1, got -1"),
        (["--warmup", "-3"], "--warmup must be a whole number >= 0, got -3"),
        (["--seed", "-1"], "--seed must be a whole number >= 0, got -1"),
        (["--threads", "0"], "--threads must be a whole number >= 1, got 0"),
        (["--momentum", "nan"], "--momentum must be a number in [0, 1), got nan"),
        (["--momentum", "1"], "--momentum must be a number in [0, 1), got 1"),
        (["--l2", "nan"], "--l2 must be a finite number >= 0, got nan"),
        (["--l1", "inf"], "--l1 must be a finite number >= 0, got inf"),
        (["--elastic-net", "nan", "--l1", "1e-5"], "--elastic-net must be a finite number >= 0"),
    ],
)
def test_train_refuses_bad_numbers(extra, msg, capsys):
    err = _err(capsys, [*TRAIN, *extra])
    assert f"error: {msg}" in err and "hint:" in err and "Traceback" not in err


def test_train_limit_takes_the_first_n(capsys):
    assert main([*TRAIN, "--limit", "32", "--batch-size", "32"]) == 0
    assert "digits 32 train" in " ".join(capsys.readouterr().out.split())


def test_library_refuses_nan_rates_and_penalties():
    with pytest.raises(ConfigError, match="learning rate must be a finite number > 0"):
        make_optimizer("adam", float("nan"))
    with pytest.raises(ConfigError, match="momentum must be a number in"):
        SGD(0.1, momentum=float("nan"))
    with pytest.raises(ConfigError, match="penalty strengths must be finite"):
        Penalty(l2=float("nan"))


class _PoisonOptimizer:
    """An optimiser whose only step turns a weight to NaN (as a huge or NaN rate would)."""

    lr = 0.1

    def step(self, model):
        model.layers[0].params["w"][...] = np.nan


def test_fit_stops_when_the_last_step_makes_the_weights_nan():
    # one mini-batch: the loss check before each step never sees the NaN weights
    model = build([["full", {"width": 4}]], (6,), 3)
    x, y = np.ones((8, 6), np.float32), np.arange(8) % 3
    with pytest.raises(TrainingDiverged, match=r"weights became NaN .* \(first: full1.w"):
        fit(model, _PoisonOptimizer(), x, y, epochs=1, batch_size=8, progress=False)
    with pytest.raises(ConfigError, match="epochs and batch_size must be >= 1"):
        fit(model, _PoisonOptimizer(), x, y, epochs=1, batch_size=0, progress=False)


# ------------------------------------------------------------------ 5. deconv --show size


def test_deconv_show_refuses_huge_matrices(capsys):
    err = _err(capsys, ["scratch", "deconv", "--input", "2000", "--show"])
    assert "--show would print a 4003x4003 matrix; it prints matrices of at most 64x64" in err
    assert "leave out --show" in err and "smaller --input" in err


def test_deconv_without_show_prints_only_the_sizes_when_huge(capsys):
    assert main(["scratch", "deconv", "--input", "100000x3", "--kernel", "5"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "100000x3 -> 200003x9" in out and "H' = (100000 - 1)*2 - 2*0 + 5 + 0 = 200003" in out
    assert "not printed: larger than 64x64" in out


def test_deconv_small_still_shows_everything(capsys):
    assert main(["scratch", "deconv", "--input", "2x2", "--show"]) == 0
    out = capsys.readouterr().out
    assert "2x2 -> 5x5" in out and "input x (2x2)" in out and "flip the kernel" in out


# ------------------------------------------------------------------ 6. eval on other image sizes


def test_eval_names_the_image_size_mismatch(tmp_path, capsys):
    model = build("lenet5", (28, 28, 1), 10)
    model.meta = {"data": "mnist", "mean": 0.0, "std": 1.0}
    path = model.save(tmp_path / "m28.npz")
    err = _err(capsys, ["scratch", "eval", str(path), "--data", "digits"])
    assert (
        "takes 28x28x1 images (it was trained on mnist); the digits test images are 32x32x1" in err
    )
    assert "hint: evaluate it on --data mnist" in err
