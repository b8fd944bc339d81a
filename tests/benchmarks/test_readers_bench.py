"""The reader benchmark on a handful of tiny images: its figures and its printout, not its speed."""

import statistics
from pathlib import Path

import numpy as np
import pytest

from bench.benchmarks.readers import TrainerProbe, run_reader_bench, write_images
from bench.data import loading
from bench.data.loading import read_images


def test_written_images_load_as_the_dataset_loader_loads_them(tmp_path: Path) -> None:
    paths = write_images(tmp_path, 4, 32)
    assert [len(paths[f]) for f in ("png", "dicom")] == [4, 4]
    (png, _, _, png_problems), (dicom, _, _, dicom_problems) = (read_images(paths[f], 16, 1, progress=False)
                                                                for f in ("png", "dicom"))
    assert not png_problems and not dicom_problems
    assert png.shape == dicom.shape == (4, 16, 16) and png.dtype == dicom.dtype == np.float32
    assert 0 <= dicom.min() < dicom.max() <= 1  # the 12-bit copies are percentile-clipped, not blank
    for a, b in zip(png, dicom):  # the same slices: percentile clipping only stretches them
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.95


def test_run_reader_bench_reports_every_format_and_mode(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loading, "MIN_PARALLEL_IMAGES", 1)  # so that the parallel mode starts workers
    report = run_reader_bench(n_images=6, size=32, image_size=16, workers=2, repeats=2, trainer=100.0)
    assert report["trainer_images_per_s"] == 100.0 and report["target_factor"] == 3
    assert report["settings"]["n_images"] == 6
    for fmt in ("png", "dicom"):
        assert set(report[fmt]) == {"serial", "parallel"}
        for figures in report[fmt].values():
            assert figures["best_images_per_s"] >= figures["images_per_s"] > 0 and len(figures["seconds"]) == 2
            assert figures["times_trainer"] == pytest.approx(statistics.median(6 / t for t in figures["seconds"]) / 100)
    printed = capsys.readouterr().out
    assert "6 images of 32×32 read and resized to 16×16" in printed and "trainer: 100 images/s" in printed
    assert "PNG   serial" in printed and "DICOM parallel ×2" in printed


def test_trainer_throughput_is_measured() -> None:
    probe = TrainerProbe(batches=1)
    try:
        assert probe.epoch() > 0 and probe.epochs == 2  # the warm-up, then this one
    finally:
        probe.close()


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown modes"):
        run_reader_bench(n_images=1, modes=("gpu",), trainer=1.0)
