"""Image readers, kept apart from datasets as in MONAI: one reader per format behind one interface.

A reader takes a path and returns ``(pixels, metadata)``: ``pixels`` is float32 in [0, 1], H×W
for one frame or F×H×W when every frame is asked for; ``metadata`` is a small JSON-able dict.
PNG, JPEG and TIFF go through PIL (:class:`PilReader`); DICOM through pydicom
(:class:`bench.data.dicom_reader.DicomReader`, pydicom imported only when a DICOM file is met).

Error contract: a reader raises :class:`ImageReadError` ("<path>: <problem>") and nothing else
for anything wrong with the file, whatever the decoder underneath raised (``KeyboardInterrupt``
and ``SystemExit`` still pass). Wrong *options* (an unknown ``frame``) are the caller's bug and
raise a plain ``ValueError`` before the file is opened.

Pixel limit: a file whose header declares more than ``max_pixels`` pixels to decode (default
:data:`MAX_PIXELS`, 64 Mi = 67,108,864, e.g. 8192×8192) is refused before any pixel is decoded.
Readers never unpickle, ``eval`` or YAML-load anything from the file.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

MAX_PIXELS = 64 * 2**20  # 67,108,864 pixels (256 MiB as float32): any brain MRI slice fits
FrameChoice = Literal["middle", "all"] | int

PNG_SUFFIXES = (".png",)
JPEG_SUFFIXES = (".jpg", ".jpeg")
TIFF_SUFFIXES = (".tif", ".tiff")
PIL_SUFFIXES = PNG_SUFFIXES + JPEG_SUFFIXES + TIFF_SUFFIXES
DICOM_SUFFIXES = (".dcm", ".dicom")
IMAGE_SUFFIXES = PIL_SUFFIXES + DICOM_SUFFIXES

# Only these PIL plugins may open a file, whatever its suffix: a mislabelled PNG/JPEG/TIFF still
# reads, but no EPS (Ghostscript) or other exotic decoder is ever reached from user data.
PIL_FORMATS = ("PNG", "JPEG", "TIFF")
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


# --------------------------------------------------------------------------- PIL: PNG, JPEG, TIFF


def pil_to_unit(image: Image.Image) -> np.ndarray:
    """One decoded PIL frame as float32 grey in [0, 1]: 16-bit kept, palette applied, colour to luma."""
    mode = image.mode
    if mode.startswith("I;16"):
        return np.asarray(image).astype(np.float32) / 65535.0
    if mode == "I":  # 32-bit ints; 16-bit PNGs decode to this in some Pillow versions
        values = np.asarray(image)
        if values.min() >= 0 and values.max() <= 65535:
            return values.astype(np.float32) / 65535.0
        return min_max(values.astype(np.float64))
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError("floating-point pixels include NaN or infinity")
        return min_max(values)
    if mode == "LAB":  # PIL cannot convert LAB; its L channel is the lightness already
        image = image.getchannel("L")
    elif mode != "L":
        image = image.convert("L")  # applies a palette; CMYK, YCbCr, RGB(A) and 1-bit to luma
    return np.asarray(image, dtype=np.float32) / 255.0


class PilReader(ImageReader):
    """PNG, JPEG or TIFF through PIL; multi-page TIFF (and animated PNG) frames are selectable."""

    def __init__(self, kind: str, suffixes: tuple[str, ...]) -> None:
        self.kind = kind
        self.suffixes = suffixes

    def _read(self, path: Path, frame: FrameChoice, max_pixels: int) -> tuple[np.ndarray, dict[str, Any]]:
        try:
            image = Image.open(path, formats=PIL_FORMATS)  # parses the header only
        # PIL's own backstop: an error at 2 × Image.MAX_IMAGE_PIXELS (179 M), a warning from 89 M
        # (raised only under -W error; the check just below refuses those files anyway)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageReadError(path, f"declares too many pixels, refused before decoding ({exc})") from exc
        except Image.UnidentifiedImageError as exc:
            raise ImageReadError(path, f"corrupt or truncated {self.kind} file (not a PNG, JPEG or "
                                       f"TIFF image PIL can identify)") from exc
        with image:
            width, height = image.size
            check_pixel_budget(path, width * height, max_pixels, f"{width}×{height}")
            count = getattr(image, "n_frames", 1)  # TIFF walks its page headers here, no pixels
            indices = frame_indices(path, frame, count)
            # an animated PNG decodes every frame up to the one asked for: they all count
            decoded = max(indices) + 1 if image.format == "PNG" else len(indices)
            check_pixel_budget(path, width * height * decoded, max_pixels, f"{decoded} frame(s) of {width}×{height}")
            planes = []
            for index in indices:
                if count > 1:
                    image.seek(index)
                if image.size != (width, height):  # TIFF pages may differ: check before decoding
                    page_w, page_h = image.size
                    check_pixel_budget(path, page_w * page_h, max_pixels, f"frame {index} of {page_w}×{page_h}")
                    if frame == "all":
                        raise ImageReadError(path, f"frame {index} is {page_w}×{page_h}, the first "
                                                   f"{width}×{height}; frames of one file must match")
                image.load()  # decode now, so truncation surfaces here and not later
                planes.append(pil_to_unit(image))
            metadata = {"format": image.format or self.kind, "mode": image.mode, "width": width,
                        "height": height, "frames": count, "frame": indices if frame == "all" else indices[0]}
        pixels = np.stack(planes) if frame == "all" else planes[0]
        return pixels, metadata


# --------------------------------------------------------------------------- choosing a reader


def has_dicom_preamble(path: str | Path) -> bool:
    """True when the file carries the DICOM Part 10 marker ("DICM" at byte 128)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def is_dicom(path: str | Path) -> bool:
    """By suffix, else by the DICM marker (DICOM files often have no suffix at all)."""
    return Path(path).suffix.lower() in DICOM_SUFFIXES or has_dicom_preamble(path)


PNG_READER = PilReader("PNG", PNG_SUFFIXES)
JPEG_READER = PilReader("JPEG", JPEG_SUFFIXES)
TIFF_READER = PilReader("TIFF", TIFF_SUFFIXES)


def dicom_reader() -> ImageReader:
    from bench.data.dicom_reader import DICOM_READER  # here, not at the top: it imports this module

    return DICOM_READER


def reader_for(path: str | Path) -> ImageReader:
    """The reader for ``path``, chosen by suffix, else by the DICOM marker."""
    path = Path(path)
    suffix = path.suffix.lower()
    for reader in (PNG_READER, JPEG_READER, TIFF_READER):
        if suffix in reader.suffixes:
            return reader
    if is_dicom(path):
        return dicom_reader()
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
