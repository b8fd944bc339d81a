"""Reading a DICOM data set's attributes: from the raw bytes where that is safe, through pydicom
otherwise, with a malformed value named in the project's error.

pydicom converts a raw element on first access through hooks that cost ~25 µs each, as much
as a third of reading a small slice, so the attributes the reader needs (``_VR``) are read
straight from an unconverted little-endian element; another VR than the standard one, big
endian or an odd length leaves the conversion to pydicom.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.data.reader_base import ImageReadError, describe


def short_repr(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


@functools.cache
def tag_of(keyword: str) -> int:
    from pydicom.datadict import tag_for_keyword

    return tag_for_keyword(keyword)


# The VR of each attribute read through the fast path below; implicit-VR files do not store it.
_VR = {"Rows": "US", "Columns": "US", "SamplesPerPixel": "US", "BitsAllocated": "US", "BitsStored": "US",
       "PixelRepresentation": "US", "NumberOfFrames": "IS", "RescaleSlope": "DS", "RescaleIntercept": "DS",
       "WindowCenter": "DS", "WindowWidth": "DS", "PhotometricInterpretation": "CS", "VOILUTFunction": "CS",
       "Modality": "CS", "PixelData": "OB/OW"}
_BINARY = {"US": struct.Struct("<H")}
_CONVERT = object()  # the raw bytes are not in a form the fast path reads: let pydicom convert them


def _raw_first_value(element: Any, keyword: str) -> Any:
    """The first value of a still-unconverted little-endian element, straight from its bytes;
    ``_CONVERT`` when pydicom must convert it."""
    expected = _VR[keyword]
    vr = element.VR or expected.split("/")[0]  # None in implicit-VR files: the dictionary's VR
    value = element.value
    if not element.is_little_endian or vr not in expected.split("/") or (value is None and element.length):
        return _CONVERT
    if not value:
        return None
    if vr in _BINARY:
        unpack = _BINARY[vr]
        return unpack.unpack_from(value)[0] if len(value) >= unpack.size else _CONVERT
    if vr in ("OB", "OW"):
        return value
    try:  # DS, IS, CS: backslash-separated ASCII, space padded
        return value.split(b"\\", 1)[0].strip(b" \x00").decode("ascii")
    except UnicodeDecodeError:
        return _CONVERT


def attribute_value(path: Path, ds: Any, keyword: str) -> Any:
    """The value of ``keyword`` (the first, if multi-valued), None when absent; conversion errors named."""
    elements = getattr(ds, "_dict", None)
    element = elements.get(tag_of(keyword)) if isinstance(elements, dict) else None
    if element is not None and type(element).__name__ == "RawDataElement" and keyword in _VR:
        value = _raw_first_value(element, keyword)
        if value is not _CONVERT:
            return value
    try:
        element = ds.get(tag_of(keyword))  # by tag: pydicom's keyword lookup costs more than the read
        value = None if element is None else element.value
    except Exception as exc:  # noqa: BLE001 - pydicom converts raw values lazily, on access
        raise ImageReadError(path, f"malformed DICOM attribute {keyword} ({describe(exc)})") from exc
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        value = value[0] if len(value) else None  # multi-valued (windows): the first is the default
    return value


def attribute_text(path: Path, ds: Any, keyword: str, default: str = "") -> str:
    value = attribute_value(path, ds, keyword)
    return default if value is None else str(value).strip() or default


def attribute_number(path: Path, ds: Any, keyword: str, default: float | None, *,
                     integer: bool = False) -> Any:
    """The first value of a numeric attribute, or ``default`` when absent; malformed ones are named."""
    value = attribute_value(path, ds, keyword)
    if value is None or (isinstance(value, str | bytes) and not value.strip()):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ImageReadError(path, f"malformed DICOM attribute {keyword} = {short_repr(value)}: "
                                   "not a number") from exc
    if not math.isfinite(number) or (integer and number != int(number)):
        kind = "an integer" if integer else "a finite number"
        raise ImageReadError(path, f"malformed DICOM attribute {keyword} = {short_repr(value)}: not {kind}")
    return int(number) if integer else number
