"""Image readers, kept apart from datasets as in MONAI: one reader per format behind one interface.

PNG, JPEG and TIFF go through PIL (:mod:`bench.data.pil_reader`); DICOM through pydicom
(:mod:`bench.data.dicom_reader`, pydicom imported only when a DICOM file is met). Each format
module registers its reader in :mod:`bench.data.reader_base`, which holds the interface, the
error contract and the pixel limit; this module chooses a reader for a path and reads with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

import bench.data.pil_reader  # noqa: F401 - registers the PNG, JPEG and TIFF readers
from bench.data.dicom_reader import has_dicom_preamble
from bench.data.reader_base import (
    DICOM_SUFFIXES,
    IMAGE_SUFFIXES,
    MAX_PIXELS,
    READERS,
    FrameChoice,
    ImageReader,
    ImageReadError,
)


def is_dicom(path: str | Path) -> bool:
    """By suffix, else by the DICM marker (DICOM files often have no suffix at all)."""
    return Path(path).suffix.lower() in DICOM_SUFFIXES or has_dicom_preamble(path)


def reader_for(path: str | Path) -> ImageReader:
    """The reader for ``path``, chosen by suffix, else by content (the DICOM marker)."""
    path = Path(path)
    suffix = path.suffix.lower()
    for reader in READERS:
        if suffix in reader.suffixes:
            return reader
    for reader in READERS:
        if reader.claims(path):
            return reader
    if not path.is_file():
        raise ImageReadError(path, "no such file")
    raise ImageReadError(
        path, f"unknown image type {suffix or '(no suffix)'!r}; expected one of {', '.join(IMAGE_SUFFIXES)} "
        "or a DICOM file with the DICM marker"
    )


def read_with_metadata(path: str | Path, *, frame: FrameChoice = "middle",
                       max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, dict[str, Any]]:
    """Read any supported image: ``(pixels, metadata)`` as :meth:`ImageReader.read` returns them."""
    return reader_for(path).read(path, frame=frame, max_pixels=max_pixels)


def read_image(path: str | Path, *, frame: int | Literal["middle"] = "middle",
               max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """One image as float32 H×W in [0, 1] (a multi-frame file gives its middle frame by default)."""
    if frame == "all":
        raise ValueError("read_image returns one frame; use read_frames for all of them")
    return read_with_metadata(path, frame=frame, max_pixels=max_pixels)[0]


def read_frames(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Every frame as float32 F×H×W in [0, 1], each frame a sample of its own (F = 1 for 2-D files).

    ``max_pixels`` bounds all frames together.
    """
    return read_with_metadata(path, frame="all", max_pixels=max_pixels)[0]
