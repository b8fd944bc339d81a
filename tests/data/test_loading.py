"""The image loader: worker processes give what the main process gives, bad files and frames included."""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.core.config import DataConfig
from bench.data import load_dataset, loading
from bench.data.loading import read_images, resolve_workers
from bench.data.readers import ImageReadError
from tests.data.dicom_files import write_dicom


def _images(root: Path, n: int, bad: set[int]) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = root / f"{i:04d}.png"
        if i in bad:
            path.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
        else:
            Image.fromarray(rng.integers(0, 256, (24, 20), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_workers_read_what_the_main_process_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loading, "MIN_PARALLEL_IMAGES", 1)
    monkeypatch.setattr(loading, "CHUNK_IMAGES", 7)  # several chunks, the last one short
    bad = {3, 17, 29}
    paths = _images(tmp_path, 30, bad)
    serial = read_images(paths, 16, workers=1, progress=False)
    parallel = read_images(paths, 16, workers=2, progress=False)
    assert serial.pixels.shape == (27, 16, 16) and serial.pixels.dtype == np.float32
    assert np.array_equal(serial.pixels, parallel.pixels)
    assert serial.owners == parallel.owners == [i for i in range(30) if i not in bad]
    assert serial.frames == parallel.frames == [None] * 27
    assert set(serial.problems) == bad and serial.problems == parallel.problems
    assert all("PNG" in problem for problem in serial.problems.values())
    assert all(row.any() for row in serial.pixels)


def test_a_broken_pool_leaves_its_work_to_the_main_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    class BrokenPool:  # every task fails as when a worker is killed
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def submit(self, *args: object) -> Future:
            future: Future = Future()
            future.set_exception(BrokenProcessPool("a worker died"))
            return future

        def shutdown(self, **kwargs: object) -> None:
            pass

    monkeypatch.setattr(loading, "MIN_PARALLEL_IMAGES", 1)
    monkeypatch.setattr(loading, "CHUNK_IMAGES", 3)
    paths = _images(tmp_path, 10, {4})
    serial = read_images(paths, 16, workers=1, progress=False)
    monkeypatch.setattr(loading, "ProcessPoolExecutor", BrokenPool)
    broken = read_images(paths, 16, workers=2, progress=False)
    assert np.array_equal(serial.pixels, broken.pixels) and serial.owners == broken.owners
    assert serial.problems == broken.problems
    assert "workers failed (a worker died); reading in this process" in caplog.text


def test_fail_fast_names_the_first_bad_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loading, "MIN_PARALLEL_IMAGES", 1)
    monkeypatch.setattr(loading, "CHUNK_IMAGES", 4)
    paths = _images(tmp_path, 12, {9, 5})
    for workers in (1, 2):
        with pytest.raises(ImageReadError) as caught:
            read_images(paths, 8, workers=workers, fail_fast=True, progress=False)
        assert caught.value.path == paths[5]


def test_worker_count_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loading, "available_cores", lambda: 16)
    assert resolve_workers(0, 100_000) == loading.MAX_AUTO_WORKERS
    assert resolve_workers(3, 100_000) == 3
    assert resolve_workers(0, loading.MIN_PARALLEL_IMAGES - 1) == 1  # a small set: no pool
    assert resolve_workers(64, loading.MIN_PARALLEL_IMAGES) == -(-loading.MIN_PARALLEL_IMAGES // loading.CHUNK_IMAGES)
    with pytest.raises(ValueError, match="workers must be >= 0"):
        resolve_workers(-1, 10)


def _multi_frame_tree(root: Path) -> dict[str, int]:
    """Class folders of DICOMs with 1 to 4 frames, each frame a constant of its own; frames per file."""
    counts = {}
    for c, name in enumerate(("cyst", "tumour")):
        for i in range(6):
            frames = 1 + (i + c) % 4
            pixels = np.stack([np.full((16, 16), 1000 * (f + 1), dtype=np.uint16) for f in range(frames)])
            path = write_dicom(root / name / f"{name}{i}.dcm", pixels if frames > 1 else pixels[0],
                               WindowCenter=2500, WindowWidth=5000)
            counts[path.name] = frames
    return counts


def test_every_frame_a_sample_in_its_files_split(tmp_path: Path) -> None:
    counts = _multi_frame_tree(tmp_path / "tree")
    cfg = DataConfig(kind="dicom", root=str(tmp_path / "tree"), image_size=16, frames="all",
                     split_fractions=(0.5, 0.25, 0.25))
    data = load_dataset(cfg, progress=False)
    seen: dict[str, list[int]] = {}
    splits_of: dict[str, set[str]] = {}
    for split, tensors in data.splits.items():
        assert tensors.frames is not None and len(tensors.frames) == len(tensors.paths)
        for path, frame, image in zip(tensors.paths, tensors.frames, tensors.images):
            name = Path(path).name
            seen.setdefault(name, []).append(frame)
            splits_of.setdefault(name, set()).add(split)
            level = image[0, 0, 0].item() * data.std + data.mean  # the frame's constant, through the window
            assert level == pytest.approx((1000 * (frame + 1) - 2500) / 5000 + 0.5, abs=2e-3)
    assert {name: sorted(frames) for name, frames in seen.items()} == {n: list(range(k)) for n, k in counts.items()}
    assert all(len(splits) == 1 for splits in splits_of.values())  # no file lends frames to two splits


def test_one_frame_per_file_by_default_or_by_index(tmp_path: Path) -> None:
    counts = _multi_frame_tree(tmp_path / "tree")
    middle = load_dataset(DataConfig(kind="dicom", root=str(tmp_path / "tree"), image_size=16,
                                     split_fractions=(0.5, 0.25, 0.25)), progress=False)
    assert sum(len(t.paths) for t in middle.splits.values()) == len(counts)
    assert all(t.frames is None for t in middle.splits.values())
    second = load_dataset(DataConfig(kind="dicom", root=str(tmp_path / "tree"), image_size=16, frames=1,
                                     split_fractions=(0.5, 0.25, 0.25)), progress=False)
    kept = sorted(Path(p).name for t in second.splits.values() for p in t.paths)
    assert kept == sorted(name for name, k in counts.items() if k > 1)  # one-frame files have no frame 1
    assert {Path(s.path).name for s in second.skipped} == {name for name, k in counts.items() if k == 1}
    assert all("frame 1 asked for" in s.reason for s in second.skipped)


@pytest.mark.parametrize("frames", ["first", -1, True, 1.5])
def test_bad_frames_option_is_refused(frames: object) -> None:
    with pytest.raises(ValueError, match="data.frames must be 'middle', 'all' or a frame index"):
        DataConfig(frames=frames)


def test_pixel_limit_of_the_dataset_config_refuses_large_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        for i in range(4):
            side = 40 if i == 0 else 20  # one 40×40 (1,600 pixels) file per class
            (tmp_path / "tree" / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(tmp_path / "tree" / name / f"{i}.png")
    cfg = DataConfig(kind="folder", root=str(tmp_path / "tree"), image_size=16, max_pixels=1000,
                     split_fractions=(0.5, 0.25, 0.25))
    data = load_dataset(cfg, progress=False)
    assert sorted(s.path for s in data.skipped) == ["a/0.png", "b/0.png"]
    assert all("1,600 pixels" in s.reason and "above the limit of 1,000" in s.reason for s in data.skipped)
    assert sum(len(t.paths) for t in data.splits.values()) == 6
    with pytest.raises(ValueError, match="data.max_pixels must be >= 0"):
        DataConfig(max_pixels=-1)
