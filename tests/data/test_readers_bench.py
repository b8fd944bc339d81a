"""The reader benchmark on a handful of tiny images: its figures and its printout, not its speed."""

from pathlib import Path

import numpy as np
import pytest

from bench.reader_bench import load_chunk, measure, run_reader_bench, write_images


def test_written_images_load_as_the_dataset_loader_loads_them(tmp_path: Path) -> None:
    paths = write_images(tmp_path, 4, 32)
    assert [len(paths[f]) for f in ("png", "dicom")] == [4, 4]
    png, dicom = load_chunk(paths["png"], 16), load_chunk(paths["dicom"], 16)
    assert png.shape == dicom.shape == (4, 16, 16) and png.dtype == dicom.dtype == np.float32
    assert 0 <= dicom.min() < dicom.max() <= 1  # the 12-bit copies are percentile-clipped, not blank


def test_run_reader_bench_reports_every_format_and_mode(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_reader_bench(n_images=6, size=32, image_size=16, workers=2, repeats=2, modes=("serial", "threads"))
    assert report["target_images_per_s"] == 780 and report["settings"]["n_images"] == 6
    for fmt in ("png", "dicom"):
        assert set(report[fmt]) == {"serial", "threads"}
        for figures in report[fmt].values():
            assert figures["best_images_per_s"] >= figures["images_per_s"] > 0 and len(figures["seconds"]) == 2
    printed = capsys.readouterr().out
    assert "6 images of 32×32 read and resized to 16×16" in printed
    assert "PNG   serial" in printed and "DICOM threads ×2" in printed


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown modes"):
        run_reader_bench(n_images=1, modes=("gpu",))


@pytest.mark.slow
def test_process_pool_mode(tmp_path: Path) -> None:
    """Spawned workers import the loader (and torch) once, in the untimed warm-up."""
    paths = write_images(tmp_path, 4, 32)
    seconds = measure(paths["dicom"], 16, "processes", workers=1, repeats=1)
    assert len(seconds) == 1 and seconds[0] > 0
