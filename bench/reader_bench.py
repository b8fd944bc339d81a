"""``medbench bench-readers``: how many images per second the dataset loader reads, PNG and DICOM.

``n_images`` synthetic brain slices (:func:`bench.data.samples.render`) are written at ``size`` px
into a temporary folder twice, as 8-bit PNGs (as the synthetic generator writes them) and as 12-bit
MR DICOMs without a window (so the reader takes its slowest path, percentile clipping). Each
set is then read and resized to ``image_size`` px by :func:`bench.data.datasets.load_image`,
exactly as ``load_dataset`` does, three ways: serially (as ``load_dataset`` does today), by a
thread pool and by a process pool of ``workers`` (pool start-up not timed). The files sit in the
page cache, so this is decoding throughput, not disk speed. Figures are printed and returned,
not asserted: the target is ``TARGET_FACTOR`` × the quick trainer's ``TRAINER_IMAGES_PER_S``.
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

TRAINER_IMAGES_PER_S = 260  # the quick suite's trainer throughput on a 2-core CPU (bench-trainer)
TARGET_FACTOR = 3  # the loader should outrun the trainer by this much
FORMATS = ("png", "dicom")
MODES = ("serial", "threads", "processes")


def _write_dicom(path: Path, pixels: np.ndarray) -> None:
    """A 12-bit MR slice as a scanner exports it (explicit VR little endian, no window)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = MRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Modality = "MR"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def write_images(root: Path, n_images: int, size: int, seed: int = 0) -> dict[str, list[Path]]:
    """``n_images`` synthetic slices under ``root``/png and ``root``/dicom; the paths by format."""
    from bench.data.samples import render
    from bench.data.synthetic import CLASS_NAMES

    paths: dict[str, list[Path]] = {fmt: [] for fmt in FORMATS}
    for fmt in FORMATS:
        (root / fmt).mkdir(parents=True, exist_ok=True)
    for i in range(n_images):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))
        image, _ = render(CLASS_NAMES[i % len(CLASS_NAMES)], size, rng)
        png, dicom = root / "png" / f"{i:05d}.png", root / "dicom" / f"{i:05d}.dcm"
        Image.fromarray(image).save(png, compress_level=1)  # as bench.data.synthetic writes them
        _write_dicom(dicom, image.astype(np.uint16) * 16)  # 8 → 12 bits
        paths["png"].append(png)
        paths["dicom"].append(dicom)
    return paths


def load_chunk(paths: list[Path], image_size: int) -> np.ndarray:
    """What ``load_dataset`` does per image, for a chunk of images; runs in a pool worker."""
    from bench.data.datasets import load_image

    return np.stack([load_image(path, image_size) for path in paths])


def _chunks(paths: list[Path], count: int) -> list[list[Path]]:
    step = max(1, -(-len(paths) // count))
    return [paths[i:i + step] for i in range(0, len(paths), step)]


def _timed(read: Callable[[], int], repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        read()
        seconds.append(time.perf_counter() - start)
    return seconds


def _pool_reader(pool: Executor, paths: list[Path], image_size: int, workers: int) -> Callable[[], int]:
    chunks = _chunks(paths, 4 * workers)  # a few chunks per worker: balance without much pickling

    def read() -> int:
        return sum(len(block) for block in pool.map(load_chunk, chunks, [image_size] * len(chunks)))

    return read


def measure(paths: list[Path], image_size: int, mode: str, workers: int, repeats: int) -> list[float]:
    """Seconds to load all ``paths`` in ``mode``, ``repeats`` times (after one untimed warm-up read)."""
    if mode == "serial":
        read: Callable[[], int] = lambda: len(load_chunk(paths, image_size))  # noqa: E731
        read()
        return _timed(read, repeats)
    import multiprocessing

    pool: Executor = (ThreadPoolExecutor(workers) if mode == "threads" else
                      ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")))
    with pool:  # spawn, not fork: the parent holds torch threads
        read = _pool_reader(pool, paths, image_size, workers)
        read()  # warm-up: starts the workers and imports the loader in each
        return _timed(read, repeats)


def run_reader_bench(n_images: int = 500, size: int = 128, image_size: int = 64, workers: int = 2,
                     repeats: int = 3, modes: tuple[str, ...] = MODES, seed: int = 0) -> dict[str, Any]:
    """Write ``n_images`` PNGs and DICOMs at ``size`` px, time loading them at ``image_size`` px.

    Returns ``{"settings": ..., "target_images_per_s": ..., "png": {mode: figures}, "dicom": ...}``
    where each mode's figures are ``images_per_s`` (median over ``repeats``), ``best_images_per_s``
    and ``seconds``; prints one line per format and mode to stdout.
    """
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise ValueError(f"unknown modes {unknown}; valid: {', '.join(MODES)}")
    target = TARGET_FACTOR * TRAINER_IMAGES_PER_S
    report: dict[str, Any] = {"settings": {"n_images": n_images, "size": size, "image_size": image_size,
                                           "workers": workers, "repeats": repeats, "seed": seed},
                              "target_images_per_s": target}
    with tempfile.TemporaryDirectory(prefix="medbench-readers-") as tmp:
        start = time.perf_counter()
        paths = write_images(Path(tmp), n_images, size, seed)
        log.info("wrote %d PNGs and %d DICOMs in %.1f s", n_images, n_images, time.perf_counter() - start)
        sys.stdout.write(f"loader throughput: {n_images} images of {size}×{size} read and resized to "
                         f"{image_size}×{image_size} (load_image), median of {repeats}; "
                         f"target ≥ {target} images/s ({TARGET_FACTOR} × the trainer's {TRAINER_IMAGES_PER_S})\n")
        for fmt in FORMATS:
            report[fmt] = {}
            for mode in modes:
                seconds = measure(paths[fmt], image_size, mode, workers, repeats)
                figures = {"images_per_s": n_images / statistics.median(seconds),
                           "best_images_per_s": n_images / min(seconds), "seconds": seconds}
                report[fmt][mode] = figures
                label = mode if mode == "serial" else f"{mode} ×{workers}"
                sys.stdout.write(f"  {fmt.upper():5s} {label:13s} {figures['images_per_s']:7.0f} images/s "
                                 f"(best {figures['best_images_per_s']:.0f})"
                                 f"{'' if figures['images_per_s'] >= target else '  below target'}\n")
    return report
