"""PNG, JPEG and TIFF through PIL, to float32 grey in [0, 1], under the error contract of
:mod:`bench.data.reader_base`. Multi-page TIFF (and animated PNG) frames are selectable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.data.reader_base import (
    JPEG_SUFFIXES,
    PNG_SUFFIXES,
    TIFF_SUFFIXES,
    FrameChoice,
    ImageReader,
    ImageReadError,
    check_pixel_budget,
    frame_indices,
    min_max,
    register,
)

# Only these PIL plugins may open a file, whatever its suffix: a mislabelled PNG/JPEG/TIFF still
# reads, but no EPS (Ghostscript) or other exotic decoder is ever reached from user data.
PIL_FORMATS = ("PNG", "JPEG", "TIFF")


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


PNG_READER = register(PilReader("PNG", PNG_SUFFIXES))
JPEG_READER = register(PilReader("JPEG", JPEG_SUFFIXES))
TIFF_READER = register(PilReader("TIFF", TIFF_SUFFIXES))
