"""Data: synthetic brain MRI, image readers, datalists (folder, manifest, RadImageNet), the
checks a datalist must pass, kind detection, splits and batch augmentation.

Exports resolve lazily so that the generator (``bench.data.synthetic``, numpy and PIL
only), the checks and the detection import without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_dataset": "bench.data.datasets",
    "LoadedDataset": "bench.data.datasets",
    "SplitTensors": "bench.data.datasets",
    "SkippedFile": "bench.data.datasets",
    "DatasetError": "bench.data.policy",
    "CLASS_ALIASES": "bench.data.policy",
    "detect_source": "bench.data.sources",
    "radimagenet_datalist": "bench.data.radimagenet",
    "ImageReadError": "bench.data.readers",
    "read_image": "bench.data.readers",
    "stratified_split": "bench.data.splits",
    "CLASS_NAMES": "bench.data.synthetic",
    "ensure_dataset": "bench.data.synthetic",
    "generate": "bench.data.synthetic",
    "class_counts": "bench.data.synthetic",
    "write_sample_grid": "bench.data.synthetic",
    "augment_batch": "bench.data.transforms",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
