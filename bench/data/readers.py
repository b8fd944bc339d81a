"""Image readers, kept apart from datasets as in MONAI: file in, float32 H×W in [0, 1] out.

PNG and JPEG go through PIL. DICOM goes through pydicom, imported only when a DICOM file
is met. Every failure is an :class:`ImageReadError` that names the file and the problem.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

PIL_SUFFIXES = (".png", ".jpg", ".jpeg")
DICOM_SUFFIXES = (".dcm", ".dicom")
IMAGE_SUFFIXES = PIL_SUFFIXES + DICOM_SUFFIXES

# pydicom names decoder plugins by import name; pip knows some of them by another name.
_PIP_NAMES = {"gdcm": "python-gdcm"}


class ImageReadError(ValueError):
    """An image file could not be read; ``str(error)`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def has_dicom_preamble(path: Path) -> bool:
    """True when the file carries the DICOM Part 10 marker ("DICM" at byte 128)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def is_dicom(path: Path) -> bool:
    return path.suffix.lower() in DICOM_SUFFIXES or has_dicom_preamble(path)


def read_image(path: str | Path) -> np.ndarray:
    """Read one image as float32 H×W in [0, 1], the format chosen by suffix (or DICOM marker)."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "no such file")
    suffix = path.suffix.lower()
    if suffix in PIL_SUFFIXES:
        return read_pil(path)
    if is_dicom(path):
        return read_dicom(path)
    raise ImageReadError(
        path, f"unknown image type {suffix or '(no suffix)'!r}; expected one of {', '.join(IMAGE_SUFFIXES)} "
        "or a DICOM file with the DICM marker"
    )


def _pil_to_float(image: Image.Image) -> np.ndarray:
    if image.mode.startswith("I;16"):
        return np.asarray(image, dtype=np.float32) / 65535.0
    if image.mode == "I":  # 16-bit PNGs decode to 32-bit ints in some Pillow versions
        values = np.asarray(image)
        if values.min() >= 0 and values.max() <= 65535:
            return values.astype(np.float32) / 65535.0
        return _min_max(values.astype(np.float32))
    if image.mode == "F":
        return _min_max(np.asarray(image, dtype=np.float32))
    if image.mode != "L":
        image = image.convert("L")
    return np.asarray(image, dtype=np.float32) / 255.0


def read_pil(path: Path) -> np.ndarray:
    """PNG or JPEG through PIL; colour images are converted to luminance."""
    try:
        with Image.open(path) as image:
            image.load()  # decode now, so truncation surfaces here rather than later
            return _pil_to_float(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        kind = path.suffix.lower().lstrip(".").upper() or "image"
        raise ImageReadError(path, f"corrupt or truncated {kind} file ({exc})") from None


def _min_max(values: np.ndarray) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.zeros_like(values, dtype=np.float32)
    return ((values - lo) / (hi - lo)).astype(np.float32)


def _first(value: Any) -> float:
    """DICOM window attributes may be multi-valued; the first value is the default window."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        value = value[0]
    return float(value)


def _import_pydicom(path: Path):  # noqa: ANN202 - returns the pydicom module
    try:
        import pydicom
    except ImportError:
        raise ImageReadError(path, "reading DICOM needs pydicom: pip install pydicom") from None
    return pydicom


def _install_hint(missing: list[str]) -> str:
    """Turn pydicom's "name - requires a>=1 and b>=2" lines into pip commands."""
    commands = []
    for line in missing:
        _, _, needs = line.partition("requires")
        packages = [re.split(r"[<>=!~ ]", p.strip())[0] for p in needs.split(" and ")]
        packages = [_PIP_NAMES.get(p, p) for p in packages if p and p != "numpy"]
        if packages:
            commands.append("pip install " + " ".join(packages))
    return " or ".join(commands) if commands else "a pydicom pixel data plugin"


def _decode_problem(ds: Any, exc: Exception) -> str:
    """Explain why ``ds.pixel_array`` failed, naming the transfer syntax and the plugin to install."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None or not syntax.is_compressed:
        return f"cannot decode DICOM pixel data ({exc})"
    label = f"transfer syntax {syntax.name} ({syntax})"
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        return f"compressed pixel data in {label}, which pydicom cannot decode with any plugin"
    if not decoder.is_available:
        return (f"compressed pixel data in {label} and no decoder plugin is installed; "
                f"install one: {_install_hint(decoder.missing_dependencies)}")
    return f"compressed pixel data in {label} could not be decoded; the file may be corrupt ({exc})"


def read_dicom(path: Path) -> np.ndarray:
    """One DICOM image: rescale slope/intercept, VOI window (else min-max), MONOCHROME1
    inverted, middle frame of a multi-frame image, colour converted to luminance."""
    pydicom = _import_pydicom(path)
    try:
        ds = pydicom.dcmread(path, force=not has_dicom_preamble(path))
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds on bad files
        raise ImageReadError(path, f"not a readable DICOM file ({exc})") from None
    if not any(key in ds for key in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise ImageReadError(path, "DICOM file has no pixel data (not an image object?)")
    try:
        pixels = np.asarray(ds.pixel_array)
    except Exception as exc:  # noqa: BLE001 - decoders raise RuntimeError, ValueError, ...
        raise ImageReadError(path, _decode_problem(ds, exc)) from None

    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        pixels = pixels[frames // 2]
    colour = int(ds.get("SamplesPerPixel", 1) or 1) == 3
    if colour and pixels.ndim == 3 and pixels.shape[-1] == 3:
        pixels = pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if pixels.ndim != 2:
        raise ImageReadError(path, f"unsupported DICOM pixel array shape {pixels.shape}")

    values = pixels.astype(np.float32)
    if not colour:
        values = values * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0)
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if not colour and center is not None and width is not None and _first(width) > 0:
        lo = _first(center) - _first(width) / 2
        values = np.clip((values - lo) / _first(width), 0.0, 1.0).astype(np.float32)
    else:
        values = _min_max(values)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        values = 1.0 - values
    if not np.isfinite(values).all():
        raise ImageReadError(path, "DICOM pixel data contains NaN or infinite values")
    return values
