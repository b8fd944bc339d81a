"""The fast DICOM parse: it takes only the simple layout, and what it gives reads exactly as dcmread's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

import bench.data.dicom_reader as dicom_reader_module
from bench.data.dicom_attributes import _VR, attribute_value
from bench.data.dicom_fast import parse_simple
from bench.data.reader_base import ImageReadError
from tests.data.test_readers_dicom_examples import ALL_EXAMPLES, EXAMPLES

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # some examples are malformed on purpose


def _outcome(path: Path) -> tuple[Any, ...]:
    try:
        pixels, meta = dicom_reader_module.DICOM_READER.read(path, frame="all")
    except ImageReadError as error:
        return ("error", str(error))
    return ("pixels", pixels, meta)


def _values(ds: Any) -> dict[int, Any]:
    values = {}
    for element in ds:
        value = element.value
        values[int(element.tag)] = value.tobytes() if isinstance(value, np.ndarray) else value
        if element.tag == 0x7FE00010:
            break
    return values


@pytest.mark.parametrize("path", ALL_EXAMPLES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_examples_read_the_same_with_and_without_the_fast_parse(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _outcome(path)
    monkeypatch.setattr(dicom_reader_module, "parse_simple", lambda data: None)
    slow = _outcome(path)
    assert fast[0] == slow[0] and fast[-1] == slow[-1]
    if fast[0] == "pixels":
        assert np.array_equal(fast[1], slow[1])


@pytest.mark.parametrize("path", ALL_EXAMPLES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_a_fast_parse_holds_what_dcmread_holds(path: Path) -> None:
    ds = parse_simple(path.read_bytes())
    if ds is None:
        return
    reference = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == reference.file_meta.TransferSyntaxUID
    assert _values(ds) == _values(reference)


def test_the_fast_parse_takes_the_simple_files_and_leaves_the_rest() -> None:
    taken = {p.name for p in ALL_EXAMPLES if parse_simple(p.read_bytes()) is not None}
    assert {"MR_small.dcm", "MR_small_implicit.dcm", "rtdose.dcm"} <= taken  # explicit and implicit VR, frames
    for name in ("MR_small_bigendian.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_truncated.dcm"):
        assert name not in taken  # big endian, compressed, cut short: pydicom's
    data = (EXAMPLES / "MR_small.dcm").read_bytes()
    assert parse_simple(data[:128] + b"DICX" + data[132:]) is None  # no DICM marker
    assert parse_simple(data[:len(data) // 2]) is None  # pixel data cut short
    assert parse_simple(b"") is None


def _converted_first(ds: Any, keyword: str) -> Any:
    value = ds[keyword].value
    if isinstance(value, list | pydicom.multival.MultiValue):
        value = value[0] if len(value) else None
    return value


@pytest.mark.parametrize("path", ALL_EXAMPLES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_raw_attribute_reads_match_pydicoms_conversion(path: Path) -> None:
    """Every attribute the reader takes from raw bytes equals pydicom's own conversion of it."""
    try:
        raw = pydicom.dcmread(path, force=True)
        converted = pydicom.dcmread(path, force=True)
        keywords = [k for k in _VR if k in converted and k != "PixelData"]
        expected = {k: _converted_first(converted, k) for k in keywords}
    except Exception:  # noqa: BLE001 - examples pydicom itself cannot convert: the reader names them
        return
    if path.name == "MR_small.dcm":
        assert len(keywords) >= 10  # the geometry, rescale, window and photometric attributes
    for keyword in keywords:
        try:
            got = attribute_value(path, raw, keyword)
        except ImageReadError:
            continue  # a malformed value, named: test_readers_dicom covers those
        want = expected[keyword]
        if want is None or want == "":
            assert got in (None, "")
        elif isinstance(want, str):
            assert str(got).strip() == want.strip(), keyword
        else:
            assert float(got) == pytest.approx(float(want)), keyword
