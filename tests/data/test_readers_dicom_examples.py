"""pydicom's bundled example files (offline, in the installed package) through the DICOM reader."""

from pathlib import Path

import numpy as np
import pydicom.data
import pytest
from pydicom.pixels import get_decoder
from pydicom.uid import JPEGLSLossless

from bench.data.dicom_reader import DICOM_READER
from bench.data.readers import ImageReadError, read_frames, read_image

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # some examples are malformed on purpose

# Only what ships in the wheel: get_testdata_file() may try to download the rest.
EXAMPLES = Path(pydicom.data.__file__).parent / "test_files"
NOT_DICOM = {".json", ".txt", ".dump", ".icc", ".gz"}
ALL_EXAMPLES = sorted(p for p in EXAMPLES.rglob("*")
                      if p.is_file() and p.suffix not in NOT_DICOM and not p.name.startswith("README"))

SHAPES = {  # (frames, rows, columns) read with frame="all"
    "CT_small.dcm": (1, 128, 128),
    "MR_small.dcm": (1, 64, 64),
    "MR_small_RLE.dcm": (1, 64, 64),
    "liver_1frame.dcm": (1, 512, 512),
    "examples_palette.dcm": (1, 350, 800),
    "examples_rgb_color.dcm": (1, 240, 320),
    "examples_ybr_color.dcm": (30, 240, 320),  # JPEG baseline, decoded by Pillow
    "examples_jpeg2k.dcm": (1, 480, 640),  # JPEG 2000, decoded by Pillow's OpenJPEG
    "rtdose.dcm": (15, 10, 10),
    "rtdose_rle.dcm": (15, 10, 10),
    "SC_rgb_rle_2frame.dcm": (2, 100, 100),
    "SC_rgb_rle_16bit.dcm": (1, 100, 100),
}
PROBLEMS = {
    "MR_truncated.dcm": "truncated",
    "badVR.dcm": "malformed DICOM attribute NumberOfFrames = '1A': not a number",
    "rtplan.dcm": "DICOM file has no pixel data",
    "test-SR.dcm": "DICOM file has no pixel data",
}
MR_SMALL_ENCODINGS = ["MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm",
                      "MR_small_expb.dcm", "MR_small_padded.dcm", "MR_small_jp2klossless.dcm"]


def _example(name: str) -> Path:
    path = EXAMPLES / name
    if not path.is_file():
        pytest.skip(f"{name} is not bundled with this pydicom")
    return path


def test_examples_are_bundled() -> None:
    assert len(ALL_EXAMPLES) > 50, EXAMPLES


@pytest.mark.parametrize("path", ALL_EXAMPLES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_reads_or_raises_the_projects_error(path: Path) -> None:
    try:
        pixels, meta = DICOM_READER.read(path, frame="all")
    except ImageReadError as error:
        assert error.path == path and str(error).startswith(f"{path}: ")
        return
    assert pixels.dtype == np.float32 and pixels.shape == (meta["frames"], meta["rows"], meta["columns"])
    assert np.isfinite(pixels).all() and 0.0 <= pixels.min() <= pixels.max() <= 1.0


@pytest.mark.parametrize(("name", "shape"), sorted(SHAPES.items()))
def test_example_shapes(name: str, shape: tuple[int, int, int]) -> None:
    path = _example(name)
    assert read_frames(path).shape == shape
    assert read_image(path).shape == shape[1:]  # the middle frame


@pytest.mark.parametrize(("name", "problem"), sorted(PROBLEMS.items()))
def test_example_problems(name: str, problem: str) -> None:
    path = _example(name)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert str(info.value).startswith(f"{path}: ") and problem in str(info.value)


def test_jpeg_ls_example_without_a_decoder() -> None:
    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS decoder is installed here")
    with pytest.raises(ImageReadError, match="JPEG-LS Lossless .* no decoder plugin is installed; install one"):
        read_image(_example("MR_small_jpeg_ls_lossless.dcm"))


def test_one_image_in_many_encodings_reads_the_same() -> None:
    reference = read_image(_example("MR_small.dcm"))
    for name in MR_SMALL_ENCODINGS[1:]:
        np.testing.assert_allclose(read_image(_example(name)), reference, atol=1e-6, err_msg=name)


def test_monochrome1_example_without_a_suffix() -> None:
    out = read_image(_example("dicomdirtests/77654033/CR1/6154"))  # found by its DICM marker
    assert out.shape == (16, 16) and 0 <= out.min() < out.max() <= 1
