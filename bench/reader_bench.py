"""``medbench bench-readers``: how many images per second the dataset loader reads, PNG and DICOM,
against how many the quick trainer consumes, both measured in the same command.

``n_images`` synthetic brain slices (:func:`bench.data.samples.render`) are written at ``size`` px
into a temporary folder twice, as 8-bit PNGs (as the synthetic generator writes them) and as 12-bit
MR DICOMs without a window (so the reader takes its slowest path, percentile clipping). Each
set is then read by :func:`bench.data.loading.read_images`, the function ``load_dataset`` calls,
in the main process (``serial``) and with ``workers`` processes (``parallel``, pool start-up
included: the loader pays it too). The files sit in the page cache, so this is decoding
throughput, not disk speed. The trainer figure is the quick suite's trainer on random images
of the suite's shape, with torch's default threads (all cores). Figures are printed and returned, not
asserted; the target is ``TARGET_FACTOR`` × the trainer's images/s.
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.data.loading import read_images

log = logging.getLogger(__name__)

TARGET_FACTOR = 3  # the loader should outrun the trainer by this much
FORMATS = ("png", "dicom")
MODES = ("serial", "parallel")


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


def trainer_images_per_s(suite_name: str = "quick", model_name: str = "pyramid_softmax", batches: int = 12,
                         repeats: int = 3) -> float:
    """Images/s of the suite's trainer (:meth:`bench.train.Trainer.train_epoch`, the suite's recipe,
    augmentation and sampler included) for ``model_name``: the median of ``repeats`` epochs of
    ``batches`` batches of random in-memory images, after one warm-up epoch."""
    import torch

    from bench.config import load_suite
    from bench.data.datasets import LoadedDataset, SplitTensors
    from bench.data.synthetic import CLASS_NAMES
    from bench.train import Trainer

    suite = load_suite(suite_name)
    n, side = suite.train.batch_size * batches, suite.data.image_size
    generator = torch.Generator().manual_seed(0)
    split = SplitTensors(images=torch.randn(n, suite.data.in_chans, side, side, generator=generator),
                         labels=torch.arange(n) % len(CLASS_NAMES), paths=[""] * n)
    data = LoadedDataset(name="random", synthetic=True, class_names=list(CLASS_NAMES), root=Path("."),
                         splits={"train": split, "val": split, "test": split})
    with tempfile.TemporaryDirectory(prefix="medbench-trainer-") as tmp:
        trainer = Trainer(suite, model_name, 0, data, Path(tmp) / "unused.pt", progress=False)
        rates = []
        for epoch in range(repeats + 1):
            _, seen, seconds = trainer.train_epoch(epoch)
            rates.append(seen / seconds)
    log.info("trainer: %s, suite %s, %d threads", model_name, suite_name, torch.get_num_threads())
    return statistics.median(rates[1:])


def measure(paths: list[Path], image_size: int, mode: str, workers: int, repeats: int) -> list[float]:
    """Seconds for the loader to read all ``paths`` in ``mode``, ``repeats`` times (after one
    untimed read, which brings the files into the page cache)."""
    count = 1 if mode == "serial" else workers
    seconds = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        problems = read_images(paths, image_size, count, progress=False).problems
        if i:
            seconds.append(time.perf_counter() - start)
        if problems:
            raise RuntimeError(f"the benchmark's own images were rejected: {problems}")
    return seconds


def run_reader_bench(n_images: int = 2000, size: int = 128, image_size: int = 64, workers: int = 2,
                     repeats: int = 3, modes: tuple[str, ...] = MODES, seed: int = 0,
                     trainer: float | None = None) -> dict[str, Any]:
    """Write ``n_images`` PNGs and DICOMs at ``size`` px, time loading them at ``image_size`` px.

    ``trainer``: the trainer's images/s; measured (:func:`trainer_images_per_s`) when None.
    Returns ``{"settings": ..., "trainer_images_per_s": ..., "target_images_per_s": ...,
    "png": {mode: figures}, "dicom": ...}`` where each mode's figures are ``images_per_s``
    (median over ``repeats``), ``best_images_per_s``, ``seconds`` and ``times_trainer``;
    prints one line per format and mode to stdout.
    """
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise ValueError(f"unknown modes {unknown}; valid: {', '.join(MODES)}")
    trainer = trainer_images_per_s() if trainer is None else trainer
    target = TARGET_FACTOR * trainer
    report: dict[str, Any] = {"settings": {"n_images": n_images, "size": size, "image_size": image_size,
                                           "workers": workers, "repeats": repeats, "seed": seed},
                              "trainer_images_per_s": trainer, "target_images_per_s": target}
    with tempfile.TemporaryDirectory(prefix="medbench-readers-") as tmp:
        start = time.perf_counter()
        paths = write_images(Path(tmp), n_images, size, seed)
        log.info("wrote %d PNGs and %d DICOMs in %.1f s", n_images, n_images, time.perf_counter() - start)
        sys.stdout.write(f"loader throughput: {n_images} images of {size}×{size} read and resized to "
                         f"{image_size}×{image_size} (read_images), median of {repeats}; trainer "
                         f"{trainer:.0f} images/s, target ≥ {target:.0f} images/s ({TARGET_FACTOR} × the trainer's)\n")
        for fmt in FORMATS:
            report[fmt] = {}
            for mode in modes:
                seconds = measure(paths[fmt], image_size, mode, workers, repeats)
                rate = n_images / statistics.median(seconds)
                figures = {"images_per_s": rate, "best_images_per_s": n_images / min(seconds),
                           "seconds": seconds, "times_trainer": rate / trainer}
                report[fmt][mode] = figures
                label = mode if mode == "serial" else f"{mode} ×{workers}"
                sys.stdout.write(f"  {fmt.upper():5s} {label:13s} {rate:7.0f} images/s "
                                 f"(best {figures['best_images_per_s']:.0f}), {figures['times_trainer']:.1f} × the "
                                 f"trainer{'' if rate >= target else '  below target'}\n")
    return report
