"""benchmarks/train_cpu.py: rounds of both sides, medians in the verdict, on a small MNIST."""

import gzip
import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import train_cpu as B  # noqa: E402
from cnnlab.data import datasets  # noqa: E402


@pytest.fixture
def small_mnist(tmp_path, monkeypatch):
    """600 training and 100 test images in MNIST's files (idx, gzip), accepted by content."""
    rng = np.random.default_rng(0)
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    md5 = {}
    for stem, n in (("train", 600), ("t10k", 100)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):  # a bright bar per class: learnable
            images[i, 2 + 2 * c : 4 + 2 * c, 4:24] = 250
        for kind, arr, magic in (("images", images, 3), ("labels", labels, 1)):
            body = bytes([0, 0, 8, magic]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
            body += arr.tobytes()
            name = f"{stem}-{kind}-idx{magic}-ubyte"
            (raw / f"{name}.gz").write_bytes(gzip.compress(body, mtime=0))
            md5[name] = hashlib.md5(body).hexdigest()
    monkeypatch.setitem(datasets.IDX_RAW_MD5, "MNIST", md5)
    # a decoded official MNIST in the user's cache is what any accepted copy holds; not these
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _main(monkeypatch, *argv) -> None:
    monkeypatch.setattr(sys, "argv", ["train_cpu.py", *argv])
    assert B.main() == 0


def test_rounds_are_printed_and_the_verdict_takes_their_medians(small_mnist, monkeypatch, capsys):
    _main(monkeypatch, "--data-dir", str(small_mnist / "data"), "--runs-dir",
          str(small_mnist / "runs"), "--threads", "1", "--repeats", "2", "--skip-nchw",
          "--target", "1")  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    ours = [x for x in out if x.startswith("cnnlab ")]
    course = [x for x in out if x.startswith("course loop")]
    assert [x[-11:] for x in ours] == ["[round 1/2]", "[round 2/2]"]
    assert [x[-11:] for x in course] == ["[round 1/2]", "[round 2/2]"]
    walls = [float(x.split(":")[1].split(" s,")[0]) for x in ours + course]  # printed to 0.1 s
    ratio = next(x for x in out if x.startswith("ratio"))
    median = float(ratio.split("median ")[1].split("x")[0])
    rounds = [
        float(v) for v in ratio.split("rounds: ")[1].split(";")[0].replace("x", "").split(" / ")
    ]
    assert len(rounds) == 2 and median == pytest.approx(sum(rounds) / 2, abs=0.01)
    verdict = next(x for x in out if x.startswith("verdict"))
    wall = float(verdict.split("cnnlab median ")[1].split(" s")[0])
    assert abs(wall - (walls[0] + walls[1]) / 2) <= 0.11
    assert verdict.startswith("verdict     : NOT met") == (median < 6 or wall > 6)


def test_repeats_below_one_is_refused(small_mnist, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["train_cpu.py", "--repeats", "0"])
    with pytest.raises(SystemExit) as e:
        B.main()
    assert e.value.code == 2 and "--repeats must be 1 or more" in capsys.readouterr().err
