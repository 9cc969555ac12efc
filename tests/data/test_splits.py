"""Validation splits: a dataset's own (an image folder's val/) or a seeded hold-out of train."""

import pytest
import torch

from cnnlab.data import ImageSet, load_dataset
from cnnlab.data.datasets import shipped_splits
from cnnlab.data.split import holdout_indices, holdout_split
from cnnlab.errors import ConfigError


def test_holdout_is_seeded_disjoint_and_named():
    ds = ImageSet(torch.arange(50, dtype=torch.uint8).view(50, 1, 1, 1), torch.arange(50) % 5,
                  [str(i) for i in range(5)], "toy")  # fmt: skip
    tr, va = holdout_split(ds, 0.2, seed=3)
    assert (len(tr), len(va)) == (40, 10) and (tr.name, va.name) == ("toy[train]", "toy[val]")
    ids = set(tr.images.flatten().tolist()) | set(va.images.flatten().tolist())
    assert len(ids) == 50  # disjoint, nothing lost
    again = holdout_split(ds, 0.2, seed=3)[1]
    assert torch.equal(again.images, va.images)
    assert not torch.equal(holdout_split(ds, 0.2, seed=4)[1].images, va.images)
    with pytest.raises(ConfigError, match="cannot hold out"):
        holdout_split(ds, 0.999, seed=0)


def test_holdout_indices_are_the_images_holdout_split_cuts():
    # benchmarks/train_cpu.py's course loop holds out the same images through these indices
    ds = ImageSet(torch.arange(50, dtype=torch.uint8).view(50, 1, 1, 1), torch.arange(50) % 5,
                  [str(i) for i in range(5)], "toy")  # fmt: skip
    tr_ix, va_ix = holdout_indices(50, 0.2, seed=3)
    tr, va = holdout_split(ds, 0.2, seed=3)
    assert torch.equal(tr.images.flatten().long(), tr_ix)
    assert torch.equal(va.images.flatten().long(), va_ix)


def test_a_folder_with_val_ships_it_and_val_is_never_test(tmp_path):
    from PIL import Image

    root = tmp_path / "f"
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            Image.new("L", (8, 8), 30 if cls == "a" else 200).save(root / split / cls / "0.png")
    assert shipped_splits(root) == ("train", "val")
    assert len(load_dataset(root, "val")) == 2
    with pytest.raises(Exception, match="no 'test' folder"):
        load_dataset(root, "test")  # 0.1 read val/ as the test split
    assert shipped_splits("digits") == ("train", "test")
    with pytest.raises(ConfigError, match="ships no validation split") as e:
        load_dataset("digits", "val")
    assert "--val-fraction" in e.value.hint
