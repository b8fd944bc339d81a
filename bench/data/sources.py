"""Which kind of dataset a path holds, for ``medbench run --data PATH`` (``--data-kind`` overrides).

* a file ``RadiologyAI_{train,val,test}.csv``, a folder named ``radiology_ai``, or a folder
  holding one of them: the RadImageNet layout (``radimagenet``);
* any other ``.csv`` file, or a folder with a ``manifest.csv``: a CSV manifest (``manifest``);
* a folder of class folders (optionally under ``train/ val/ test/``): ``folder``, or ``dicom``
  when most of the files sampled in it are DICOM (suffix or the DICM marker).

Only names and a few file headers are read, so detecting a large dataset is instant.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from bench.data.policy import DatasetError
from bench.data.radimagenet import RADIOLOGY_DIR, SPLIT_CSVS
from bench.data.readers import IMAGE_SUFFIXES, is_dicom

log = logging.getLogger(__name__)

_SAMPLED_FILES = 32  # enough to tell a DICOM tree from a PNG one without walking it all


@dataclass(frozen=True)
class DetectedSource:
    """A dataset kind (one of ``bench.core.config.DATA_KINDS``), the root to give it, and why."""

    kind: str
    root: Path
    reason: str


def _sample_files(folder: Path, limit: int = _SAMPLED_FILES) -> list[Path]:
    """Up to ``limit`` files under ``folder``, in a stable order, without walking the whole tree."""
    found: list[Path] = []
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(current) / f for f in sorted(files) if not f.startswith(".")]
        if len(found) >= limit:
            break
    return found[:limit]


def detect_source(path: Path) -> DetectedSource:
    """The dataset kind at ``path``; a missing path or an unrecognisable file is a DatasetError."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if path.is_file():
        if path.name in SPLIT_CSVS.values():
            return DetectedSource("radimagenet", path.parent, f"{path.name} is a RadImageNet split CSV")
        if path.suffix.lower() == ".csv":
            return DetectedSource("manifest", path, "a CSV file is read as a manifest (path,label[,split])")
        raise DatasetError(f"{path}: not a dataset: give a folder of class folders, a RadImageNet folder "
                           "or a CSV manifest")
    if path.name == RADIOLOGY_DIR:
        return DetectedSource("radimagenet", path, f"the folder is named {RADIOLOGY_DIR}")
    if (path / RADIOLOGY_DIR).is_dir():
        return DetectedSource("radimagenet", path, f"it holds {RADIOLOGY_DIR}/")
    if any((path / name).is_file() for name in SPLIT_CSVS.values()):
        return DetectedSource("radimagenet", path, "it holds RadImageNet split CSVs")
    if (path / "manifest.csv").is_file():
        return DetectedSource("manifest", path / "manifest.csv", "it holds manifest.csv")
    files = _sample_files(path)
    dicom = [f for f in files if is_dicom(f)]
    if files and len(dicom) * 2 > len(files):
        return DetectedSource("dicom", path, f"{len(dicom)} of {len(files)} files sampled are DICOM")
    images = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
    return DetectedSource("folder", path, f"class folders ({len(images)} of {len(files)} files sampled are images)")
