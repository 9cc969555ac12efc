"""The dataset cache is tied to the files it was made from; `cnnlab cache` lists and clears it."""

import gzip
import hashlib
import os

import numpy as np
import pytest
import torch

from cnnlab.cli import main
from cnnlab.data import datasets, load_dataset
from cnnlab.data.datasets import cache as C
from cnnlab.errors import DataError


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def mnist_dir(tmp_path, monkeypatch):
    """A tiny MNIST in torchvision's layout, its md5s registered as the official ones."""
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    md5 = {}
    for prefix, n in (("train", 6), ("t10k", 4)):
        for stem, arr in ((f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28))),
                          (f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (n,)))):  # fmt: skip
            content = _idx(arr)
            (raw / (stem + ".gz")).write_bytes(gzip.compress(content, mtime=0))
            md5[stem] = hashlib.md5(content).hexdigest()
    monkeypatch.setitem(datasets.IDX_RAW_MD5, "MNIST", md5)
    return tmp_path / "data"


def test_a_cached_split_still_needs_its_source_files(mnist_dir, tmp_path):
    """User problem 2: once cached, a mistyped --data-dir passed silently."""
    first = load_dataset("mnist", "train", data_dir=mnist_dir)
    assert any((tmp_path / "cache" / "decoded").glob("mnist-train.pt"))
    again = load_dataset("mnist", "train", data_dir=mnist_dir)  # from the cache
    assert torch.equal(again.images, first.images)
    with pytest.raises(DataError, match="MNIST not found") as e:
        load_dataset("mnist", "train", data_dir=tmp_path / "typo")
    assert "typo" in e.value.message


def test_a_changed_source_is_read_again_not_served_from_the_cache(mnist_dir):
    load_dataset("mnist", "train", data_dir=mnist_dir)
    gz = mnist_dir / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    bad = bytearray(gzip.decompress(gz.read_bytes()))
    bad[-1] ^= 1
    gz.write_bytes(gzip.compress(bytes(bad)))
    with pytest.raises(DataError, match="corrupt"):
        load_dataset("mnist", "train", data_dir=mnist_dir)


def test_the_entry_records_path_size_and_checksum(mnist_dir):
    load_dataset("mnist", "test", data_dir=mnist_dir)
    state = torch.load(C.cache_dir() / "decoded" / "mnist-test.pt", weights_only=True)
    srcs = state["sources"]
    assert [os.path.basename(s["path"]) for s in srcs] == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]  # fmt: skip
    assert all(s["size"] > 0 and len(s["md5"]) == 32 for s in srcs)
    assert all(C.source_unchanged(s) for s in srcs)
    os.utime(srcs[0]["path"], ns=(1, 1))  # touched, same bytes: still valid by its checksum
    assert C.source_unchanged(srcs[0])


def test_cnnlab_cache_lists_and_clears(mnist_dir, capsys):
    assert main(["cache"]) == 0
    assert "empty" in capsys.readouterr().out
    load_dataset("mnist", "train", data_dir=mnist_dir)
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert "mnist-train.pt" in out and "total" in out and " KB" in out
    assert main(["cache", "clear"]) == 0
    assert "removed 1 cache entry" in capsys.readouterr().out
    assert not any(C.cache_dir().rglob("*.pt"))
    assert (mnist_dir / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file()  # untouched


def test_a_cache_path_that_is_a_file_is_an_error_not_an_empty_cache(tmp_path, monkeypatch, capsys):
    from cnnlab.cli import main

    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "afile"))
    assert main(["cache"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "is a file, so nothing can be cached" in err and "CNNLAB_CACHE" in err
