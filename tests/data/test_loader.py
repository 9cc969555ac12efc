import pytest
import torch

from cnnlab.data import BatchLoader
from cnnlab.errors import ShapeError


def _data(n=10):
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return images, torch.arange(n)


def test_covers_every_image_once_with_matching_labels():
    images, labels = _data(10)
    loader = BatchLoader(images, labels, batch_size=3, shuffle=True, seed=5)
    assert len(loader) == 4
    seen = []
    for x, y in loader:
        assert x.dtype == torch.uint8 and y.dtype == torch.int64
        assert torch.equal(x[:, 0, 0, 0].long(), y)  # image i carries label i
        seen += y.tolist()
    assert sorted(seen) == list(range(10))
    assert seen != list(range(10))  # shuffled


def test_drop_last_and_no_shuffle():
    images, labels = _data(10)
    loader = BatchLoader(images, labels, batch_size=3, shuffle=False, drop_last=True)
    assert len(loader) == 3
    assert [y.tolist() for _, y in loader] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


def test_order_reproducible_from_seed_and_epoch():
    images, labels = _data(50)

    def order(seed, epoch):
        loader = BatchLoader(images, labels, batch_size=8, seed=seed)
        loader.set_epoch(epoch)
        return torch.cat([y for _, y in loader]).tolist()

    assert order(1, 0) == order(1, 0)
    assert order(1, 3) == order(1, 3)
    assert order(1, 0) != order(1, 1)
    assert order(1, 0) != order(2, 0)


def test_sampler_decides_order_and_gets_set_epoch():
    images, labels = _data(20)
    sampler = torch.utils.data.DistributedSampler(
        range(20), num_replicas=2, rank=1, shuffle=True, seed=3
    )
    loader = BatchLoader(images, labels, batch_size=4, sampler=sampler)
    loader.set_epoch(2)
    assert len(loader) == 3
    got = torch.cat([y for _, y in loader]).tolist()
    sampler.set_epoch(2)
    assert got == list(sampler)
    assert len(got) == 10


def test_bad_shapes():
    with pytest.raises(ShapeError, match=r"\[N, C, H, W\]"):
        BatchLoader(torch.zeros(4, 2, 2), torch.zeros(4), 2)
    with pytest.raises(ShapeError, match="4 images but 3 labels"):
        BatchLoader(torch.zeros(4, 1, 2, 2), torch.zeros(3), 2)


def test_return_index_yields_the_dataset_indices():
    images, labels = _data(10)
    loader = BatchLoader(images, labels, batch_size=4, seed=2, return_index=True)
    for x, y, idx in loader:
        assert torch.equal(idx, y)  # label i belongs to image i
        assert torch.equal(x, images[idx])
