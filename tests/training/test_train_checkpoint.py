"""Atomic checkpoints and SHA-256 corruption detection."""

import pytest
import torch

from cnnlab.errors import DataError
from cnnlab.training import checkpoint as C


def test_roundtrip_is_weights_only_loadable(tmp_path):
    state = {"model": {"w": torch.randn(3, 3)}, "epoch": 2, "classes": ["a", "b"], "x": None}
    p = C.save_checkpoint(state, tmp_path / "last.pt")
    raw = torch.load(p, weights_only=True)  # plain data only: no pickled code
    assert raw["epoch"] == 2 and torch.equal(raw["model"]["w"], state["model"]["w"])
    line = (tmp_path / "last.pt.sha256").read_text()
    assert line.split() == [C.sha256_file(p), "last.pt"]
    assert C.load_checkpoint(p)["classes"] == ["a", "b"]


def test_crash_mid_write_keeps_the_old_file(tmp_path, monkeypatch):
    p = C.save_checkpoint({"epoch": 1, "w": torch.ones(1000)}, tmp_path / "last.pt")
    before = p.read_bytes()

    def dying_save(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full (simulated crash)")

    monkeypatch.setattr(C.torch, "save", dying_save)
    with pytest.raises(OSError, match="simulated"):
        C.save_checkpoint({"epoch": 2, "w": torch.zeros(1000)}, p)
    monkeypatch.undo()
    assert p.read_bytes() == before
    assert C.load_checkpoint(p)["epoch"] == 1  # checksum still matches
    assert sorted(x.name for x in tmp_path.iterdir()) == ["last.pt", "last.pt.sha256"]


def test_corruption_is_detected_with_a_clear_message(tmp_path):
    p = C.save_checkpoint({"w": torch.randn(100)}, tmp_path / "best.pt")
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupt") as e:
        C.load_checkpoint(p)
    assert "best.pt.sha256" in e.value.message and "last.pt" in e.value.hint


def test_truncated_file_without_sidecar_is_a_data_error(tmp_path):
    p = C.save_checkpoint({"w": torch.randn(100)}, tmp_path / "x.pt")
    (tmp_path / "x.pt.sha256").unlink()
    p.write_bytes(p.read_bytes()[:50])
    with pytest.raises(DataError, match="cannot read checkpoint"):
        C.load_checkpoint(p)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        C.load_checkpoint(tmp_path / "nope.pt")
