"""Data: every step from stored bytes to the model's input -- datasets as uint8 tensors in
memory (``datasets/``), the validation hold-out (``split``), preprocessing, batch augmentation,
the input pipeline, TTA, batching.

>>> from cnnlab.data import load_dataset, Preprocessor, Augment, BatchLoader, tta_predict
>>> train = load_dataset("digits", "train")              # ImageSet: uint8 [N, 1, 32, 32]
>>> pre = Preprocessor("standardize").fit(train.images)
>>> aug = Augment("digits")
>>> for x, y in BatchLoader(train.images, train.labels, 128, shuffle=True, seed=0):
...     x = pre(aug(x))                                     # augmented, then normalised float32
"""

from cnnlab.data.augment import PRESETS as AUGMENT_PRESETS
from cnnlab.data.augment import Augment, AugmentConfig, mixup
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
from cnnlab.data.pipeline import InputPipeline
from cnnlab.data.preprocess import MODES as PREPROCESS_MODES
from cnnlab.data.preprocess import Preprocessor
from cnnlab.data.split import holdout_split
from cnnlab.data.tta import TTA_MODES, iter_tta_views, tta_predict, tta_view_count, tta_views

__all__ = [
    "AUGMENT_PRESETS",
    "DATASETS",
    "PREPROCESS_MODES",
    "TTA_MODES",
    "Augment",
    "AugmentConfig",
    "BatchLoader",
    "ImageSet",
    "InputPipeline",
    "Preprocessor",
    "cache_dir",
    "default_data_dir",
    "holdout_split",
    "iter_tta_views",
    "list_datasets",
    "load_dataset",
    "md5sum",
    "mixup",
    "safe_extract",
    "tta_predict",
    "tta_view_count",
    "tta_views",
]
