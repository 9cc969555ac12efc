"""Data: datasets as uint8 tensors in memory, preprocessing, batch augmentation, TTA, batching.

>>> from cnnlab.data import load_dataset, Preprocessor, BatchLoader
>>> train = load_dataset("digits", "train")              # ImageSet: uint8 [N, 1, 32, 32]
>>> pre = Preprocessor("standardize").fit(train.images)
>>> for x, y in BatchLoader(train.images, train.labels, 128, shuffle=True, seed=0):
...     x = pre(x)                                          # float32, normalised
"""

from cnnlab.data.datasets import (
    DATASETS,
    ImageSet,
    cache_dir,
    default_data_dir,
    list_datasets,
    load_dataset,
    md5sum,
    safe_extract,
)
from cnnlab.data.loader import BatchLoader
from cnnlab.data.preprocess import MODES as PREPROCESS_MODES
from cnnlab.data.preprocess import Preprocessor

__all__ = [
    "DATASETS",
    "PREPROCESS_MODES",
    "BatchLoader",
    "ImageSet",
    "Preprocessor",
    "cache_dir",
    "default_data_dir",
    "list_datasets",
    "load_dataset",
    "md5sum",
    "safe_extract",
]
