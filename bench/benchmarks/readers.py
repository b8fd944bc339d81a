"""``medbench bench-readers``: how many images per second the dataset loader reads, PNG and DICOM,
against how many the quick trainer consumes, both measured in the same command.

``n_images`` synthetic brain slices (:func:`bench.data.samples.render`) are written at ``size`` px
into a temporary folder twice, as 8-bit PNGs (as the synthetic generator writes them) and as 12-bit
MR DICOMs without a window (so the reader takes its slowest path, percentile clipping). Each
set is then read by :func:`bench.data.loading.read_images`, the function ``load_dataset`` calls,
in the main process (``serial``) and with ``workers`` processes (``parallel``, pool start-up
included: the loader pays it too). The files sit in the page cache, so this is decoding
throughput, not disk speed. The trainer figure is the quick suite's trainer on random images
of the suite's shape, with torch's default threads (all cores), timed in every round beside the
loader so that a shared machine's noise hits both. Figures are printed and returned, not
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


class TrainerProbe:
    """The suite's trainer (:meth:`bench.stages.train.Trainer.train_epoch`: the suite's recipe, augmentation
    and sampler included) on ``batches`` batches of random in-memory images of the suite's shape,
    with torch's default threads; each :meth:`epoch` returns its images/s."""

    def __init__(self, suite_name: str = "quick", model_name: str = "pyramid_softmax", batches: int = 12) -> None:
        import torch

        from bench.core.config import load_suite
        from bench.data.datasets import LoadedDataset, SplitTensors
        from bench.data.synthetic import CLASS_NAMES
        from bench.stages.train import Trainer

        suite = load_suite(suite_name)
        n, side = suite.train.batch_size * batches, suite.data.image_size
        generator = torch.Generator().manual_seed(0)
        split = SplitTensors(images=torch.randn(n, suite.data.in_chans, side, side, generator=generator),
                             labels=torch.arange(n) % len(CLASS_NAMES), paths=[""] * n)
        data = LoadedDataset(name="random", synthetic=True, class_names=list(CLASS_NAMES), root=Path("."),
                             splits={"train": split, "val": split, "test": split})
        self._tmp = tempfile.TemporaryDirectory(prefix="medbench-trainer-")
        self.trainer = Trainer(suite, model_name, 0, data, Path(self._tmp.name) / "unused.pt", progress=False)
        self.epochs = 0
        log.info("trainer: %s, suite %s, %d threads", model_name, suite_name, torch.get_num_threads())
        self.epoch()  # warm-up

    def epoch(self) -> float:
        _, seen, seconds = self.trainer.train_epoch(self.epochs)
        self.epochs += 1
        return seen / seconds

    def close(self) -> None:
        self._tmp.cleanup()


def _read_seconds(paths: list[Path], image_size: int, workers: int) -> float:
    start = time.perf_counter()
    problems = read_images(paths, image_size, workers, progress=False).problems
    if problems:
        raise RuntimeError(f"the benchmark's own images were rejected: {problems}")
    return time.perf_counter() - start


def run_reader_bench(n_images: int = 4000, size: int = 128, image_size: int = 64, workers: int = 2,
                     repeats: int = 3, modes: tuple[str, ...] = MODES, seed: int = 0,
                     trainer: float | None = None) -> dict[str, Any]:
    """Write ``n_images`` PNGs and DICOMs at ``size`` px, time loading them at ``image_size`` px.

    Each of ``repeats`` rounds times one trainer epoch (unless ``trainer``, a fixed images/s, is
    given), then every format and mode, so that machine noise hits both alike; the ratio to the
    trainer is the median of the rounds' ratios. Returns ``{"settings": ..., "trainer_images_per_s":
    ..., "target_factor": ..., "png": {mode: figures}, "dicom": ...}`` where each mode's figures are
    ``images_per_s`` (median), ``best_images_per_s``, ``seconds`` and ``times_trainer``; prints one
    line per format and mode to stdout.
    """
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise ValueError(f"unknown modes {unknown}; valid: {', '.join(MODES)}")
    report: dict[str, Any] = {"settings": {"n_images": n_images, "size": size, "image_size": image_size,
                                           "workers": workers, "repeats": repeats, "seed": seed},
                              "target_factor": TARGET_FACTOR}
    probe = TrainerProbe() if trainer is None else None
    trainer_rates: list[float] = []
    seconds: dict[tuple[str, str], list[float]] = {(fmt, mode): [] for fmt in FORMATS for mode in modes}
    with tempfile.TemporaryDirectory(prefix="medbench-readers-") as tmp:
        start = time.perf_counter()
        paths = write_images(Path(tmp), n_images, size, seed)
        log.info("wrote %d PNGs and %d DICOMs in %.1f s", n_images, n_images, time.perf_counter() - start)
        for fmt in FORMATS:  # brings the files into the page cache: decoding, not disk, is timed
            _read_seconds(paths[fmt], image_size, 1)
        try:
            for _ in range(repeats):
                trainer_rates.append(probe.epoch() if probe is not None else trainer)
                for (fmt, mode), times in seconds.items():
                    times.append(_read_seconds(paths[fmt], image_size, 1 if mode == "serial" else workers))
        finally:
            if probe is not None:
                probe.close()
    report["trainer_images_per_s"] = statistics.median(trainer_rates)
    sys.stdout.write(f"loader throughput: {n_images} images of {size}×{size} read and resized to "
                     f"{image_size}×{image_size} (read_images), median of {repeats} rounds, each also timing "
                     f"the quick trainer: {report['trainer_images_per_s']:.0f} images/s; target "
                     f"{TARGET_FACTOR} × the trainer\n")
    for (fmt, mode), times in seconds.items():
        ratio = statistics.median(n_images / t / rate for t, rate in zip(times, trainer_rates))
        figures = {"images_per_s": n_images / statistics.median(times), "best_images_per_s": n_images / min(times),
                   "seconds": times, "times_trainer": ratio}
        report.setdefault(fmt, {})[mode] = figures
        label = mode if mode == "serial" else f"{mode} ×{workers}"
        sys.stdout.write(f"  {fmt.upper():5s} {label:13s} {figures['images_per_s']:7.0f} images/s "
                         f"(best {figures['best_images_per_s']:.0f}), {ratio:.1f} × the trainer"
                         f"{'' if ratio >= TARGET_FACTOR else '  below target'}\n")
    return report
