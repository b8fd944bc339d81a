"""Property: whatever bytes a file holds, every reader returns a valid array or raises ImageReadError.

Each reader gets 2,000 derandomised examples: random bytes, the format's magic number followed by
random bytes, and valid small files mutated by bit flips, truncations, insertions, deletions and
overwrites. ``max_pixels`` is lowered to 2^18 so that a mutated header declaring a large image is
refused cheaply (the limit path is exercised too) and each example stays fast.
"""

import io
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from bench.data.dicom_reader import DICOM_READER
from bench.data.pil_reader import JPEG_READER, PNG_READER, TIFF_READER
from bench.data.reader_base import ImageReader, ImageReadError

EXAMPLES_PER_READER = 2000
FUZZ_MAX_PIXELS = 2**18
FUZZ = settings(max_examples=EXAMPLES_PER_READER, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]  # decoders warn on broken input
RAMP = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4


def _pil(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _pil_seeds() -> dict[str, list[bytes]]:
    grey = Image.fromarray(RAMP)
    wide = Image.fromarray(RAMP.astype(np.uint16) * 1000)
    rgb = Image.merge("RGB", [grey, grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT), grey])
    pages = [grey, grey.rotate(90), grey.rotate(180)]
    return {
        "PNG": [_pil(grey, "PNG"), _pil(wide, "PNG"), _pil(rgb, "PNG"), _pil(rgb.convert("P"), "PNG"),
                _pil(grey.convert("1"), "PNG"), _pil(rgb.convert("RGBA"), "PNG"),
                _pil(grey, "PNG", save_all=True, append_images=pages[1:])],  # animated PNG
        "JPEG": [_pil(grey, "JPEG"), _pil(rgb, "JPEG", quality=50), _pil(rgb, "JPEG", progressive=True),
                 _pil(rgb.convert("CMYK"), "JPEG")],
        "TIFF": [_pil(grey, "TIFF"), _pil(wide, "TIFF"), _pil(rgb, "TIFF", compression="tiff_lzw"),
                 _pil(grey, "TIFF", compression="tiff_deflate"), _pil(grey, "TIFF", compression="packbits"),
                 _pil(rgb.convert("CMYK"), "TIFF"), _pil(grey, "TIFF", save_all=True, append_images=pages[1:])],
    }


def _dicom(pixels: np.ndarray, photometric: str = "MONOCHROME2", rle: bool = False, **attributes: object) -> bytes:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, RLELossless

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = MRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = "1.2.3.4"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    colour = photometric == "RGB"
    ds.Rows, ds.Columns = pixels.shape[-3:-1] if colour else pixels.shape[-2:]
    if pixels.ndim == (4 if colour else 3):
        ds.NumberOfFrames = pixels.shape[0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = (3 if colour else 1), photometric
    if colour:
        ds.PlanarConfiguration = 0
    bits = 8 * pixels.itemsize
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    ds.PixelData = pixels.tobytes()
    for key, value in attributes.items():
        setattr(ds, key, value)
    if rle:
        ds.compress(RLELossless)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _dicom_seeds() -> list[bytes]:
    mr = RAMP.astype(np.uint16) * 50
    palette = {f"{c}PaletteColorLookupTableDescriptor": [256, 0, 8] for c in ("Red", "Green", "Blue")}
    palette.update({f"{c}PaletteColorLookupTableData": bytes(range(256)) for c in ("Red", "Green", "Blue")})
    return [
        _dicom(mr, RescaleSlope=2, RescaleIntercept=-1000, WindowCenter=40, WindowWidth=400),
        _dicom(mr, "MONOCHROME1", VOILUTFunction="SIGMOID", WindowCenter=[1000, 40], WindowWidth=[500, 80]),
        _dicom(np.stack([mr, mr // 2, mr // 3])),  # multi-frame
        _dicom(mr, rle=True),
        _dicom(np.stack([mr, mr // 2]), rle=True),
        _dicom(RAMP, "PALETTE COLOR", **palette),
        _dicom(np.stack([RAMP] * 3, axis=-1), "RGB"),
    ]


SEEDS = {**_pil_seeds(), "DICOM": _dicom_seeds()}
MAGIC = {"PNG": [b"\x89PNG\r\n\x1a\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"], "JPEG": [b"\xff\xd8\xff"],
         "TIFF": [b"II*\x00", b"MM\x00*"], "DICOM": [bytes(128) + b"DICM", bytes(128) + b"DICM\x02\x00\x00\x00UL"]}


def fix_png_crcs(data: bytes) -> bytes:
    """Recompute every chunk CRC, so that an edit reaches PIL's decoder and not only its CRC check."""
    out, at = bytearray(data[:8]), 8
    while at + 12 <= len(data):
        length = int.from_bytes(data[at:at + 4], "big")
        end = at + 8 + length
        if end + 4 > len(data):
            break
        out += data[at:end] + zlib.crc32(data[at + 4:end]).to_bytes(4, "big")
        at = end + 4
    return bytes(out + data[at:])


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A valid file with 1-4 random edits (flips most often: they keep the layout)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(["flip"] * 3 + ["overwrite"] * 2 + ["insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if edit == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "overwrite" and data:
            data[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255))]))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif edit == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        elif edit == "truncate":
            del data[at:]
    if data.startswith(b"\x89PNG") and draw(st.booleans()):
        return fix_png_crcs(bytes(data))
    return bytes(data)


def file_bytes(kind: str) -> st.SearchStrategy[bytes]:
    random_bytes = st.binary(max_size=1024)
    after_magic = st.builds(bytes.__add__, st.sampled_from(MAGIC[kind]), st.binary(max_size=512))
    return st.one_of(mutated(SEEDS[kind]), mutated(SEEDS[kind]), mutated(SEEDS[kind]), after_magic, random_bytes)


FRAMES = st.sampled_from(["middle", "all", 0, 1])


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _holds_the_contract(reader: ImageReader, path: Path, data: bytes, frame: object) -> None:
    path.write_bytes(data)
    try:
        pixels, metadata = reader.read(path, frame=frame, max_pixels=FUZZ_MAX_PIXELS)
    except ImageReadError as error:  # the only exception allowed out; anything else fails the test
        assert error.path == path and str(error).startswith(f"{path}: ")
        event(f"refused: {error.problem.split(' (')[0].split(';')[0][:50]}")  # --hypothesis-show-statistics
        return
    event("read")
    assert isinstance(pixels, np.ndarray) and pixels.dtype == np.float32
    assert pixels.ndim == (3 if frame == "all" else 2) and pixels.size > 0
    assert np.isfinite(pixels).all() and 0.0 <= pixels.min() <= pixels.max() <= 1.0
    assert isinstance(metadata, dict)


def test_seeds_are_valid(fuzz_dir: Path) -> None:
    """The mutations start from files every reader reads."""
    readers = {"PNG": PNG_READER, "JPEG": JPEG_READER, "TIFF": TIFF_READER, "DICOM": DICOM_READER}
    for kind, seeds in SEEDS.items():
        for i, data in enumerate(seeds):
            path = fuzz_dir / f"seed{i}{readers[kind].suffixes[0]}"
            path.write_bytes(data)
            assert readers[kind].read(path, frame="all")[0].shape[1:] == (8, 8), (kind, i)


@FUZZ
@given(data=file_bytes("PNG"), frame=FRAMES)
def test_png_reader_contract(fuzz_dir: Path, data: bytes, frame: object) -> None:
    _holds_the_contract(PNG_READER, fuzz_dir / "f.png", data, frame)


@FUZZ
@given(data=file_bytes("JPEG"), frame=FRAMES)
def test_jpeg_reader_contract(fuzz_dir: Path, data: bytes, frame: object) -> None:
    _holds_the_contract(JPEG_READER, fuzz_dir / "f.jpg", data, frame)


@FUZZ
@given(data=file_bytes("TIFF"), frame=FRAMES)
def test_tiff_reader_contract(fuzz_dir: Path, data: bytes, frame: object) -> None:
    _holds_the_contract(TIFF_READER, fuzz_dir / "f.tif", data, frame)


@FUZZ
@given(data=file_bytes("DICOM"), frame=FRAMES)
def test_dicom_reader_contract(fuzz_dir: Path, data: bytes, frame: object) -> None:
    _holds_the_contract(DICOM_READER, fuzz_dir / "f.dcm", data, frame)
