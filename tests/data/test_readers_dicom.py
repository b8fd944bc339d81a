"""DICOM through the reader, on fixtures generated with pydicom: intensity pipeline, frames, codecs, errors."""

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_windowing
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLSLossless,
    MRImageStorage,
    RLELossless,
    generate_uid,
)

from bench.data.readers import ImageReadError, read_frames, read_image, read_with_metadata

from .dicom_files import write_dicom

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns on the malformed fixtures

MR12 = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 16)  # 0 .. 4080: 12-bit stored values


def _dataset(pixels: np.ndarray | None, *, bits: int = 16, photometric: str = "MONOCHROME2",
             **attributes: object) -> Dataset:
    """An MR image (F×H×W or H×W, uint) with its file meta: what an MR scanner exports."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    if pixels is not None:
        ds.Rows, ds.Columns = pixels.shape[-2:] if photometric != "RGB" else pixels.shape[-3:-1]
        if pixels.ndim == 3 and photometric != "RGB":
            ds.NumberOfFrames = pixels.shape[0]
        ds.SamplesPerPixel = 3 if photometric == "RGB" else 1
        if photometric == "RGB":
            ds.PlanarConfiguration = 0
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8 * pixels.itemsize, bits, bits - 1, 0
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    for key, value in attributes.items():
        setattr(ds, key, value)
    return ds


def _write(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def _pydicom_window(raw: np.ndarray, ds: Dataset) -> np.ndarray:
    """pydicom's own modality LUT + windowing, scaled from its output range to [0, 1]."""
    out = apply_windowing(apply_modality_lut(raw, ds), ds)
    slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
    lo, hi = intercept, (2**ds.BitsStored - 1) * slope + intercept
    return (out - lo) / (hi - lo)


# --------------------------------------------------------------------------- intensity pipeline


@pytest.mark.parametrize("function", [None, "LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_12_bit_mr_rescale_then_window_matches_pydicom(tmp_path: Path, function: str | None) -> None:
    extra = {"VOILUTFunction": function} if function else {}
    ds = _dataset(MR12, bits=12, RescaleSlope=0.5, RescaleIntercept=-100, WindowCenter=800, WindowWidth=1200, **extra)
    out, meta = read_with_metadata(_write(ds, tmp_path / "mr.dcm"))
    assert out.dtype == np.float32 and out.shape == (16, 16)
    np.testing.assert_allclose(out, _pydicom_window(MR12, ds), atol=1e-5)
    assert meta["intensity"] == f"window {function or 'LINEAR'} center 800 width 1200"


def test_first_of_several_windows_is_used(tmp_path: Path) -> None:
    ds = _dataset(MR12, bits=12, WindowCenter=[1000, 40], WindowWidth=[500, 80])
    expected = np.clip((MR12 - 999.5) / 499 + 0.5, 0, 1)
    np.testing.assert_allclose(read_image(_write(ds, tmp_path / "mr.dcm")), expected, atol=1e-6)


@pytest.mark.parametrize("window", [{}, {"WindowCenter": 500, "WindowWidth": 0}, {"WindowCenter": 500}])
def test_no_usable_window_clips_percentiles(tmp_path: Path, window: dict) -> None:
    pixels = MR12.copy()
    pixels[0, 0] = 4095  # one hot pixel: clipped, not the scale
    out, meta = read_with_metadata(_write(_dataset(pixels, bits=12, **window), tmp_path / "mr.dcm"))
    lo, hi = np.percentile(pixels.astype(np.float64), [0.5, 99.5])
    np.testing.assert_allclose(out, np.clip((pixels - lo) / (hi - lo), 0, 1), atol=1e-6)
    assert meta["intensity"] == "percentile 0.5-99.5" and out[0, 0] == 1.0


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "int32", "float32"])
def test_fast_percentiles_match_numpy(dtype: str) -> None:
    from bench.data.dicom_reader import percentiles

    rng = np.random.default_rng(1)
    span = {"uint8": (0, 256), "uint16": (0, 4096), "int16": (-1024, 3000), "int32": (-10**9, 10**9)}
    values = (rng.normal(0, 1, (37, 41)) if dtype == "float32" else rng.integers(*span[dtype], (37, 41))).astype(dtype)
    for percents in [(0.5, 99.5), (0, 100), (50,)]:
        np.testing.assert_allclose(percentiles(values, percents), np.percentile(values, percents), rtol=1e-12)


@pytest.mark.parametrize("slope", [2.5, -0.5])
def test_percentile_clip_after_a_rescale(tmp_path: Path, slope: float) -> None:
    ds = _dataset(MR12, bits=12, RescaleSlope=slope, RescaleIntercept=-1000)
    rescaled = MR12 * slope - 1000
    lo, hi = np.percentile(rescaled, [0.5, 99.5])
    np.testing.assert_allclose(read_image(_write(ds, tmp_path / "ct.dcm")),
                               np.clip((rescaled - lo) / (hi - lo), 0, 1), atol=1e-6)


def test_constant_image_reads_as_zeros(tmp_path: Path) -> None:
    out = read_image(_write(_dataset(np.full((4, 4), 7, dtype=np.uint16)), tmp_path / "flat.dcm"))
    assert (out == 0).all()


def test_monochrome1_is_inverted_after_the_window(tmp_path: Path) -> None:
    ds = _dataset(MR12, bits=12, photometric="MONOCHROME1", WindowCenter=2048, WindowWidth=4096)
    np.testing.assert_allclose(read_image(_write(ds, tmp_path / "cr.dcm")), 1 - _pydicom_window(MR12, ds), atol=1e-6)


def _lut_item(descriptor: list[int], data: list[int]) -> Dataset:
    item = Dataset()
    item.LUTDescriptor = descriptor
    item.add_new("LUTData", "US", data)  # ambiguous VR (US or OW): say which
    return item


def test_voi_lut_sequence_wins_over_the_window(tmp_path: Path) -> None:
    lut = [4095 - v for v in range(4096)]  # an inverting 12-bit VOI LUT
    ds = _dataset(MR12, bits=12, WindowCenter=10, WindowWidth=10,
                  VOILUTSequence=Sequence([_lut_item([4096, 0, 12], lut)]))
    out, meta = read_with_metadata(_write(ds, tmp_path / "voi.dcm"))
    np.testing.assert_allclose(out, (4095 - MR12) / 4095, atol=1e-6)
    assert meta["intensity"] == "VOI LUT"


def test_modality_lut_sequence_then_window(tmp_path: Path) -> None:
    lut = [min(2 * v, 65535) for v in range(4096)]  # stored value v means 2v
    ds = _dataset(MR12, bits=12, WindowCenter=4096, WindowWidth=8193,
                  ModalityLUTSequence=Sequence([_lut_item([4096, 0, 16], lut)]))
    expected = np.clip((2.0 * MR12 - 4095.5) / 8192 + 0.5, 0, 1)
    np.testing.assert_allclose(read_image(_write(ds, tmp_path / "mlut.dcm")), expected, atol=1e-6)


def test_palette_color_is_applied_then_made_grey(tmp_path: Path) -> None:
    indices = np.arange(64, dtype=np.uint8).reshape(8, 8)
    ramp = np.arange(256, dtype=np.uint16) * 257  # 16-bit entries
    ds = _dataset(indices, bits=8, photometric="PALETTE COLOR")
    for colour, table in (("Red", ramp), ("Green", ramp[::-1]), ("Blue", np.full(256, 1000, dtype=np.uint16))):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(ds, f"{colour}PaletteColorLookupTableData", table.astype("<u2").tobytes())
    out, meta = read_with_metadata(_write(ds, tmp_path / "pal.dcm"))
    rgb = apply_color_lut(indices, ds).astype(np.float64)
    np.testing.assert_allclose(out, rgb @ [0.299, 0.587, 0.114] / 65535, atol=1e-5)
    assert meta["intensity"] == "palette to luma"


def test_rgb_becomes_luma(tmp_path: Path) -> None:
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    rgb[...] = (200, 100, 50)
    out = read_image(_write(_dataset(rgb, bits=8, photometric="RGB"), tmp_path / "rgb.dcm"))
    assert out.shape == (4, 5)
    np.testing.assert_allclose(out, (0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255, atol=1e-5)


# --------------------------------------------------------------------------- frames and codecs


@pytest.fixture
def decoded_indices(monkeypatch: pytest.MonkeyPatch) -> list:
    """Records the ``index`` of every pydicom pixel decode."""
    import pydicom.pixels

    calls: list = []
    original = pydicom.pixels.pixel_array

    def spy(src, **kwargs):  # noqa: ANN001, ANN202
        calls.append(kwargs.get("index"))
        return original(src, **kwargs)

    monkeypatch.setattr(pydicom.pixels, "pixel_array", spy)
    return calls


def test_multi_frame_middle_all_and_index(tmp_path: Path, decoded_indices: list) -> None:
    frames = np.stack([MR12 // (i + 1) for i in range(5)]).astype(np.uint16)
    path = _write(_dataset(frames, bits=12), tmp_path / "cine.dcm")
    middle, meta = read_with_metadata(path)
    assert meta["frames"] == 5 and meta["frame"] == 2 and decoded_indices == []  # native: read from the bytes
    every = read_frames(path)
    assert every.shape == (5, 16, 16)
    for i in range(5):  # each frame is scaled on its own, as a sample of its own
        np.testing.assert_array_equal(read_image(path, frame=i), every[i])
    np.testing.assert_array_equal(middle, every[2])
    with pytest.raises(ImageReadError, match="cine.dcm: frame 5 asked for, but the file has 5 frame"):
        read_image(path, frame=5)


def test_compressed_multi_frame_decodes_only_the_frame_asked_for(tmp_path: Path, decoded_indices: list) -> None:
    ds = _dataset(np.stack([MR12, MR12 // 2, MR12 // 3]).astype(np.uint16), bits=12)
    ds.compress(RLELossless)
    path = _write(ds, tmp_path / "rle.dcm")
    assert read_image(path).shape == (16, 16) and decoded_indices == [1]
    assert read_frames(path).shape == (3, 16, 16) and decoded_indices == [1, None]  # all: one decode


@pytest.mark.parametrize(("allocated", "stored", "signed"), [(8, 8, 0), (8, 6, 0), (8, 8, 1), (8, 5, 1), (16, 16, 0),
                                                              (16, 12, 0), (16, 16, 1), (16, 12, 1), (16, 10, 1)])
@pytest.mark.parametrize("implicit", [False, True])
def test_native_fast_path_matches_pydicom(tmp_path: Path, allocated: int, stored: int, signed: int,
                                          implicit: bool) -> None:
    """Grey little-endian files skip pydicom's decoder; they must decode as pydicom would, high bits and all."""
    from bench.data.dicom_reader import _decode, _geometry, _transfer_syntax
    from pydicom.pixels import pixel_array

    rng = np.random.default_rng(allocated * stored + signed)
    raw = rng.integers(0, 2**allocated, (2, 5, 7), dtype=np.uint16).astype(f"u{allocated // 8}")  # high bits set too
    ds = _dataset(raw, bits=stored, PixelRepresentation=signed)
    if implicit:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    path = _write(ds, tmp_path / "native.dcm")
    read = pydicom.dcmread(path)
    syntax = _transfer_syntax(path, read)
    ours = _decode(path, read, syntax, [0, 1], _geometry(path, read))
    reference = pixel_array(read)
    assert ours.dtype == reference.dtype
    np.testing.assert_array_equal(ours, reference)
    np.testing.assert_array_equal(_decode(path, read, syntax, [1], _geometry(path, read))[0], reference[1])


@pytest.mark.parametrize("frames", [1, 3])
def test_rle_lossless_reads_like_the_uncompressed_file(tmp_path: Path, frames: int) -> None:
    pixels = np.stack([MR12 + 5 * i for i in range(frames)]).astype(np.uint16) if frames > 1 else MR12
    plain = _dataset(pixels, bits=12, WindowCenter=2000, WindowWidth=3000)
    rle = _dataset(pixels, bits=12, WindowCenter=2000, WindowWidth=3000)
    rle.compress(RLELossless)  # pydicom's own RLE encoder: no plugin needed
    assert rle.file_meta.TransferSyntaxUID == RLELossless
    out, meta = read_with_metadata(_write(rle, tmp_path / "rle.dcm"), frame="all")
    assert meta["transfer_syntax"] == RLELossless
    np.testing.assert_array_equal(out, read_frames(_write(plain, tmp_path / "plain.dcm")))


def test_jpeg_ls_without_a_decoder_names_the_syntax_and_the_packages(tmp_path: Path) -> None:
    from pydicom.pixels import get_decoder

    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS decoder is installed here")
    path = write_dicom(tmp_path / "jls.dcm", MR12, transfer_syntax=JPEGLSLossless)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    message = str(info.value)
    assert message.startswith(f"{path}: compressed pixel data in transfer syntax JPEG-LS Lossless")
    assert JPEGLSLossless in message and "no decoder plugin is installed" in message
    assert "pip install pylibjpeg pylibjpeg-libjpeg" in message and "python-gdcm" in message
    assert "pip install 'medvit-bench[dicom-codecs]'" in message


def test_file_without_file_meta_is_read_by_its_encoding(tmp_path: Path) -> None:
    ds = _dataset(MR12, bits=12, WindowCenter=2048, WindowWidth=4096)
    del ds.file_meta
    path = tmp_path / "old.dcm"
    pydicom.dcmwrite(path, ds, implicit_vr=True, little_endian=True)  # an ACR-NEMA style file: no preamble
    out, meta = read_with_metadata(path)
    assert meta["transfer_syntax"] == "1.2.840.10008.1.2" and out.shape == (16, 16)


# --------------------------------------------------------------------------- errors


def test_truncated_pixel_data(tmp_path: Path) -> None:
    full = _write(_dataset(MR12, bits=12), tmp_path / "full.dcm")
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(full.read_bytes()[:-100])
    with pytest.raises(ImageReadError, match="cut.dcm: .*truncated"):
        read_image(cut)


@pytest.mark.parametrize("keep", [140, 300])
def test_truncated_header(tmp_path: Path, keep: int) -> None:
    full = _write(_dataset(MR12, bits=12), tmp_path / "full.dcm")
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(full.read_bytes()[:keep])
    with pytest.raises(ImageReadError, match=r"cut.dcm: DICOM file has no pixel data \(.*truncated\?\)"):
        read_image(cut)


def test_no_pixel_data(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="sr.dcm: DICOM file has no pixel data"):
        read_image(_write(_dataset(None), tmp_path / "sr.dcm"))


def _with_malformed(path: Path, keyword: str, vr: str, text: str) -> Path:
    """Write MR12 with ``keyword`` holding ``text``, which its VR does not allow: written as LO, relabelled."""
    from pydicom.datadict import tag_for_keyword

    ds = _dataset(MR12, bits=12, WindowCenter=2048, WindowWidth=4096)
    tag = tag_for_keyword(keyword)
    if keyword in ds:
        del ds[keyword]
    ds.add_new(tag, "LO", text)
    data = _write(ds, path).read_bytes()
    marker = (tag >> 16).to_bytes(2, "little") + (tag & 0xFFFF).to_bytes(2, "little")
    assert data.count(marker + b"LO") == 1
    path.write_bytes(data.replace(marker + b"LO", marker + vr.encode()))
    return path


@pytest.mark.parametrize(("keyword", "vr", "text", "problem"), [
    ("RescaleSlope", "DS", "abc", "RescaleSlope = 'abc': not a number"),
    ("RescaleIntercept", "DS", "1e999", "RescaleIntercept = '1e999': not a finite number"),
    ("WindowCenter", "DS", "x", "WindowCenter = 'x': not a number"),
    ("WindowWidth", "DS", "wide\\400", "WindowWidth = 'wide': not a number"),
    ("NumberOfFrames", "IS", "abc", "NumberOfFrames = 'abc': not a number"),
    ("NumberOfFrames", "IS", "2.5", "NumberOfFrames = '2.5': not an integer"),
])
def test_malformed_numeric_attribute_is_named(tmp_path: Path, keyword: str, vr: str, text: str, problem: str) -> None:
    path = _with_malformed(tmp_path / "bad.dcm", keyword, vr, text)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert str(info.value) == f"{path}: malformed DICOM attribute {problem}"


@pytest.mark.parametrize(("attributes", "problem"), [
    ({"Rows": 0}, "lacks a usable size"),
    ({"SamplesPerPixel": 4}, "unsupported SamplesPerPixel 4"),
])
def test_impossible_geometry(tmp_path: Path, attributes: dict, problem: str) -> None:
    with pytest.raises(ImageReadError, match=problem):
        read_image(_write(_dataset(MR12, bits=12, **attributes), tmp_path / "bad.dcm"))


@pytest.mark.parametrize("uid", ["1.2.840.10008.9.9.9", "x.y.z.garbage.uid!!"])
def test_malformed_transfer_syntax_uid(tmp_path: Path, uid: str) -> None:
    path = _write(_dataset(MR12, bits=12), tmp_path / "ts.dcm")
    data = path.read_bytes()
    assert len(uid) == len(ExplicitVRLittleEndian) and data.count(ExplicitVRLittleEndian.encode()) == 1
    path.write_bytes(data.replace(ExplicitVRLittleEndian.encode(), uid.encode()))
    with pytest.raises(ImageReadError, match="ts.dcm: (unknown or malformed transfer syntax UID|not a readable DICOM)"):
        read_image(path)


def test_declared_size_above_the_limit_is_refused_before_decoding(tmp_path: Path, decoded_indices: list) -> None:
    ds = _dataset(np.zeros((2, 2), dtype=np.uint16), NumberOfFrames=8)
    ds.Rows = ds.Columns = 4096  # 8 × 4096 × 4096 = 134 M pixels declared, 8 bytes present
    path = _write(ds, tmp_path / "bomb.dcm")
    with pytest.raises(ImageReadError, match="bomb.dcm: declares 8 frame.s. of 4096×4096 = 134,217,728 pixels"):
        read_frames(path)
    ds.Rows = ds.Columns = 10_000
    with pytest.raises(ImageReadError, match="1 frame.s. of 10000×10000 = 100,000,000 pixels to decode, above"):
        read_image(_write(ds, path))
    with pytest.raises(ImageReadError, match="above the limit of 255"):
        read_image(_write(_dataset(MR12), path), max_pixels=255)
    assert decoded_indices == []


@pytest.mark.parametrize("surprise", [RecursionError("deep"), OverflowError("big"), AttributeError("gone"),
                                      IndexError("out"), TypeError("odd"), MemoryError()])
def test_decoder_surprises_become_image_read_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    surprise: BaseException) -> None:
    import bench.data.dicom_reader as dicom_reader

    def boom(*args: object, **kwargs: object) -> None:
        raise surprise

    path = _write(_dataset(MR12, bits=12), tmp_path / "mr.dcm")
    monkeypatch.setattr(dicom_reader, "_monochrome", boom)
    with pytest.raises(ImageReadError, match=f"mr.dcm: .*DICOM file .{type(surprise).__name__}") as info:
        read_image(path)
    assert info.value.__cause__ is surprise
    monkeypatch.setattr(dicom_reader, "parse_simple", boom)  # the fast parse of simple files
    with pytest.raises(ImageReadError, match=f"mr.dcm: not a readable DICOM file.*{type(surprise).__name__}"):
        read_image(path)
    monkeypatch.setattr(dicom_reader, "parse_simple", lambda data: None)  # so pydicom parses it
    monkeypatch.setattr(pydicom, "dcmread", boom)
    with pytest.raises(ImageReadError, match=f"mr.dcm: not a readable DICOM file.*{type(surprise).__name__}"):
        read_image(path)
