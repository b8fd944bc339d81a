"""What every image reader shares: the interface, the error contract, the pixel limit, and the
list of registered readers. Format modules (:mod:`bench.data.pil_reader`,
:mod:`bench.data.dicom_reader`) import this module and register their readers;
:mod:`bench.data.readers` chooses among them. Nothing here imports a format module.

A reader takes a path and returns ``(pixels, metadata)``: ``pixels`` is float32 in [0, 1], H×W
for one frame or F×H×W when every frame is asked for; ``metadata`` is a small JSON-able dict.

Error contract: a reader raises :class:`ImageReadError` ("<path>: <problem>") and nothing else
for anything wrong with the file, whatever the decoder underneath raised (``KeyboardInterrupt``
and ``SystemExit`` still pass). Wrong *options* (an unknown ``frame``) are the caller's bug and
raise a plain ``ValueError`` before the file is opened.

Pixel limit: a file whose header declares more than ``max_pixels`` pixels to decode (default
:data:`MAX_PIXELS`, 64 Mi = 67,108,864, e.g. 8192×8192) is refused before any pixel is decoded.
Readers never unpickle, ``eval`` or YAML-load anything from the file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Literal

import numpy as np

MAX_PIXELS = 64 * 2**20  # 67,108,864 pixels (256 MiB as float32): any brain MRI slice fits
FrameChoice = Literal["middle", "all"] | int

PNG_SUFFIXES = (".png",)
JPEG_SUFFIXES = (".jpg", ".jpeg")
TIFF_SUFFIXES = (".tif", ".tiff")
PIL_SUFFIXES = PNG_SUFFIXES + JPEG_SUFFIXES + TIFF_SUFFIXES
DICOM_SUFFIXES = (".dcm", ".dicom")
IMAGE_SUFFIXES = PIL_SUFFIXES + DICOM_SUFFIXES

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as PIL's convert("L")


class ImageReadError(ValueError):
    """An image file could not be read; ``str(error)`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def describe(exc: BaseException, limit: int = 300) -> str:
    """``"Type: message"`` on one line, shortened: decoder messages can quote whole attribute values."""
    message = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "…"


def check_pixel_budget(path: Path, count: int, max_pixels: int, what: str) -> None:
    """Refuse a decode of ``count`` pixels above ``max_pixels``, before it starts."""
    if count > max_pixels:
        raise ImageReadError(path, f"declares {what} = {count:,} pixels to decode, above the limit of "
                                   f"{max_pixels:,} (max_pixels); refused before decoding")


def frame_indices(path: Path, frame: FrameChoice, count: int) -> list[int]:
    """The frame indices a ``frame`` option picks from a file with ``count`` frames."""
    if frame == "middle":
        return [count // 2]
    if frame == "all":
        return list(range(count))
    if not 0 <= frame < count:
        raise ImageReadError(path, f"frame {frame} asked for, but the file has {count} frame(s)")
    return [frame]


def _check_options(frame: object, max_pixels: object) -> None:
    if not (frame in ("middle", "all") or (isinstance(frame, int) and not isinstance(frame, bool))):
        raise ValueError(f"frame must be 'middle', 'all' or a frame index, not {frame!r}")
    if not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive int, not {max_pixels!r}")


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Grey from the first three channels of an H×W×C array, as float32."""
    return rgb[..., :3].astype(np.float32) @ _LUMA


def min_max(values: np.ndarray) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.float32)
    return ((values - lo) / (hi - lo)).astype(np.float32)


class ImageReader(ABC):
    """One image format. :meth:`read` owns the error contract; subclasses implement :meth:`_read`."""

    kind: str  # "PNG", "DICOM", ...: named in error messages and in the metadata
    suffixes: tuple[str, ...]

    def claims(self, path: Path) -> bool:
        """Whether this reader takes a file whose suffix no reader lists (DICOM's marker, say)."""
        return False

    def read(self, path: str | Path, *, frame: FrameChoice = "middle",
             max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, dict[str, Any]]:
        """``(pixels, metadata)``: float32 in [0, 1], H×W (F×H×W for ``frame="all"``)."""
        _check_options(frame, max_pixels)
        path = Path(path)
        try:
            if not path.is_file():
                raise ImageReadError(path, "no such file")
            with np.errstate(all="ignore"):  # overflow to inf is caught below, not warned about
                pixels, metadata = self._read(path, frame, max_pixels)
            return _checked(path, pixels, frame), metadata
        except ImageReadError:
            raise
        except Exception as exc:  # noqa: BLE001 - the contract: decoders raise anything on bad files
            raise ImageReadError(path, _problem(self.kind, exc)) from exc

    @abstractmethod
    def _read(self, path: Path, frame: FrameChoice, max_pixels: int) -> tuple[np.ndarray, dict[str, Any]]:
        """Decode ``path``; may raise anything, which :meth:`read` turns into an ImageReadError."""


def _problem(kind: str, exc: Exception) -> str:
    """What an unexpected exception from a decoder means for the user."""
    if isinstance(exc, PermissionError | IsADirectoryError):
        return f"cannot be opened ({describe(exc)})"
    if isinstance(exc, MemoryError):  # the pixel limit makes this rare: a decoder's own tables, say
        return f"ran out of memory decoding this {kind} file ({describe(exc)})"
    return f"corrupt or truncated {kind} file ({describe(exc)})"


def _checked(path: Path, pixels: np.ndarray, frame: FrameChoice) -> np.ndarray:
    """Hold every reader to the output contract, whatever its decoder returned."""
    expected_ndim = 3 if frame == "all" else 2
    if pixels.ndim != expected_ndim or 0 in pixels.shape:
        raise ImageReadError(path, f"decoded to an unusable array of shape {pixels.shape}")
    if not np.isfinite(pixels).all():
        raise ImageReadError(path, "pixel values are NaN or infinite after decoding and rescaling")
    return np.ascontiguousarray(np.clip(pixels, 0.0, 1.0), dtype=np.float32)


# Every reader, in the order its format module registered it; :mod:`bench.data.readers` chooses.
READERS: list[ImageReader] = []


def register(reader: ImageReader) -> ImageReader:
    """Add a format's reader to :data:`READERS`; returns it."""
    if any(r.kind == reader.kind for r in READERS):
        raise ValueError(f"an image reader for {reader.kind} is already registered")
    READERS.append(reader)
    return reader
