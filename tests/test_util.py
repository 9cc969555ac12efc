"""The shared helpers of cnnlab._util: one of each, used everywhere."""

from __future__ import annotations

import warnings

import pytest

from cnnlab._util import atomic_write, derive_seed, epoch_permutation, fmt_count, parse_input
from cnnlab.errors import ConfigError


def test_atomic_write_bytes_text_and_writer(tmp_path):
    p = tmp_path / "sub" / "f.txt"
    atomic_write(p, "héllo")
    assert p.read_text(encoding="utf-8") == "héllo"
    atomic_write(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    atomic_write(p, lambda f: f.write(b"from a writer"))
    assert p.read_bytes() == b"from a writer"
    assert sorted(x.name for x in p.parent.iterdir()) == ["f.txt"]


def test_atomic_write_failure_keeps_the_old_file_and_no_temp(tmp_path):
    p = tmp_path / "f.txt"
    atomic_write(p, "old")

    def dies(f):
        f.write(b"half")
        raise KeyboardInterrupt  # even Ctrl-C mid-write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(p, dies)
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["f.txt"]


def test_parse_input_channels_first():
    assert parse_input("3x224x224") == (3, 224, 224)
    assert parse_input(" 64 × 56 × 56 ") == (64, 56, 56)
    assert parse_input((1, 28, 28)) == (1, 28, 28)
    assert parse_input("9216", flat=True) == (9216,)


def test_parse_input_reads_the_seeds_hxwxc_with_a_note():
    notes = []
    assert parse_input("32x32x3", on_note=notes.append) == (3, 32, 32)
    assert "H x W x C" in notes[0] and "3x32x32" in notes[0]
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert parse_input("227x227x1") == (1, 227, 227)
    assert "H x W x C" in str(w[0].message)


@pytest.mark.parametrize("text", ["512x1x1", "64x4x4", "256x3x3", "2048x1x1"])
def test_parse_input_keeps_a_square_map_after_pooling_channels_first(text):
    # the last two equal: a C x H x W map (a 512 x 1 x 1 image is not what anyone means)
    notes = []
    assert parse_input(text, on_note=notes.append) == tuple(int(v) for v in text.split("x"))
    assert notes == []


def test_parse_input_says_which_order_it_used_when_it_guesses():
    notes = []
    assert parse_input("32x32x64", on_note=notes.append) == (32, 32, 64)
    assert "C=32, H=32, W=64" in notes[0] and "64x32x32" in notes[0]
    notes.clear()
    assert parse_input("3x3x3", on_note=notes.append) == (3, 3, 3)  # no guess to report
    assert notes == []


@pytest.mark.parametrize(
    "text, match",
    [("3x227", "malformed --input '3x227': 2 numbers"), ("abc", "malformed --input 'abc'"),
     ("3x0x5", "a dimension is zero"), ("224", "1 number"), ((3, -1, 2), "positive integers")],
)  # fmt: skip
def test_parse_input_errors_name_the_form(text, match):
    with pytest.raises(ConfigError, match=match) as e:
        parse_input(text)
    assert "CxHxW" in e.value.hint or "C, H, W" in e.value.hint


def test_fmt_count():
    assert fmt_count(1_820_000_000) == "1.82G"
    assert fmt_count(72_900_000) == "72.9M"
    assert fmt_count(419_900) == "419.9K"
    assert fmt_count(512) == "512"
    assert fmt_count(0) == "" and fmt_count(None) == ""


def test_seeds_and_epoch_permutation_are_pure_functions():
    assert derive_seed(0, "init") == derive_seed(0, "init") != derive_seed(1, "init")
    assert 0 <= derive_seed(3, 7, 0) < 2**63
    a, b = epoch_permutation(100, 0, 1), epoch_permutation(100, 0, 1)
    assert a.tolist() == b.tolist() and sorted(a.tolist()) == list(range(100))
    assert a.tolist() != epoch_permutation(100, 0, 2).tolist()
    assert a.tolist() != epoch_permutation(100, 1, 1).tolist()


def test_atomic_write_gives_the_mode_a_plain_open_would(tmp_path):
    # mkstemp creates 0600 files; users' PNGs and JSON must stay readable as open() makes them
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = atomic_write(tmp_path / "atomic.txt", "x")
    assert atomic.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_frozen_heap_hides_the_existing_objects_from_the_collector_only_while_it_runs():
    import gc

    from cnnlab._util import frozen_heap

    before = gc.get_freeze_count()
    seen = []

    @frozen_heap()
    def work():
        seen.append(gc.get_freeze_count())
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        work()
    assert seen[0] > before  # the heap that existed was frozen while the function ran
    assert gc.get_freeze_count() == before  # and handed back, even after an exception


def test_atomic_write_says_what_is_in_the_way(tmp_path):
    # a folder at the path, or a file where a folder must be: named, not "File exists" or the
    # hidden temporary file's name
    with pytest.raises(OSError, match="it is a folder") as e:
        atomic_write(tmp_path, b"x")
    assert str(tmp_path) in str(e.value) and ".tmp" not in str(e.value)
    (tmp_path / "afile").write_text("in the way")
    with pytest.raises(OSError, match="afile is a file, not a folder"):
        atomic_write(tmp_path / "afile" / "sub" / "out.md", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
