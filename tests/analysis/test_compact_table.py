"""The 80-column summary table (`cnnlab summary --compact`)."""

import pytest
import torch

from cnnlab.analysis import summary
from cnnlab.cli import main
from cnnlab.models import create


@pytest.mark.parametrize("name", ["densenet121", "googlenet", "resnet50", "alexnet2012"])
def test_every_line_fits_80_columns(name):
    with torch.device("meta"):
        s = summary(create(name), get_size(name))
    text = s.to_text(compact=True)
    assert max(len(line) for line in text.splitlines()) <= 80
    head = text.splitlines()[2].split()
    assert head == ["Layer", "Type", "Output", "K/S/P", "Params", "MACs", "RF"]
    assert f"{s.totals['params']:,}" in text  # the totals row keeps the exact parameter count


def get_size(name):
    from cnnlab.models.registry import get_info

    return get_info(name).input_size


def test_compact_rows_hold_the_same_numbers():
    with torch.device("meta"):
        s = summary(create("alexnet"), (3, 224, 224))
    lines = s.to_text(compact=True).splitlines()
    conv1 = next(line for line in lines if line.strip().startswith("features.0 "))
    assert conv1.split() == ["features.0", "Conv2d", "64x55x55", "11/4/2", "23,296", "70.3M", "11"]


def test_long_names_are_clipped_from_the_left_and_types_from_the_right():
    from cnnlab.analysis.render import _fit

    row = ["features.denseblock4.denselayer16.conv2", "AdaptiveAvgPool2d", "32x7x7"]
    widths = [len(c) for c in row]
    (clipped,) = _fit([row], widths, 50)
    assert clipped[0].startswith("…") and clipped[0].endswith("conv2")
    assert sum(widths) + 2 * len(widths) <= 50 and len(clipped[0]) == widths[0]


def test_cli_compact_and_its_misuse(capsys, tmp_path):
    out = tmp_path / "t.txt"
    assert main(["summary", "resnet18", "--compact", "-o", str(out)]) == 0
    assert max(len(line) for line in out.read_text().splitlines()) <= 80
    assert main(["summary", "resnet18", "--compact", "--format", "json"]) == 2
    assert "--compact" in capsys.readouterr().err


def test_a_narrow_terminal_gets_the_compact_table_by_itself():
    import io

    from rich.console import Console

    with torch.device("meta"):
        s = summary(create("alexnet"), (3, 224, 224))
    narrow, wide = io.StringIO(), io.StringIO()
    s.print(Console(file=narrow, width=80, force_terminal=True, color_system=None))
    s.print(Console(file=wide, width=200, force_terminal=True, color_system=None))
    assert "K/S/P" in narrow.getvalue() and "Memory KiB" not in narrow.getvalue()
    assert "Memory KiB" in wide.getvalue()
