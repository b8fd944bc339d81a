"""DICOM through pydicom, to float32 grey in [0, 1], under the error contract of
:mod:`bench.data.reader_base`.

Monochrome: the modality LUT (Rescale Slope/Intercept, or a Modality LUT Sequence), then the
VOI LUT Sequence if there is one, else the first window (Window Center/Width under any
VOI LUT Function: LINEAR, LINEAR_EXACT, SIGMOID; PS3.3 C.11.2.1.2-3), else clipping to the
0.5-99.5 percentiles; MONOCHROME1 is inverted last. PALETTE COLOR goes through its palette, RGB
and YBR to luma. Every numeric attribute used is checked first, so a malformed one ("abc") is
named in the error. Rows × Columns × (frames decoded) above ``max_pixels`` is refused before
decoding; a single frame of a multi-frame file is decoded alone.

Speed: a simple little-endian uncompressed file is parsed by :mod:`bench.data.dicom_fast` instead
of ``dcmread``, and the attributes above are read from their raw bytes where pydicom would only
convert them; anything else goes through pydicom unchanged.
"""

from __future__ import annotations

import io
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.data.dicom_attributes import attribute_number, attribute_text, attribute_value, short_repr, tag_of
from bench.data.dicom_fast import parse_simple
from bench.data.reader_base import (
    DICOM_SUFFIXES,
    FrameChoice,
    ImageReader,
    ImageReadError,
    check_pixel_budget,
    describe,
    frame_indices,
    luminance,
    register,
)

log = logging.getLogger(__name__)

PERCENTILES = (0.5, 99.5)  # without a window: clip the extreme 0.5 % each side, then scale
IN_MEMORY_BYTES = 32 * 2**20  # files up to this size are read into memory whole before parsing
CODECS_EXTRA = "pip install 'medvit-bench[dicom-codecs]'"
_PIP_NAMES = {"gdcm": "python-gdcm"}  # pydicom names plugins by import name; pip by another
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


@dataclass(frozen=True)
class _Geometry:
    rows: int
    columns: int
    frames: int
    samples: int
    photometric: str


def _import_pydicom(path: Path):  # noqa: ANN202 - returns the pydicom module
    try:
        import pydicom
    except ImportError:
        raise ImageReadError(path, "reading DICOM needs pydicom: pip install pydicom") from None
    return pydicom


def _geometry(path: Path, ds: Any) -> _Geometry:
    rows = attribute_number(path, ds, "Rows", None, integer=True)
    columns = attribute_number(path, ds, "Columns", None, integer=True)
    if not rows or not columns or rows < 0 or columns < 0:
        raise ImageReadError(path, f"DICOM image lacks a usable size (Rows {rows}, Columns {columns})")
    frames = attribute_number(path, ds, "NumberOfFrames", 1, integer=True)
    if frames < 0:
        raise ImageReadError(path, f"malformed DICOM attribute NumberOfFrames = {frames}: negative")
    samples = attribute_number(path, ds, "SamplesPerPixel", 1, integer=True)
    if samples not in (1, 3):
        raise ImageReadError(path, f"unsupported SamplesPerPixel {samples}: expected 1 (grey) or 3 (colour)")
    photometric = attribute_text(path, ds, "PhotometricInterpretation", "MONOCHROME2").upper()
    return _Geometry(rows, columns, max(frames, 1), samples, photometric)  # 0 frames means 1, as in pydicom


def _transfer_syntax(path: Path, ds: Any) -> Any:
    """The transfer syntax UID; guessed from the encoding for old files without file meta."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import UID, AllTransferSyntaxes, ExplicitVRBigEndian, ExplicitVRLittleEndian, \
        ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if not syntax:
        implicit, little = ds.original_encoding
        if little is None:
            raise ImageReadError(path, "DICOM file has no transfer syntax and its encoding is unknown")
        syntax = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
        if meta is None:
            ds.file_meta = meta = FileMetaDataset()
        meta.TransferSyntaxUID = syntax
        log.debug("%s: no transfer syntax in the file meta; read as %s", path, syntax.name)
    syntax = UID(str(syntax))
    if syntax not in AllTransferSyntaxes:
        raise ImageReadError(path, f"unknown or malformed transfer syntax UID {short_repr(str(syntax), 70)}; "
                                   "pydicom cannot decode its pixel data")
    return syntax


def _install_hint(missing: list[str]) -> str:
    """Turn pydicom's "name - requires a>=1 and b>=2" lines into pip commands."""
    import re

    commands = []
    for line in missing:
        _, _, needs = line.partition("requires")
        packages = [re.split(r"[<>=!~ ]", p.strip())[0] for p in needs.split(" and ")]
        packages = [_PIP_NAMES.get(p, p) for p in packages if p and p != "numpy"]
        if packages:
            commands.append("pip install " + " ".join(packages))
    return " or ".join(commands + [CODECS_EXTRA])


def _label(syntax: Any) -> str:
    return f"transfer syntax {syntax.name} ({syntax})"


def _check_decoder(path: Path, syntax: Any) -> None:
    """Compressed pixel data with no installed plugin: say so, and what to install, before decoding."""
    if not syntax.is_compressed:
        return
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise ImageReadError(path, f"compressed pixel data in {_label(syntax)}, which pydicom cannot "
                                   "decode with any plugin") from None
    if not decoder.is_available:
        raise ImageReadError(path, f"compressed pixel data in {_label(syntax)} and no decoder plugin is "
                                   f"installed; install one: {_install_hint(decoder.missing_dependencies)}")


def _decode_problem(syntax: Any, exc: Exception) -> str:
    if not syntax.is_compressed:
        return f"cannot decode the pixel data; the file may be truncated or corrupt ({describe(exc)})"
    from pydicom.pixels import get_decoder

    missing = get_decoder(syntax).missing_dependencies
    more = f"; another plugin may decode it: {_install_hint(missing)}" if missing else ""
    return (f"compressed pixel data in {_label(syntax)} could not be decoded by the installed plugins; "
            f"the file may be corrupt ({describe(exc)}){more}")


def _native_frames(path: Path, ds: Any, syntax: Any, indices: list[int], geometry: _Geometry) -> np.ndarray | None:
    """The common case, little-endian 8/16-bit grey, straight from the bytes; None for anything else.

    pydicom's decoder framework costs ~0.3 ms a file, a fifth of a 128 px read. This does what it
    does for these files (high bits masked, or sign-extended for signed data), as the tests check.
    """
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    if syntax not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian) or geometry.samples != 1:
        return None
    allocated = attribute_number(path, ds, "BitsAllocated", None, integer=True)
    stored = attribute_number(path, ds, "BitsStored", allocated, integer=True)
    signed = attribute_number(path, ds, "PixelRepresentation", 0, integer=True)
    data = attribute_value(path, ds, "PixelData")
    frame_size = geometry.rows * geometry.columns * (allocated or 0) // 8
    if (allocated not in (8, 16) or stored is None or not 1 <= stored <= allocated or signed not in (0, 1)
            or not isinstance(data, bytes) or len(data) < frame_size * geometry.frames):
        return None  # pydicom decodes it, or says what is wrong
    dtype = np.dtype(f"<{'i' if signed else 'u'}{allocated // 8}")
    frames = np.stack([np.frombuffer(data, dtype, geometry.rows * geometry.columns, i * frame_size) for i in indices])
    if stored < allocated:  # bits above BitsStored are not pixel data
        shift = allocated - stored
        frames = (frames << shift) >> shift if signed else frames & ((1 << stored) - 1)
    return frames.reshape(len(indices), geometry.rows, geometry.columns)


def _decode(path: Path, ds: Any, syntax: Any, indices: list[int], geometry: _Geometry) -> np.ndarray:
    """The asked-for frames as (n, rows, columns[, samples]), decoding no other frame."""
    from pydicom.pixels import pixel_array

    native = _native_frames(path, ds, syntax, indices, geometry)
    if native is not None:
        return native
    try:
        if geometry.frames == 1 or len(indices) == geometry.frames:
            pixels = pixel_array(ds)
            pixels = pixels[None] if geometry.frames == 1 else pixels
        else:
            pixels = np.stack([pixel_array(ds, index=i) for i in indices])
    except ImageReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - decoders raise RuntimeError, ValueError, ...
        raise ImageReadError(path, _decode_problem(syntax, exc)) from exc
    expected = (len(indices), geometry.rows, geometry.columns) + ((geometry.samples,) if geometry.samples > 1 else ())
    if pixels.shape != expected:
        raise ImageReadError(path, f"decoded pixel array has shape {pixels.shape}, expected {expected}")
    return pixels


# --------------------------------------------------------------------------- stored values to [0, 1]


def window(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray | None:
    """PS3.3 C.11.2.1.2-3 with output range [0, 1]; None for a width the function cannot use."""
    if function == "SIGMOID":
        return None if width <= 0 else 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "LINEAR_EXACT":
        return None if width <= 0 else np.clip((values - center) / width + 0.5, 0.0, 1.0)
    if width < 1:  # LINEAR, the default (an unknown function falls back to it)
        return None
    center, width = center - 0.5, width - 1.0
    if width == 0:  # a one-value window: a threshold
        return (values > center).astype(np.float64)
    return np.clip((values - center) / width + 0.5, 0.0, 1.0)


def percentiles(values: np.ndarray, percents: tuple[float, ...]) -> list[float]:
    """numpy's default (linear) percentiles, from a histogram for integers (8× faster than
    np.percentile on a 128 px slice), else from one partition."""
    flat = values.ravel()
    last = flat.size - 1
    ranks = [p / 100 * last for p in percents]
    below = [math.floor(r) for r in ranks]
    wanted = sorted({k for b in below for k in (b, min(b + 1, last))})
    unsigned = flat.dtype.kind == "u" and flat.dtype.itemsize < 8  # counted from 0, without a shifted copy
    low = int(flat.min()) if flat.dtype.kind in "ui" and not unsigned else 0
    if flat.dtype.kind in "ui" and int(flat.max()) - low < 2**16:
        # counts[v]: how many are <= low + v
        counts = np.cumsum(np.bincount(flat if unsigned else flat.astype(np.intp) - low))
        at = dict(zip(wanted, (low + np.searchsorted(counts, wanted, side="right")).tolist()))
    else:
        part = np.partition(flat, wanted)
        at = {k: float(part[k]) for k in wanted}
    return [at[b] + (r - b) * (at[min(b + 1, last)] - at[b]) for r, b in zip(ranks, below)]


def scale_to_unit(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """[lo, hi] to [0, 1], clipped; min-max when the range is empty (a mostly flat image)."""
    if hi <= lo:
        lo, hi = float(values.min()), float(values.max())
        if hi <= lo:
            return np.zeros(values.shape)
    out = values - lo
    out *= 1.0 / (hi - lo)
    return np.clip(out, 0.0, 1.0, out=out)


def _voi_lut(path: Path, ds: Any, values: np.ndarray) -> np.ndarray | None:
    """The first VOI LUT Sequence item applied, scaled by its bit depth; None when there is none."""
    try:
        items = ds.get("VOILUTSequence") if tag_of("VOILUTSequence") in ds else None
        if not items or "LUTDescriptor" not in items[0] or "LUTData" not in items[0]:
            return None
        entries, first, depth = (int(v) for v in items[0].LUTDescriptor)
        if depth not in (8, *range(10, 17)):
            raise ValueError(f"{depth} bits per LUT entry")
        entries = entries or 2**16
        from pydicom.pixels.processing import apply_voi

        # pre-clipped to the table, so pydicom's uint16 index array cannot wrap around
        indices = np.clip(np.rint(values), first, first + entries - 1).astype(np.int64)
        return apply_voi(indices, ds, index=0).astype(np.float64) / (2**depth - 1)
    except Exception as exc:  # noqa: BLE001
        raise ImageReadError(path, f"malformed VOI LUT Sequence ({describe(exc)})") from exc


def _monochrome(path: Path, ds: Any, plane: np.ndarray, note: dict[str, str]) -> np.ndarray:
    """Modality LUT, then VOI LUT, window or percentile clip, then MONOCHROME1 inversion."""
    stored, slope, intercept = plane, 1.0, 0.0
    if tag_of("ModalityLUTSequence") in ds and ds.get("ModalityLUTSequence"):
        from pydicom.pixels.processing import apply_modality_lut

        try:
            stored = apply_modality_lut(plane, ds)
        except Exception as exc:  # noqa: BLE001
            raise ImageReadError(path, f"malformed Modality LUT Sequence ({describe(exc)})") from exc
    else:
        slope = attribute_number(path, ds, "RescaleSlope", 1.0)
        intercept = attribute_number(path, ds, "RescaleIntercept", 0.0)
    values = stored.astype(np.float64)  # in place from here: a slice is read in well under a millisecond
    if slope != 1.0:
        values *= slope
    if intercept != 0.0:
        values += intercept
    if not np.isfinite(values).all():
        raise ImageReadError(path, "pixel values are NaN or infinite after the modality LUT / rescale")

    out = _voi_lut(path, ds, values)
    if out is not None:
        note["intensity"] = "VOI LUT"
    else:
        center = attribute_number(path, ds, "WindowCenter", None)
        width = attribute_number(path, ds, "WindowWidth", None)
        function = attribute_text(path, ds, "VOILUTFunction", "LINEAR").upper()
        if center is not None and width is not None:
            out = window(values, center, width, function)
            note["intensity"] = f"window {function} center {center:g} width {width:g}"
            if out is None:
                log.debug("%s: window width %g unusable for %s; percentile clipping instead", path, width, function)
    if out is None:  # percentiles of the stored integers, mapped: an affine rescale commutes with them
        # (a negative slope swaps the 0.5th and 99.5th, which sorted() undoes: the pair is symmetric)
        lo, hi = sorted(v * slope + intercept for v in percentiles(stored, PERCENTILES))
        out = scale_to_unit(values, lo, hi)
        note["intensity"] = "percentile {:g}-{:g}".format(*PERCENTILES)
    if note["photometric"] == "MONOCHROME1":
        out = 1.0 - out
    return out


def _colour(path: Path, ds: Any, plane: np.ndarray, geometry: _Geometry, note: dict[str, str]) -> np.ndarray:
    if geometry.photometric == "PALETTE COLOR":
        from pydicom.pixels.processing import apply_color_lut

        try:
            rgb = apply_color_lut(plane, ds)
        except Exception as exc:  # noqa: BLE001
            raise ImageReadError(path, f"malformed palette colour lookup table ({describe(exc)})") from exc
        note["intensity"] = "palette to luma"
        return luminance(rgb) / np.iinfo(rgb.dtype).max
    bits = attribute_number(path, ds, "BitsStored", 8 * plane.dtype.itemsize, integer=True)
    bits = min(max(bits, 1), 8 * plane.dtype.itemsize)
    note["intensity"] = f"{geometry.photometric} to luma"
    return luminance(plane).astype(np.float64) / (2.0**bits - 1)


def has_dicom_preamble(path: str | Path) -> bool:
    """True when the file carries the DICOM Part 10 marker ("DICM" at byte 128)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


class DicomReader(ImageReader):
    """DICOM files (by suffix or the DICM marker) through pydicom; see the module docstring."""

    kind = "DICOM"
    suffixes = DICOM_SUFFIXES

    def claims(self, path: Path) -> bool:
        return has_dicom_preamble(path)

    def _read(self, path: Path, frame: FrameChoice, max_pixels: int) -> tuple[np.ndarray, dict[str, Any]]:
        pydicom = _import_pydicom(path)
        try:
            with open(path, "rb") as handle:  # one open: the preamble check, then pydicom
                preamble = handle.read(132)
                handle.seek(0)
                force = len(preamble) < 132 or preamble[128:] != b"DICM"
                # pydicom reads every element, pixels included, either way; a small file is read
                # whole and, in the simplest and commonest layout, parsed without dcmread
                if os.fstat(handle.fileno()).st_size <= IN_MEMORY_BYTES:
                    data = handle.read()
                    ds = None if force else parse_simple(data)
                    if ds is None:
                        ds = pydicom.dcmread(io.BytesIO(data), force=force)
                else:
                    ds = pydicom.dcmread(handle, force=force)
        except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds on bad files
            raise ImageReadError(path, f"not a readable DICOM file; truncated or corrupt? ({describe(exc)})") from exc
        if not any(tag_of(keyword) in ds for keyword in _PIXEL_KEYWORDS):
            # pydicom stops quietly at the end of a cut file: say that truncation is one cause
            hint = "an empty data set: truncated?" if len(ds) == 0 else "not an image object, or truncated?"
            raise ImageReadError(path, f"DICOM file has no pixel data ({hint})")
        syntax = _transfer_syntax(path, ds)
        geometry = _geometry(path, ds)
        indices = frame_indices(path, frame, geometry.frames)
        check_pixel_budget(path, geometry.rows * geometry.columns * len(indices), max_pixels,
                           f"{len(indices)} frame(s) of {geometry.rows}×{geometry.columns}")
        _check_decoder(path, syntax)
        stack = _decode(path, ds, syntax, indices, geometry)

        note = {"photometric": geometry.photometric}
        colour = geometry.samples == 3 or geometry.photometric == "PALETTE COLOR"
        planes = [(_colour(path, ds, plane, geometry, note) if colour else _monochrome(path, ds, plane, note))
                  for plane in stack]
        metadata = {"format": "DICOM", "transfer_syntax": str(syntax),
                    "modality": attribute_text(path, ds, "Modality"),
                    "rows": geometry.rows, "columns": geometry.columns, "frames": geometry.frames,
                    "frame": indices if frame == "all" else indices[0], **note}
        pixels = np.stack(planes) if frame == "all" else planes[0]
        return pixels.astype(np.float32), metadata


DICOM_READER = register(DicomReader())
