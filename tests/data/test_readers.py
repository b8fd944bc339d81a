import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.data.readers import ImageReadError, read_image

from .dicom_files import write_dicom

RAMP = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 10)  # 0 .. 630


def _percentile_scaled(values: np.ndarray) -> np.ndarray:
    """What a DICOM without a window reads as: the 0.5-99.5 percentile range scaled to [0, 1]."""
    lo, hi = np.percentile(values.astype(np.float64), [0.5, 99.5])
    return np.clip((values - lo) / (hi - lo), 0, 1)


def _linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """The default VOI LUT function, LINEAR (DICOM PS3.3 C.11.2.1.2.1), scaled to [0, 1]."""
    return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0, 1)


def test_png_8_bit(tmp_path: Path) -> None:
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.float32 and out.shape == (16, 16)
    np.testing.assert_allclose(out, pixels / 255.0, atol=1e-7)


def test_png_16_bit(tmp_path: Path) -> None:
    pixels = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    np.testing.assert_allclose(read_image(tmp_path / "a.png"), pixels / 65535.0, atol=1e-6)


def test_rgb_jpeg_becomes_grey(tmp_path: Path) -> None:
    Image.new("RGB", (12, 10), (200, 100, 50)).save(tmp_path / "a.jpg", quality=95)
    out = read_image(tmp_path / "a.jpg")
    assert out.shape == (10, 12)
    assert out.mean() == pytest.approx((0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255, abs=0.02)


def test_corrupt_png_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(ImageReadError, match="broken.png: corrupt or truncated PNG") as info:
        read_image(bad)
    assert info.value.path == bad and isinstance(info.value, ValueError)


def test_truncated_png_names_the_file(tmp_path: Path) -> None:
    full = tmp_path / "full.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(full)
    cut = tmp_path / "cut.png"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(ImageReadError, match="cut.png: corrupt or truncated PNG"):
        read_image(cut)


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ImageReadError, match="notes.txt: unknown image type '.txt'"):
        read_image(tmp_path / "notes.txt")
    with pytest.raises(ImageReadError, match="nothing.png: no such file"):
        read_image(tmp_path / "nothing.png")


def test_dicom_round_trip_percentile_clipped(tmp_path: Path) -> None:
    out = read_image(write_dicom(tmp_path / "a.dcm", RAMP))
    assert out.dtype == np.float32 and out.shape == (8, 8)
    np.testing.assert_allclose(out, _percentile_scaled(RAMP), atol=1e-6)


def test_dicom_monochrome1_is_inverted(tmp_path: Path) -> None:
    out = read_image(write_dicom(tmp_path / "a.dcm", RAMP, photometric="MONOCHROME1"))
    np.testing.assert_allclose(out, 1 - _percentile_scaled(RAMP), atol=1e-6)


@pytest.mark.parametrize("window", [(-500, 400), ([-500, 40], [400, 80])])  # several: the first counts
def test_dicom_rescale_then_window(tmp_path: Path, window: tuple) -> None:
    path = write_dicom(tmp_path / "ct.dcm", RAMP, RescaleSlope=2, RescaleIntercept=-1000,
                       WindowCenter=window[0], WindowWidth=window[1])
    hounsfield = RAMP * 2.0 - 1000
    np.testing.assert_allclose(read_image(path), _linear_window(hounsfield, -500, 400), atol=1e-6)


def test_dicom_multi_frame_takes_the_middle_frame(tmp_path: Path) -> None:
    frames = np.stack([RAMP, RAMP[::-1], RAMP + 5])
    path = write_dicom(tmp_path / "cine.dcm", frames, WindowCenter=315, WindowWidth=630)
    np.testing.assert_allclose(read_image(path), _linear_window(RAMP[::-1], 315, 630), atol=1e-6)


def test_dicom_without_suffix_is_found_by_its_marker(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "IM0001", RAMP)
    np.testing.assert_allclose(read_image(path), _percentile_scaled(RAMP), atol=1e-6)


def test_dicom_without_pixel_data(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="report.dcm: DICOM file has no pixel data"):
        read_image(write_dicom(tmp_path / "report.dcm", None))


def test_missing_pydicom_names_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_dicom(tmp_path / "a.dcm", RAMP)
    monkeypatch.setitem(sys.modules, "pydicom", None)  # makes ``import pydicom`` fail
    with pytest.raises(ImageReadError, match="a.dcm: reading DICOM needs pydicom: pip install pydicom"):
        read_image(path)
