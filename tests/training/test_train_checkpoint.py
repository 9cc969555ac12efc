"""Atomic checkpoints whose checksum lives inside the file; corruption detected with a clear
message, wherever the file is."""

import hashlib
import shutil

import pytest
import torch

from cnnlab.errors import DataError
from cnnlab.training import checkpoint as C


def test_roundtrip_is_weights_only_loadable(tmp_path):
    state = {"model": {"w": torch.randn(3, 3)}, "epoch": 2, "classes": ["a", "b"], "x": None}
    p = C.save_checkpoint(state, tmp_path / "last.pt")
    raw = torch.load(p, weights_only=True)  # plain data only: no pickled code
    assert raw["epoch"] == 2 and torch.equal(raw["model"]["w"], state["model"]["w"])
    assert raw["sha256"] == C.content_digest({k: v for k, v in raw.items() if k != "sha256"})
    assert C.load_checkpoint(p)["classes"] == ["a", "b"]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["last.pt"]  # one file, no sidecar


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
    assert sorted(x.name for x in tmp_path.iterdir()) == ["last.pt"]


def test_a_full_disk_is_an_oserror_not_unexpected_pos(tmp_path, monkeypatch):
    import errno
    import io

    import cnnlab._util as U

    p = C.save_checkpoint({"w": torch.ones(100)}, tmp_path / "last.pt")
    before = p.read_bytes()
    real_fdopen = U.os.fdopen

    class Full(io.RawIOBase):
        def __init__(self, f):
            self.f, self.n = f, 0

        def writable(self):
            return True

        def write(self, b):
            self.n += len(b)
            if self.n > 1000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(b)

        def close(self):
            self.f.close()

        def fileno(self):
            return self.f.fileno()

    monkeypatch.setattr(U.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space left on device"):
        C.save_checkpoint({"w": torch.zeros(10_000)}, p)
    monkeypatch.undo()
    assert p.read_bytes() == before and sorted(x.name for x in tmp_path.iterdir()) == ["last.pt"]


def _flip_tensor_byte(path):
    """Change one byte of a tensor's storage in the zip (the stored bytes, not the pickle)."""
    data = bytearray(path.read_bytes())
    w = torch.load(path, weights_only=True)["w"]
    at = bytes(data).find(w.numpy().tobytes()[:64])
    assert at > 0
    data[at + 8] ^= 0x01
    path.write_bytes(bytes(data))


def test_bit_flip_is_detected_even_outside_the_run_folder(tmp_path):
    p = C.save_checkpoint({"w": torch.randn(100)}, tmp_path / "run" / "best.pt")
    copy = tmp_path / "elsewhere.pt"
    shutil.copy(p, copy)
    _flip_tensor_byte(copy)
    with pytest.raises(DataError, match="corrupt") as e:
        C.load_checkpoint(copy)
    assert "last.pt" in e.value.hint


def test_damaged_empty_and_foreign_files_are_data_errors(tmp_path):
    p = C.save_checkpoint({"w": torch.randn(100)}, tmp_path / "x.pt")
    p.write_bytes(p.read_bytes()[:50])
    with pytest.raises(DataError, match="cannot read checkpoint .*corrupt, truncated"):
        C.load_checkpoint(p)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(DataError, match="cannot read checkpoint"):
        C.load_checkpoint(tmp_path / "empty.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(DataError, match="holds a list, not a dict"):
        C.load_checkpoint(tmp_path / "list.pt")
    with pytest.raises(DataError, match="is a folder"):
        C.load_checkpoint(tmp_path)


def test_v01_sidecar_is_still_checked(tmp_path):
    p = tmp_path / "old.pt"
    torch.save({"w": torch.randn(10)}, p)
    good = hashlib.sha256(p.read_bytes()).hexdigest()
    (tmp_path / "old.pt.sha256").write_text(f"{good}  old.pt\n")
    assert C.load_checkpoint(p)["w"].shape == (10,)
    (tmp_path / "old.pt.sha256").write_text(f"{'0' * 64}  old.pt\n")
    with pytest.raises(DataError, match="corrupt.*old.pt.sha256"):
        C.load_checkpoint(p)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        C.load_checkpoint(tmp_path / "nope.pt")
