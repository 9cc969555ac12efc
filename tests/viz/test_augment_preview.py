"""`cnnlab augment preview`: one image under each operation of a preset and seed 000's
variations; clear errors for a missing dataset or preset."""

import subprocess
import sys

import pytest
import torch

from cnnlab.cli import main
from cnnlab.data import Augment
from cnnlab.errors import ConfigError
from cnnlab.viz.augment_preview import VARIATIONS, preview_rows


def image(c=3, h=24, w=28):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (c, h, w), generator=g, dtype=torch.uint8)


def test_rows_are_the_presets_operations_then_the_variations():
    rows, notes = preview_rows(image(), "strong", samples=4)
    titles = [t for t, _ in rows]
    assert titles[0] == "original" and "preset strong: all of it" in titles
    for op in ("horizontal flip", "pad + random crop", "brightness", "contrast", "saturation",
               "rotate", "stretch", "shear", "cutout"):  # fmt: skip
        assert any(t.startswith(op + ":") for t in titles), op
    assert titles[-len(VARIATIONS) :] == list(VARIATIONS)
    assert all(x.shape == (4, 3, 24, 28) and x.dtype == torch.uint8 for _, x in rows)
    assert (rows[0][1] == image()).all()
    for title, x in rows[1:]:
        if not title.startswith("horizontal flip"):  # p = 0.5: four draws may all skip it
            assert (x != image()).any(), title
    assert "clutter" in notes[-1]


def test_each_row_is_a_real_augment_call():
    rows, _ = preview_rows(image(), "strong", samples=3, seed=5)
    rotate = dict(rows)[next(t for t, _ in rows if t.startswith("rotate:"))]
    ref = Augment(seed=5, rotate=15.0, warp_p=1.0, fill=0.0)(image().expand(3, -1, -1, -1))
    assert torch.equal(rotate, ref)


def test_gray_image_and_bad_input():
    rows, _ = preview_rows(image(c=1), "digits", samples=2)
    assert rows[1][1].shape == (2, 1, 24, 28)
    with pytest.raises(ConfigError, match="unknown augmentation preset"):
        preview_rows(image(), "strnog")
    with pytest.raises(ConfigError, match="uint8"):
        preview_rows(image().float(), "strong")


def test_cli_preview_from_a_dataset(tmp_path, capsys):
    out = tmp_path / "grid.png"
    args = ["augment", "preview", "--preset", "flip-crop", "--data", "digits", "--index", "3"]
    assert main([*args, "--samples", "3", "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert "occlusion (cutout)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--data", "mnist", "--data-dir", "NODIR"], "MNIST not found"),
        (["--data", "mnsit"], "unknown dataset"),
        (["--preset", "flp", "--data", "digits"], "did you mean: flip"),
        ([], "give IMAGE or --data"),
        (["--data", "digits", "--index", "99999"], "outside"),
    ],
)
def test_cli_bad_input_exit_2_nothing_written(args, msg, tmp_path, capsys):
    out = tmp_path / "grid.png"
    args = [a.replace("NODIR", str(tmp_path / "none")) for a in args]
    assert main(["augment", "preview", *args, "-o", str(out)]) == 2
    assert msg in " ".join(capsys.readouterr().err.split())
    assert not out.exists()


def test_cli_missing_dataset_through_subprocess(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "cnnlab", "augment", "preview", "--data", "cifar100",
         "--data-dir", str(tmp_path), "-o", str(tmp_path / "g.png")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr and "not found" in r.stderr
