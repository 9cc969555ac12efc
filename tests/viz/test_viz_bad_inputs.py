"""Bad option values for `cnnlab filter` and `cnnlab viz features|heatmap` (found by fuzzing):
a clear error naming the option, exit 2, nothing written."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main
from cnnlab.errors import ConfigError
from cnnlab.viz.filters import get_kernel


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


@pytest.fixture
def rgb(tmp_path):
    path = tmp_path / "rgb.png"
    Image.fromarray((np.random.RandomState(0).rand(48, 64, 3) * 255).astype(np.uint8)).save(path)
    return path


@pytest.mark.parametrize(
    ("kernel", "says"),
    [
        ("nan,1;1,1", "entry nan (row 1, column 1) is not a finite number"),
        ("1,1;1,-inf", "entry -inf (row 2, column 2) is not a finite number"),
        ("1e308,1;1,1", "entry 1e+308 (row 1, column 1) is outside -1e+06..1e+06"),
    ],
)
def test_filter_kernel_entries_must_be_finite_and_bounded(rgb, tmp_path, capsys, kernel, says):
    out = tmp_path / "f.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 1e308 gave matplotlib overflow warnings before
        assert main(["filter", str(rgb), "-k", kernel, "-o", str(out)]) == 2
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert says in err and "hint: kernel entries must be finite" in err
    assert captured.out == "" and not out.exists()  # refused before any working is printed


def test_get_kernel_checks_arrays_too():
    with pytest.raises(ConfigError, match="not a finite number"):
        get_kernel(np.array([[0.0, np.nan], [1.0, 1.0]]))
    with pytest.raises(ConfigError, match="is outside"):
        get_kernel([[1e7]])
    assert get_kernel("1e6,-1e6").tolist() == [[1e6, -1e6]]  # the bounds themselves are fine


@pytest.mark.parametrize("n", ["0", "-3"])
def test_features_max_maps_must_be_positive(rgb, tmp_path, capsys, n):
    out = tmp_path / "feat.png"
    assert main(["viz", "features", "lenet5", str(rgb), f"--max-maps={n}", "-o", str(out)]) == 2
    assert f"--max-maps must be at least 1, got {n}" in _err(capsys)
    assert not out.exists()


@pytest.mark.parametrize("size", ["0", "-5"])
def test_heatmap_size_must_be_positive(rgb, tmp_path, capsys, size):
    out = tmp_path / "hm.png"
    assert main(["viz", "heatmap", "lenet5", str(rgb), f"--size={size}", "-o", str(out)]) == 2
    err = _err(capsys)
    assert f"--size must be a positive number of pixels, got {size}" in err
    assert "the image is" not in err and not out.exists()


def test_heatmap_size_below_the_model_names_the_option(rgb, tmp_path, capsys):
    out = tmp_path / "hm.png"
    assert main(["viz", "heatmap", "lenet5", str(rgb), "--size", "10", "-o", str(out)]) == 2
    err = _err(capsys)
    assert "--size 10 makes the image 10x13, smaller than the 32x32 model's training" in err
    assert "give --size 32 or more" in err and not out.exists()
    assert main(["viz", "heatmap", "lenet5", str(rgb), "--size", "40", "-o", str(out)]) == 0
    assert out.stat().st_size > 0
