"""Architecture drawings: every zoo model draws; the structure the slides show is there."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

import cnnlab
from cnnlab.analysis.resolve import load_model
from cnnlab.models import list_models
from cnnlab.viz.draw import Dense, Par, Repeat, Res, Seq, draw, layout, to_svg


def _walk(item):
    yield item
    for attr in ("items", "branches"):
        for child in getattr(item, attr, []):
            yield from _walk(child)
    for attr in ("main", "shortcut", "body", "item", "merge"):
        child = getattr(item, attr, None)
        if child is not None and not isinstance(child, (str, int)):
            yield from _walk(child)


def _drawing(name):
    model, size, _ = load_model(name)
    return layout(cnnlab.summary(model, size, model_name=name))


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_every_zoo_model_draws_to_valid_svg(name):
    d = _drawing(name)
    root = ET.fromstring(to_svg(d))
    assert root.tag.endswith("svg")
    assert d.boxes >= 2
    assert float(root.get("width")) > 100 and float(root.get("height")) > 50


def test_inception_branches_side_by_side():
    d = _drawing("googlenet")
    pars = [i for i in _walk(d.structure) if isinstance(i, Par)]
    assert len(pars) == 9  # 3a, 3b, 4a-4e, 5a, 5b
    assert all(len(p.branches) == 4 for p in pars)
    assert all(p.merge.merge == "C" for p in pars)


def test_residual_blocks_and_repeats():
    d = _drawing("resnet152")
    reps = [i for i in _walk(d.structure) if isinstance(i, Repeat)]
    # 3, 8, 36, 3 bottlenecks: the first of each stage has a projection shortcut
    assert sorted(r.times for r in reps) == [2, 2, 7, 35]
    res = [i for i in _walk(d.structure) if isinstance(i, Res)]
    assert sum(1 for r in res if r.shortcut.items) == 4
    assert "x 35" in to_svg(d)


def test_dense_connections():
    d = _drawing("densenet121")
    reps = [i for i in _walk(d.structure) if isinstance(i, Repeat)]
    assert sorted(r.times for r in reps) == [6, 12, 16, 24]
    assert all(isinstance(r.item, Dense) for r in reps)


def test_plain_chain_has_no_branches():
    d = _drawing("alexnet")
    assert not [i for i in _walk(d.structure) if isinstance(i, (Par, Res, Dense, Repeat))]
    assert isinstance(d.structure, Seq)
    svg = to_svg(d)
    assert "conv 11x11/4" in svg and "64x55x55" in svg and "fc" in svg


def test_draw_writes_svg_and_png_and_refuses_other_names(tmp_path, tiny):
    from cnnlab.errors import ConfigError

    d = draw(tiny, (3, 16, 16), tmp_path / "t.svg", model_name="tiny")
    assert (tmp_path / "t.svg").read_text().startswith("<svg")
    draw(tiny, (3, 16, 16), tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    assert d.boxes == 6  # conv, pool, conv, pool, flatten, fc
    with pytest.raises(ConfigError, match=".svg or .png"):
        draw(tiny, (3, 16, 16), tmp_path / "t.gif")
    assert not (tmp_path / "t.gif").exists()
