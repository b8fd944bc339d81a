"""PNG, JPEG and TIFF through the PIL readers: modes, frames, the pixel limit and the error contract."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from bench.data.pil_reader import PNG_READER
from bench.data.readers import (
    MAX_PIXELS,
    ImageReadError,
    read_frames,
    read_image,
    read_with_metadata,
    reader_for,
)

GREY = np.arange(256, dtype=np.uint8).reshape(16, 16)


def _save(image: Image.Image, path: Path, **options: object) -> Path:
    image.save(path, **options)
    return path


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff"])
def test_lossless_8_bit_grey_is_exact(tmp_path: Path, suffix: str) -> None:
    out, meta = read_with_metadata(_save(Image.fromarray(GREY), tmp_path / f"a{suffix}"))
    assert out.dtype == np.float32 and out.shape == (16, 16)
    np.testing.assert_allclose(out, GREY / 255.0, atol=1e-7)
    assert meta["mode"] == "L" and meta["frames"] == 1 and meta["frame"] == 0


@pytest.mark.parametrize(("suffix", "dtype"), [(".png", "<u2"), (".tif", "<u2"), (".tif", ">u2")])
def test_16_bit_grey_keeps_its_depth(tmp_path: Path, suffix: str, dtype: str) -> None:
    pixels = (np.arange(64).reshape(8, 8) * 1000).astype(dtype)
    out = read_image(_save(Image.fromarray(pixels), tmp_path / f"a{suffix}"))
    np.testing.assert_allclose(out, pixels / 65535.0, atol=1e-6)


def test_jpeg_grey_is_close(tmp_path: Path) -> None:
    out = read_image(_save(Image.fromarray(GREY), tmp_path / "a.jpeg", quality=100))
    np.testing.assert_allclose(out, GREY / 255.0, atol=0.03)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_rgb_becomes_luma(tmp_path: Path, suffix: str) -> None:
    out = read_image(_save(Image.new("RGB", (12, 10), (200, 100, 50)), tmp_path / f"a{suffix}"))
    assert out.shape == (10, 12)
    assert out.mean() == pytest.approx((0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255, abs=0.01)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_palette_is_applied(tmp_path: Path, suffix: str) -> None:
    image = Image.fromarray(GREY, mode="L").convert("P")
    image.putpalette([v for i in range(256) for v in (255 - i,) * 3])  # index i shows grey 255 - i
    image.putdata(GREY.ravel().tolist())
    out, meta = read_with_metadata(_save(image, tmp_path / f"p{suffix}"))
    assert meta["mode"] == "P"
    np.testing.assert_allclose(out, (255 - GREY) / 255.0, atol=1e-7)


@pytest.mark.parametrize("suffix", [".jpg", ".tif"])
def test_cmyk_becomes_grey(tmp_path: Path, suffix: str) -> None:
    path = _save(Image.new("CMYK", (8, 8), (0, 0, 0, 0)), tmp_path / f"c{suffix}")  # no ink: white
    out, meta = read_with_metadata(path)
    assert meta["mode"] == "CMYK" and out.shape == (8, 8) and out.min() > 0.95


@pytest.mark.parametrize(("mode", "suffix"), [("1", ".png"), ("LA", ".png"), ("RGBA", ".png"), ("YCbCr", ".tif"),
                                              ("LAB", ".tif"), ("I", ".tif"), ("F", ".tif")])
def test_other_modes_read_as_grey_in_range(tmp_path: Path, mode: str, suffix: str) -> None:
    ramp = Image.fromarray(GREY)
    image = ramp.convert(mode) if mode not in ("I", "F", "LAB") else (
        Image.fromarray(GREY.astype(np.int32) * 1000 - 50_000) if mode == "I"
        else Image.fromarray(GREY.astype(np.float32) / 7) if mode == "F"
        else Image.merge("LAB", [ramp, Image.new("L", ramp.size, 128), Image.new("L", ramp.size, 128)]))
    out, meta = read_with_metadata(_save(image, tmp_path / f"m{suffix}"))
    assert meta["mode"] == mode and out.shape == (16, 16) and out.dtype == np.float32
    assert 0.0 <= out.min() <= out.max() <= 1.0
    if mode in ("I", "F", "LAB"):  # out-of-range ints and floats are min-max scaled; LAB keeps L
        np.testing.assert_allclose(out, GREY / 255.0, atol=1e-6)


def test_multi_page_tiff_frames(tmp_path: Path) -> None:
    pages = [Image.fromarray(np.full((6, 5), 40 * i, dtype=np.uint8)) for i in range(3)]
    path = _save(pages[0], tmp_path / "stack.tif", save_all=True, append_images=pages[1:])
    out, meta = read_with_metadata(path)
    assert meta["frames"] == 3 and meta["frame"] == 1
    np.testing.assert_allclose(out, 40 / 255.0)
    assert read_image(path, frame=2)[0, 0] == pytest.approx(80 / 255.0)
    stack = read_frames(path)
    assert stack.shape == (3, 6, 5)
    np.testing.assert_allclose(stack[:, 0, 0], [0, 40 / 255.0, 80 / 255.0])
    with pytest.raises(ImageReadError, match="frame 3 asked for, but the file has 3 frame"):
        read_image(path, frame=3)


def test_single_frame_as_all_frames(tmp_path: Path) -> None:
    assert read_frames(_save(Image.fromarray(GREY), tmp_path / "a.png")).shape == (1, 16, 16)


def test_mislabelled_file_still_reads(tmp_path: Path) -> None:
    path = _save(Image.fromarray(GREY), tmp_path / "really_a_jpeg.png", format="JPEG", quality=100)
    out, meta = read_with_metadata(path)
    assert meta["format"] == "JPEG" and out.shape == (16, 16)


def test_other_pil_formats_are_never_opened(tmp_path: Path) -> None:
    """An EPS would run Ghostscript, a BMP is out of scope: only the PNG, JPEG and TIFF plugins run."""
    eps = tmp_path / "scan.png"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n")
    bmp = _save(Image.fromarray(GREY), tmp_path / "scan.tif", format="BMP")
    for path in (eps, bmp):
        with pytest.raises(ImageReadError, match="not a PNG, JPEG or TIFF image PIL can identify"):
            read_image(path)


# --------------------------------------------------------------------------- the pixel limit


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.fixture(scope="module")
def png_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A genuine ~95 KB PNG of 10000×10000 black pixels (100 M pixels, 100 MB decoded)."""
    width = height = 10_000
    compressor = zlib.compressobj(6)
    block = bytes(width + 1) * 100  # 100 rows: filter byte 0, then zeros
    idat = b"".join(compressor.compress(block) for _ in range(height // 100)) + compressor.flush()
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b""))
    return path


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every PIL decode (ImageFile.load), so a test can check that none happened."""
    calls: list[str] = []
    original = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile):  # noqa: ANN202
        calls.append(self.format)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    return calls


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # PIL warns above 89 M pixels
def test_png_bomb_is_refused_before_decoding(png_bomb: Path, decodes: list[str]) -> None:
    assert png_bomb.stat().st_size < 100_000
    with pytest.raises(ImageReadError, match=r"bomb.png: declares 10000×10000 = 100,000,000 pixels to decode, "
                                             r"above the limit of 67,108,864 \(max_pixels\); refused before decoding"):
        read_image(png_bomb)
    assert decodes == [] and MAX_PIXELS == 67_108_864


def _png_declaring(path: Path, width: int, height: int) -> Path:
    """A small valid grey PNG whose header is rewritten to declare ``width``×``height``."""
    data = bytearray(_save(Image.fromarray(GREY), path).read_bytes())
    ihdr = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:33] = ihdr + struct.pack(">I", zlib.crc32(ihdr))
    path.write_bytes(bytes(data))
    return path


def test_header_beyond_pils_own_limit_is_refused(tmp_path: Path, decodes: list[str]) -> None:
    path = _png_declaring(tmp_path / "huge.png", 30_000, 30_000)  # 900 M: PIL's DecompressionBombError
    with pytest.raises(ImageReadError, match="huge.png: declares too many pixels, refused before decoding"):
        read_image(path)
    assert decodes == []


def test_max_pixels_is_a_parameter(tmp_path: Path, decodes: list[str]) -> None:
    path = _save(Image.fromarray(np.zeros((100, 100), dtype=np.uint8)), tmp_path / "a.png")
    with pytest.raises(ImageReadError, match="100×100 = 10,000 pixels to decode, above the limit of 9,999"):
        read_image(path, max_pixels=9_999)
    assert decodes == []
    assert read_image(path, max_pixels=10_000).shape == (100, 100)


def test_all_frames_count_against_the_limit(tmp_path: Path) -> None:
    pages = [Image.fromarray(np.zeros((10, 10), dtype=np.uint8)) for _ in range(4)]
    path = _save(pages[0], tmp_path / "stack.tif", save_all=True, append_images=pages[1:])
    assert read_image(path, max_pixels=100).shape == (10, 10)
    with pytest.raises(ImageReadError, match="4 frame"):
        read_frames(path, max_pixels=399)


# --------------------------------------------------------------------------- the error contract


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_truncated_files_name_the_file_and_format(tmp_path: Path, suffix: str) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    full = _save(Image.fromarray(noise), tmp_path / f"full{suffix}")
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    kind = reader_for(cut).kind
    with pytest.raises(ImageReadError, match=f"cut{suffix}: corrupt or truncated {kind} file") as info:
        read_image(cut)
    assert info.value.path == cut and "\n" not in str(info.value)


def test_options_are_checked_before_the_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="frame must be"):
        PNG_READER.read(tmp_path / "absent.png", frame="first")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_pixels must be"):
        read_image(tmp_path / "absent.png", max_pixels=0)
    with pytest.raises(ValueError, match="use read_frames"):
        read_image(tmp_path / "absent.png", frame="all")  # type: ignore[arg-type]


def test_tiff_suffix_is_an_image_suffix() -> None:
    from bench.data.readers import IMAGE_SUFFIXES

    assert {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm"} <= set(IMAGE_SUFFIXES)


def test_unreadable_file_says_so(tmp_path: Path) -> None:
    import os

    path = _save(Image.fromarray(GREY), tmp_path / "locked.png")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as a user who can read anything")
        with pytest.raises(ImageReadError, match="locked.png: cannot be opened .PermissionError"):
            read_image(path)
    finally:
        path.chmod(0o644)


def test_decoder_surprises_become_image_read_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a decoder raises (RecursionError, MemoryError, KeyError, ...) leaves as an ImageReadError."""
    path = _save(Image.fromarray(GREY), tmp_path / "a.png")
    for surprise, problem in [(RecursionError("deep"), "corrupt or truncated PNG file .RecursionError: deep."),
                              (MemoryError(), "ran out of memory decoding this PNG file"),
                              (KeyError("tag"), "corrupt or truncated PNG file .KeyError: 'tag'."),
                              (PermissionError(13, "Permission denied"), "cannot be opened .PermissionError")]:
        def boom(self: ImageFile.ImageFile, error: BaseException = surprise) -> None:
            raise error

        monkeypatch.setattr(ImageFile.ImageFile, "load", boom)
        with pytest.raises(ImageReadError, match=problem) as info:
            read_image(path)
        assert info.value.__cause__ is surprise
