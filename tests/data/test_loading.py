"""The image loader: worker processes give the same array as the main process, bad files included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.data import loading
from bench.data.loading import read_images, resolve_workers
from bench.data.readers import ImageReadError


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
    serial, serial_problems = read_images(paths, 16, workers=1, progress=False)
    parallel, parallel_problems = read_images(paths, 16, workers=2, progress=False)
    assert serial.shape == (30, 16, 16) and serial.dtype == np.float32
    assert np.array_equal(serial, parallel)
    assert set(serial_problems) == set(parallel_problems) == bad
    assert serial_problems == parallel_problems
    assert all("PNG" in problem or "image" in problem for problem in serial_problems.values())
    assert not serial[sorted(bad)].any() and all(serial[i].any() for i in range(30) if i not in bad)


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
    assert resolve_workers(8, loading.MIN_PARALLEL_IMAGES) == -(-loading.MIN_PARALLEL_IMAGES // loading.CHUNK_IMAGES)
    with pytest.raises(ValueError, match="workers must be >= 0"):
        resolve_workers(-1, 10)
