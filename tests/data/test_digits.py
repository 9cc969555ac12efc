import torch

from cnnlab.data import load_dataset


def test_digits_shape_labels_and_deterministic_split():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert train.images.dtype == torch.uint8 and train.images.shape == (1438, 1, 32, 32)
    assert test.images.shape == (359, 1, 32, 32)
    assert train.labels.dtype == torch.int64
    assert train.classes == [str(i) for i in range(10)]
    # every class in both splits, about 20% of each in test
    counts = torch.bincount(test.labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    assert torch.bincount(train.labels, minlength=10).min() >= 135
    # ink is spread over the full uint8 range after upscaling
    assert train.images.max() == 255 and train.images.min() == 0
    # the split is fixed: the same on every call, and no image in both splits
    again = load_dataset("digits", "test")
    assert torch.equal(again.images, test.images) and torch.equal(again.labels, test.labels)
    flat_train = {x.numpy().tobytes() for x in train.images}
    overlap = sum(x.numpy().tobytes() in flat_train for x in test.images)
    assert overlap <= 2  # sklearn's digits has a few exact duplicates, nothing more


def test_digits_other_size_and_padding():
    ds = load_dataset("digits", "test", image_size=28)
    assert ds.images.shape[1:] == (1, 28, 28)
    padded = load_dataset("digits", "test", image_size=28, pad_to=32)
    assert padded.images.shape[1:] == (1, 32, 32)
    assert torch.equal(padded.images[:, :, 2:30, 2:30], ds.images)
    assert padded.images[:, :, :2].sum() == 0
    rgb = load_dataset("digits", "test", channels=3)
    assert rgb.images.shape[1] == 3 and torch.equal(rgb.images[:, 0], rgb.images[:, 2])
