"""The ``cnnlab`` front: version, help listing every part, and how user errors are printed."""

import argparse
import subprocess
import sys

import pytest
import torch

import cnnlab
from cnnlab import cli
from cnnlab.errors import ShapeError


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"cnnlab {cnnlab.__version__}"


def test_help_lists_every_part(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    for command in ("shape", "summary", "compare", "models", "train", "eval", "predict", "demo",
                    "recipes", "cache"):  # fmt: skip
        assert command in out
    assert "scratch" in out


def test_python_dash_m_runs_the_same_command():
    r = subprocess.run(
        [sys.executable, "-m", "cnnlab", "--version"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0 and r.stdout.strip() == f"cnnlab {cnnlab.__version__}"


def test_user_error_is_one_message_with_brackets_kept(monkeypatch, capsys):
    def failing(args):
        raise ShapeError("conv2 expects input [mb, h, w, 6], got [32, 14, 14, 3]", "use [6]")

    parser = argparse.ArgumentParser()
    parser.set_defaults(func=failing, command="x")
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert "expects input [mb, h, w, 6], got [32, 14, 14, 3]" in err
    assert "use [6]" in err
    assert "Traceback" not in err


def test_user_text_is_printed_as_written_not_as_emoji(tmp_path, capsys):
    # rich turns ":fire:" into an emoji unless told not to: a path or name must stay as typed
    missing = tmp_path / "my:fire:pic.png"
    assert cli.main(["summary", "no:thumbs_down:net"]) == 2
    assert cli.main(["filter", str(missing), "-k", "box-blur", "-o", str(tmp_path / "o.png")]) == 2
    err = "".join(capsys.readouterr().err.split())  # rich may break a long path anywhere
    assert "no:thumbs_down" in err and "my:fire:pic.png" in err
    assert "\N{FIRE}" not in err and "\N{THUMBS DOWN SIGN}" not in err


def test_a_written_path_is_printed_whole_and_as_typed(tmp_path, capsys):
    # brackets are rich markup and a long path was split at 80 columns: neither may touch it
    from torchvision.io import write_png

    img = tmp_path / "in.png"
    write_png(torch.zeros(1, 16, 16, dtype=torch.uint8), str(img))
    folder = tmp_path / "[bold]runs"
    folder.mkdir()
    out = folder / ("a-rather-long-output-name-" * 4 + ".png")
    assert cli.main(["filter", str(img), "-k", "box-blur", "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out.splitlines()
