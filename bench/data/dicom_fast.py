"""A fast parse of the commonest DICOM file: Part 10, little endian, uncompressed, no nested items.

``pydicom.dcmread`` costs ~0.3 ms for a small MR slice, most of a DICOM read, because it
builds the file meta and the data set element by element in Python. Scanner exports of one
slice are usually the simplest case of the format, so :func:`parse_simple` walks their
elements with ``struct`` and hands back a pydicom ``Dataset`` holding the same raw
(unconverted) elements ``dcmread`` would hold, so everything downstream, pydicom's own
conversions included, sees what it would have seen. Anything else returns None and goes to
``dcmread``: another transfer syntax, a sequence or item of undefined length, elements out of
order or repeated, a value running past the end of the file, a missing preamble.
"""

from __future__ import annotations

import struct
from typing import Any

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
_LONG_LENGTH_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"})
_TRANSFER_SYNTAX = 0x00020010
_PIXEL_DATA = 0x7FE00010
_UNDEFINED = 0xFFFFFFFF
_TAG = struct.Struct("<HH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_PREAMBLE = 132  # 128 bytes, then "DICM"


def _elements(data: bytes, offset: int, explicit: bool, meta: bool) -> tuple[dict[int, tuple], int] | None:
    """``{tag: (vr, length, value, value offset)}`` from ``offset``: the file meta group when
    ``meta``, else the data set up to and including Pixel Data. None where the walk must stop."""
    found: dict[int, tuple] = {}
    end, last = len(data), -1
    while offset + 8 <= end:
        group, element = _TAG.unpack_from(data, offset)
        tag = group << 16 | element
        if meta and group != 0x0002:
            break
        if tag <= last:  # out of order, or repeated: pydicom decides what that means
            return None
        if explicit:
            vr = data[offset + 4:offset + 6]
            if not (vr.isalpha() and vr.isupper()):
                return None
            if vr in _LONG_LENGTH_VRS:
                if offset + 12 > end:
                    return None
                length, start = _U32.unpack_from(data, offset + 8)[0], offset + 12
            else:
                length, start = _U16.unpack_from(data, offset + 6)[0], offset + 8
            vr_name: str | None = vr.decode("ascii")
        else:
            length, start, vr_name = _U32.unpack_from(data, offset + 4)[0], offset + 8, None
        if length == _UNDEFINED or vr_name == "SQ" or start + length > end:
            return None
        found[tag] = (vr_name, length, data[start:start + length], start)
        offset, last = start + length, tag
        if tag == _PIXEL_DATA:
            return found, offset
    if meta:
        return found, offset
    return None  # no Pixel Data: dcmread says what the file is


def parse_simple(data: bytes) -> Any:
    """A pydicom ``Dataset`` (with ``file_meta``) of raw elements, or None when ``data`` is not
    the simple case (see the module docstring) and needs ``pydicom.dcmread``."""
    if len(data) < _PREAMBLE + 8 or data[128:_PREAMBLE] != b"DICM":
        return None
    try:
        meta = _elements(data, _PREAMBLE, explicit=True, meta=True)
        if meta is None or _TRANSFER_SYNTAX not in meta[0]:
            return None
        syntax = meta[0][_TRANSFER_SYNTAX][2].rstrip(b"\x00 ").decode("ascii")
        if syntax not in (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN):
            return None
        implicit = syntax == IMPLICIT_VR_LITTLE_ENDIAN
        body = _elements(data, meta[1], explicit=not implicit, meta=False)
    except (struct.error, UnicodeDecodeError):
        return None
    if body is None:
        return None
    from pydicom.dataelem import RawDataElement
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.tag import BaseTag

    def raw(elements: dict[int, tuple], is_implicit: bool) -> dict:
        return {BaseTag(tag): RawDataElement(BaseTag(tag), vr, length, value, at, is_implicit, True)
                for tag, (vr, length, value, at) in elements.items()}

    ds = Dataset(raw(body[0], implicit))
    ds.file_meta = FileMetaDataset(raw(meta[0], False))
    ds.set_original_encoding(implicit, True)
    return ds
