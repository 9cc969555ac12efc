"""Datasets as whole uint8 tensors in memory: ``load_dataset(name, split) -> ImageSet``.

- ``registry.py``: the names, ``load_dataset`` and the reshaping options;
- ``archives.py``: official archives and files, their md5s, verification, safe extraction;
- ``readers.py``: one reader per source (digits, idx, CIFAR pickles, CIFAR-10 JPEG, folders);
- ``cache.py``: decoded tensors tied to the files they came from; ``cnnlab cache``.
"""

from cnnlab.data.datasets.archives import (
    ARCHIVE_MD5,
    ARCHIVE_URL,
    IDX_RAW_MD5,
    md5sum,
    safe_extract,
)
from cnnlab.data.datasets.cache import cache_dir
from cnnlab.data.datasets.readers import ImageSet
from cnnlab.data.datasets.registry import (
    DATASETS,
    SPLITS,
    default_data_dir,
    list_datasets,
    load_dataset,
    shipped_splits,
)

__all__ = [
    "ARCHIVE_MD5",
    "ARCHIVE_URL",
    "DATASETS",
    "IDX_RAW_MD5",
    "SPLITS",
    "ImageSet",
    "cache_dir",
    "default_data_dir",
    "list_datasets",
    "load_dataset",
    "md5sum",
    "safe_extract",
    "shipped_splits",
]
