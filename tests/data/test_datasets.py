"""Dataset loaders on small files written in the official layouts (never ../shared)."""

import gzip
import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest
import torch

from cnnlab.data import datasets, load_dataset, safe_extract
from cnnlab.errors import ConfigError, DataError


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def _add(tar, name, data: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _ints(a):
    return [int(v) for v in a]  # the official files hold plain Python ints


def _batch(rng, n, **labels):
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    d = {
        b"batch_label": b"a batch",
        b"data": data,
        b"filenames": [b"f%d.png" % i for i in range(n)],
    }
    d.update({k.encode(): v for k, v in labels.items()})
    return d


def _cifar100_tar(tmp_path, n_train=12, n_test=6):
    rng = np.random.default_rng(0)
    parts = {}
    for split, n in (("train", n_train), ("test", n_test)):
        parts[split] = _batch(
            rng,
            n,
            fine_labels=_ints(rng.integers(0, 4, n)),
            coarse_labels=_ints(rng.integers(0, 2, n)),
        )
    meta = {
        b"fine_label_names": [b"apple", b"bee", b"cloud", b"dolphin"],
        b"coarse_label_names": [b"fruit", b"other"],
    }
    path = tmp_path / "data" / "cifar-100-python.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, obj in (*parts.items(), ("meta", meta)):
            _add(tar, f"cifar-100-python/{name}", pickle.dumps(obj, protocol=2))
    return path, parts


def _cifar10_tar(tmp_path):
    rng = np.random.default_rng(1)
    batches = {
        f"data_batch_{i}": _batch(rng, 3, labels=_ints(rng.integers(0, 10, 3))) for i in range(1, 6)
    }
    batches["test_batch"] = _batch(rng, 4, labels=_ints(rng.integers(0, 10, 4)))
    names = [
        b"airplane",
        b"automobile",
        b"bird",
        b"cat",
        b"deer",
        b"dog",
        b"frog",
        b"horse",
        b"ship",
        b"truck",
    ]
    path = tmp_path / "data" / "cifar-10-python.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, "cifar-10-batches-py/batches.meta", pickle.dumps({b"label_names": names}))
        for name, obj in batches.items():
            _add(tar, f"cifar-10-batches-py/{name}", pickle.dumps(obj))
    return path, batches


def test_cifar100_pickle_layout(tmp_path, monkeypatch):
    path, parts = _cifar100_tar(tmp_path)
    monkeypatch.setitem(datasets.ARCHIVE_MD5, path.name, _md5(path))
    train = load_dataset("cifar100", "train", data_dir=path.parent)
    test = load_dataset("cifar-100", "test", data_dir=path.parent)
    assert train.images.shape == (12, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (6, 3, 32, 32)
    expected = torch.from_numpy(parts["train"][b"data"]).view(
        12, 3, 32, 32
    )  # rows are R, G, B planes
    assert torch.equal(train.images, expected)
    assert train.labels.tolist() == [int(v) for v in parts["train"][b"fine_labels"]]
    assert train.classes == ["apple", "bee", "cloud", "dolphin"]
    coarse = load_dataset("cifar100", "test", data_dir=path.parent, coarse=True)
    assert coarse.classes == ["fruit", "other"]
    assert coarse.labels.tolist() == [int(v) for v in parts["test"][b"coarse_labels"]]


def test_cifar10_pickle_layout(tmp_path, monkeypatch):
    path, batches = _cifar10_tar(tmp_path)
    monkeypatch.setitem(datasets.ARCHIVE_MD5, path.name, _md5(path))
    train = load_dataset("cifar10", "train", data_dir=path.parent)
    test = load_dataset("cifar10", "test", data_dir=path.parent)
    assert len(train) == 15 and len(test) == 4 and train.num_classes == 10
    order = [batches[f"data_batch_{i}"] for i in range(1, 6)]
    assert train.labels.tolist() == [int(v) for b in order for v in b[b"labels"]]
    assert torch.equal(test.images.flatten(1), torch.from_numpy(batches["test_batch"][b"data"]))
    assert train.classes[0] == "airplane"


def test_cifar10_unpacked_folder_checked_file_by_file(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    path, batches = _cifar10_tar(tmp_path)
    data = tmp_path / "unpacked"
    safe_extract(path, data)  # torchvision's layout after download: data/cifar-10-batches-py/
    folder = data / "cifar-10-batches-py"
    md5 = {f.name: _md5(f) for f in folder.iterdir()}
    monkeypatch.setattr(
        tvd.CIFAR10,
        "train_list",
        [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)],
    )
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(tvd.CIFAR10, "meta", {**tvd.CIFAR10.meta, "md5": md5["batches.meta"]})
    test = load_dataset("cifar10", "test", data_dir=data)
    assert torch.equal(test.images.flatten(1), torch.from_numpy(batches["test_batch"][b"data"]))
    (folder / "data_batch_3").write_bytes(b"truncated")
    with pytest.raises(
        DataError, match=r"data_batch_3 is corrupt .*expected " + md5["data_batch_3"]
    ):
        load_dataset("cifar10", "train", data_dir=data)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3 does not exist"):
        load_dataset("cifar10", "train", data_dir=data)


def test_md5_mismatch_names_file_folder_and_md5s(tmp_path, monkeypatch):
    path, _ = _cifar100_tar(tmp_path)
    good = _md5(path)
    monkeypatch.setitem(datasets.ARCHIVE_MD5, path.name, good)
    with open(path, "ab") as f:
        f.write(b"junk")  # a corrupt download
    bad = _md5(path)
    with pytest.raises(DataError) as err:
        load_dataset("cifar100", data_dir=path.parent)
    e = err.value
    assert e.message == (f"CIFAR-100: {path} is corrupt or incomplete (md5 {bad}, expected {good})")
    assert e.hint == (
        f"delete it and put a good copy of cifar-100-python.tar.gz (md5 {good}) in {path.parent}/"
        " from https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    )


def test_missing_archive_says_what_to_put_where(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("cifar100", data_dir=tmp_path)
    e = err.value
    assert e.message == (
        f"CIFAR-100 not found: {tmp_path / 'cifar-100-python.tar.gz'} does not exist"
    )
    assert e.hint.startswith(
        f"put cifar-100-python.tar.gz (md5 eb9058c3a382ffc7106e4002c42a8d85) in {tmp_path}/; "
        "download it from https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    )
    with pytest.raises(DataError, match="c58f30108f718f92721af3b95e74349a"):
        load_dataset("cifar10", data_dir=tmp_path)


@pytest.mark.parametrize(
    "name,kind",
    [("../evil", "file"), ("/abs/evil", "file"), ("ok/../../evil", "file"), ("link", "sym")],
)
def test_safe_extract_rejects_escapes(tmp_path, name, kind):
    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "fine.txt", b"fine")
        if kind == "sym":
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            _add(tar, name, b"evil")
    dest = tmp_path / "out" / "inner"
    with pytest.raises(DataError, match="refusing to extract"):
        safe_extract(archive, dest)
    assert not (tmp_path / "out" / "evil").exists() and not (tmp_path / "evil").exists()
    assert not (dest / "fine.txt").exists()  # nothing at all is extracted from a bad archive


def _idx(array: np.ndarray) -> bytes:
    kind = 0x08  # unsigned byte
    header = bytes([0, 0, kind, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def test_mnist_idx_files_verified_by_content(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    files = {
        "train-images-idx3-ubyte": _idx(rng.integers(0, 256, (7, 28, 28))),
        "train-labels-idx1-ubyte": _idx(rng.integers(0, 10, (7,))),
        "t10k-images-idx3-ubyte": _idx(rng.integers(0, 256, (3, 28, 28))),
        "t10k-labels-idx1-ubyte": _idx(rng.integers(0, 10, (3,))),
    }
    raw_md5 = {}
    for stem, content in files.items():
        (raw / (stem + ".gz")).write_bytes(gzip.compress(content, mtime=0))
        raw_md5[stem] = hashlib.md5(content).hexdigest()
    # our .gz bytes differ from the official ones: accepted because the content matches
    monkeypatch.setitem(datasets.IDX_RAW_MD5, "MNIST", raw_md5)
    train = load_dataset("mnist", "train", data_dir=tmp_path / "data")
    assert train.images.shape == (7, 1, 28, 28) and train.images.dtype == torch.uint8
    assert torch.equal(
        train.images[:, 0],
        torch.from_numpy(
            np.frombuffer(files["train-images-idx3-ubyte"][16:], np.uint8).reshape(7, 28, 28).copy()
        ),
    )
    assert train.labels.tolist() == list(files["train-labels-idx1-ubyte"][8:])
    padded = load_dataset("mnist", "test", data_dir=tmp_path / "data", pad_to=32)
    assert padded.images.shape == (3, 1, 32, 32)
    # different content: rejected with the expected (official) and found md5
    bad = bytearray(files["t10k-labels-idx1-ubyte"])
    bad[-1] ^= 1
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(bad)))
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache2"))
    with pytest.raises(
        DataError,
        match=r"t10k-labels-idx1-ubyte.gz is corrupt .*expected ec29112dd5afa0611ce80d1b7f02629c",
    ):
        load_dataset("mnist", "test", data_dir=tmp_path / "data")
    (raw / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="MNIST not found") as err:
        load_dataset("mnist", "test", data_dir=tmp_path / "data")
    assert str(raw) in err.value.hint and "t10k-labels-idx1-ubyte.gz" in err.value.hint


def _jpeg(value, size=(32, 32)):
    import warnings

    from torchvision.io import encode_jpeg

    img = torch.full((3, *size), value, dtype=torch.uint8)
    img[0, : size[0] // 2] = 255 - value  # some structure
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torchvision 0.29: use TorchCodec
        return encode_jpeg(img, quality=95).numpy().tobytes()


def test_image_folder_with_splits_mixed_sizes_and_cache(tmp_path, cache):
    root = tmp_path / "pets"
    for split, n in (("train", 3), ("test", 2)):
        for c, cls in enumerate(("cat", "dog")):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                (d / f"{i}.jpg").write_bytes(_jpeg(40 + 100 * c + i))
    train = load_dataset(str(root), "train")
    assert train.images.shape == (6, 3, 32, 32) and train.classes == ["cat", "dog"]
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert abs(int(train.images[3, 1, 20, 20]) - 140) <= 3  # decoded pixels (JPEG, lossy)
    assert len(load_dataset(root, "test")) == 4
    assert any(cache.rglob("folder-*.pt"))
    again = load_dataset(str(root), "train")  # from the cached tensors
    assert torch.equal(again.images, train.images)
    (root / "train" / "dog" / "big.jpg").write_bytes(_jpeg(9, size=(40, 48)))
    with pytest.raises(DataError, match="(?s)2 different sizes.*image-size"):
        load_dataset(str(root), "train")
    resized = load_dataset(str(root), "train", image_size=24)
    assert resized.images.shape == (7, 3, 24, 24)


def test_image_folder_without_splits_is_split_per_class(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / "flat" / cls).mkdir(parents=True)
        for i in range(10):
            (tmp_path / "flat" / cls / f"{i}.jpg").write_bytes(_jpeg(10 * i, size=(8, 8)))
    train = load_dataset(tmp_path / "flat", "train")
    test = load_dataset(tmp_path / "flat", "test")
    assert len(train) == 16 and len(test) == 4
    assert torch.bincount(test.labels).tolist() == [2, 2]


def test_cifar10_jpeg_tarball_decoded_once_and_cached(tmp_path, monkeypatch, cache):
    path = tmp_path / "data" / "cifar10-jpeg.tar.gz"
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as tar:
        for split, n in (("train", 2), ("test", 1)):
            for c, cls in enumerate(("airplane", "automobile")):
                for i in range(n):
                    _add(tar, f"cifar10-jpeg/{split}/{cls}/{i:04d}.jpg", _jpeg(30 + 90 * c + i))
    monkeypatch.setitem(datasets.ARCHIVE_MD5, path.name, _md5(path))
    train = load_dataset("cifar10-jpeg", "train", data_dir=path.parent)
    assert train.images.shape == (4, 3, 32, 32) and train.labels.tolist() == [0, 0, 1, 1]
    assert train.classes == ["airplane", "automobile"]
    import shutil

    shutil.rmtree(cache / "extracted")  # the decoded tensor file is enough from now on
    again = load_dataset("cifar10-jpeg", "train", data_dir=path.parent)
    assert torch.equal(again.images, train.images)
    # a damaged cache file is detected by its checksum and rebuilt from the archive
    pt = next(cache.rglob("cifar10-jpeg-*-train.pt"))
    state = torch.load(pt, weights_only=True)
    state["images"][0, 0, 0, 0] ^= 1
    torch.save(state, pt)
    rebuilt = load_dataset("cifar10-jpeg", "train", data_dir=path.parent)
    assert torch.equal(rebuilt.images, train.images)


def test_unknown_names_and_splits():
    with pytest.raises(ConfigError, match="cifar100"):
        load_dataset("cifar1000")
    with pytest.raises(ConfigError, match="'train', 'val' or 'test'"):
        load_dataset("digits", "validation")
    with pytest.raises(ConfigError, match="coarse"):
        load_dataset("cifar10", coarse=True)
