"""End to end on the real RadImageNet layout: ``medbench run --data <folder>`` detects it, refuses
a split CSV row that leaves the dataset root before any training; once that row is gone,
``--on-bad-file=fail`` stops at the first corrupt file, and the default trains, scores the
baselines and records the corrupt files it skipped in valid results."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.results.store import load_result
from bench.stages.checkpoint import load_checkpoint
from data.dicom_files import write_dicom
from engine_helpers import medbench

pytestmark = pytest.mark.slow

PATHOLOGIES = ("edema", "normal", "pituatary_lesion")  # the release's spelling of pituitary
PER_CLASS = 12
SPLIT_OF = ["train"] * 8 + ["val"] * 2 + ["test"] * 2
ESCAPING_ROW = ("../../outside.png", "brain-edema")
CORRUPT = {  # dataset-relative path -> what the file holds
    "radiology_ai/MR/brain/edema/mr_broken.png": b"\x89PNG\r\n\x1a\n truncated",
    "radiology_ai/MR/brain/normal/mr_empty.png": b"",
    "radiology_ai/MR/brain/pituatary_lesion/mr_garbage.dcm": b"not a DICOM file at all",
}


def _image(c: int, i: int) -> np.ndarray:
    """A 64x64 slice whose bright disc sits where its class puts it, so one epoch learns something."""
    rng = np.random.default_rng(100 * c + i)
    yy, xx = np.mgrid[:64, :64]
    cy, cx = ((16, 16), (16, 48), (48, 32))[c]
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 < 120
    return np.clip(40 + 160 * disc + rng.normal(0, 15, (64, 64)), 0, 255).astype(np.uint8)


def _build(root: Path) -> dict[str, list[tuple[str, str]]]:
    """``root/radiology_ai/MR/brain/<3 pathologies>/`` (PNGs and a DICOM each), a CT class outside the
    subset, corrupt files, and the split CSV rows (returned so a test can edit and rewrite them)."""
    rows: dict[str, list[tuple[str, str]]] = {"train": [], "val": [], "test": []}
    for c, pathology in enumerate(PATHOLOGIES):
        for i, split in enumerate(SPLIT_OF):
            rel = f"radiology_ai/MR/brain/{pathology}/mr{c}_{i:03d}." + ("dcm" if i == 0 else "png")
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            if i == 0:  # a plain 16-bit MONOCHROME2 DICOM among the PNGs
                write_dicom(root / rel, _image(c, i).astype(np.uint16) * 256)
            else:
                Image.fromarray(_image(c, i)).save(root / rel)
            rows[split].append((rel, f"brain-{pathology}"))
    for i in range(3):  # outside the MR/brain subset: never read
        rel = f"radiology_ai/CT/abd/normal/ct_{i}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_image(0, i)).save(root / rel)
        rows[SPLIT_OF[i * 5]].append((rel, "abd-normal"))
    for rel, content in CORRUPT.items():
        (root / rel).write_bytes(content)
        rows["train"].append((rel, "brain-" + rel.split("/")[3]))
    rows["val"].insert(1, ESCAPING_ROW)
    return rows


def _write_csvs(root: Path, rows: dict[str, list[tuple[str, str]]]) -> None:
    for split, split_rows in rows.items():
        with open(root / f"RadiologyAI_{split}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["filename", "label"])
            writer.writerows(split_rows)


def _run(tmp_path: Path, dataset: Path, *extra: str) -> object:
    out = tmp_path / "out"
    return medbench(
        "run", "--data", str(dataset), "--set", "data.subset=MR/brain", *extra,
        "--set", "train.epochs=1", "--set", "train.min_epochs=0", "--set", "train.patience=0",
        "--set", "train.warmup_epochs=0", "--set", "train.bootstrap=20", "--set", "data.image_size=32",
        "--models", "pyramid_softmax", "--seeds", "0", "--stages", "train,baselines",
        "--results-dir", str(out / "results"), "--checkpoint-dir", str(out / "ckpt"),
        "--artifacts-dir", str(out / "artifacts"), check=False, timeout=300)


def test_radimagenet_tree_refused_with_an_escaping_row_then_trained_with_corrupt_files_skipped(tmp_path):
    dataset = tmp_path / "RadImageNet"
    rows = _build(dataset)
    _write_csvs(dataset, rows)

    refused = _run(tmp_path, dataset)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    errors = [line for line in refused.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1
    assert "RadiologyAI_val.csv (line 3): path '../../outside.png' leaves the dataset root" in errors[0]
    assert "detected as kind 'radimagenet'" in refused.stderr
    assert not (tmp_path / "out").exists()  # refused before anything was written

    rows["val"].remove(ESCAPING_ROW)
    _write_csvs(dataset, rows)
    failed = _run(tmp_path, dataset, "--on-bad-file", "fail")
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    errors = [line for line in failed.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "radiology_ai/MR/brain/edema/mr_broken.png: corrupt or truncated PNG" in errors[0]
    assert not (tmp_path / "out").exists()

    proc = _run(tmp_path, dataset)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "skipped 3 unreadable file(s) of 39" in proc.stderr

    results = {p.name: load_result(p) for p in (tmp_path / "out" / "results").rglob("*.json")}
    assert "train__pyramid_softmax__seed0.json" in results and len(results) >= 3  # and the baselines
    for name, result in results.items():
        assert result["error"] is None, (name, result["error"])
        info = result["dataset"]
        assert info["kind"] == "radimagenet" and info["subset"] == "MR/brain" and not info["synthetic"]
        assert info["class_names"] == ["edema", "normal", "pituitary_lesion"]  # the alias applied
        assert info["skipped_count"] == 3
        assert sorted(f["path"] for f in info["skipped_files"]) == sorted(CORRUPT)
        assert all(f["reason"] for f in info["skipped_files"])
    train = results["train__pyramid_softmax__seed0.json"]["metrics"]
    assert train["num_test"] == 6 and sum(map(sum, train["confusion_matrix"])) == 6

    validate = medbench("results", "validate", "--results-dir", str(tmp_path / "out" / "results"), check=False)
    assert validate.returncode == 0, validate.stderr
    [ckpt] = (tmp_path / "out" / "ckpt").rglob("*.pt")
    assert load_checkpoint(ckpt)["class_names"] == ["edema", "normal", "pituitary_lesion"]
    outside = {p for p in tmp_path.rglob("*") if p.is_file()} - set(dataset.rglob("*")) - set(
        (tmp_path / "out").rglob("*"))
    assert outside == set()  # every write under the chosen roots
