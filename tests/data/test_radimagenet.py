"""The RadImageNet layout (radiology_ai/<modality>/<anatomy>/<pathology>/ with split CSVs), its
subsets and aliases, and detecting a dataset's kind from its path."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.core.config import DataConfig
from bench.data import load_dataset
from bench.data.policy import DatasetError
from bench.data.radimagenet import radimagenet_datalist
from bench.data.sources import detect_source

from .dicom_files import write_dicom

BRAIN = ("edema", "normal", "pituatary_lesion")  # the release's spelling of pituitary


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(path)


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "label"])
        writer.writerows(rows)


def radimagenet_tree(root: Path, per_class: int = 6, csv_dir: str = "",
                     extra_rows: dict[str, list[tuple[str, str]]] | None = None) -> Path:
    """``root/radiology_ai/{MR/brain/<3 classes>, CT/abd/normal}`` and split CSVs (4/1/1 per class)."""
    rows: dict[str, list[tuple[str, str]]] = {"train": [], "val": [], "test": []}
    folders = [("MR", "brain", p) for p in BRAIN] + [("CT", "abd", "normal")]
    for c, (modality, anatomy, pathology) in enumerate(folders):
        for i in range(per_class):
            rel = f"radiology_ai/{modality}/{anatomy}/{pathology}/{modality.lower()}{c}_{i:03d}.png"
            _png(root / rel, 30 * c + i)
            split = "train" if i < per_class - 2 else ("val", "test")[i - per_class + 2]
            rows[split].append((rel, f"{anatomy}-{pathology}"))
    for split, extra in (extra_rows or {}).items():
        rows[split] += extra
    for split, split_rows in rows.items():
        _write_csv(root / csv_dir / f"RadiologyAI_{split}.csv", split_rows)
    return root


def test_a_subset_keeps_its_rows_with_the_csv_splits_and_aliases(tmp_path: Path) -> None:
    root = radimagenet_tree(tmp_path)
    base, names, samples = radimagenet_datalist(tmp_path, subset="MR/brain")
    assert base == root
    assert names == ["edema", "normal", "pituitary_lesion"]
    assert len(samples) == 18 and all("/MR/brain/" in str(s.path) for s in samples)
    assert {s.split for s in samples if s.label == "pituitary_lesion"} == {"train", "val", "test"}
    assert sum(s.split == "train" for s in samples) == 12
    assert all(s.path.is_file() for s in samples)


def test_the_whole_set_names_classes_by_their_folder_path(tmp_path: Path) -> None:
    radimagenet_tree(tmp_path)
    _, names, samples = radimagenet_datalist(tmp_path)
    assert names == ["CT-abd-normal", "MR-brain-edema", "MR-brain-normal", "MR-brain-pituitary_lesion"]
    assert len(samples) == 24


@pytest.mark.parametrize("given", ["root", "radiology_ai", "csv"])
def test_the_root_radiology_ai_or_a_split_csv_all_work(tmp_path: Path, given: str) -> None:
    root = radimagenet_tree(tmp_path / "rin", csv_dir="radiology_ai")  # the CSVs inside radiology_ai/
    path = {"root": root, "radiology_ai": root / "radiology_ai",
            "csv": root / "radiology_ai" / "RadiologyAI_val.csv"}[given]
    base, names, _ = radimagenet_datalist(path, subset="MR/brain")
    assert base == root and len(names) == 3


def test_an_escaping_row_is_refused_even_outside_the_subset(tmp_path: Path) -> None:
    radimagenet_tree(tmp_path, extra_rows={"train": [("../outside.png", "brain-edema")]})
    with pytest.raises(DatasetError, match=r"RadiologyAI_train.csv \(line 18\): path '../outside.png' leaves"):
        radimagenet_datalist(tmp_path, subset="MR/brain")


def test_a_missing_subset_lists_the_subsets_present(tmp_path: Path) -> None:
    radimagenet_tree(tmp_path)
    with pytest.raises(DatasetError, match=r"no image under radiology_ai/MR/knee/; subsets present: CT/abd, MR/brain"):
        radimagenet_datalist(tmp_path, subset="MR/knee")


def test_an_image_in_two_splits_is_refused(tmp_path: Path) -> None:
    radimagenet_tree(tmp_path, extra_rows={"test": [("radiology_ai/MR/brain/edema/mr0_000.png", "brain-edema")]})
    with pytest.raises(DatasetError, match=r"listed in both the 'train' and the 'test' split"):
        radimagenet_datalist(tmp_path, subset="MR/brain")


def test_some_but_not_all_split_csvs_is_an_error(tmp_path: Path) -> None:
    radimagenet_tree(tmp_path)
    (tmp_path / "RadiologyAI_test.csv").unlink()
    with pytest.raises(DatasetError, match=r"lacks \['RadiologyAI_test.csv'\]"):
        radimagenet_datalist(tmp_path)


def test_without_split_csvs_the_tree_is_split_stratified(tmp_path: Path) -> None:
    radimagenet_tree(tmp_path)
    for split in ("train", "val", "test"):
        (tmp_path / f"RadiologyAI_{split}.csv").unlink()
    (tmp_path / "radiology_ai" / "MR" / "brain" / "hemorrhage").mkdir()  # an empty class
    _, names, samples = radimagenet_datalist(tmp_path, subset="MR/brain", seed=3)
    assert names == ["edema", "hemorrhage", "normal", "pituitary_lesion"]
    assert {s.split for s in samples if s.label == "edema"} == {"train", "val", "test"}
    with pytest.raises(DatasetError, match="class 'hemorrhage' has no images"):
        load_dataset(DataConfig(kind="radimagenet", root=str(tmp_path), subset="MR/brain", image_size=16),
                     progress=False)


def test_a_radimagenet_subset_loads_with_dicom_files_among_the_pngs(tmp_path: Path) -> None:
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    dicom_rows = [(f"radiology_ai/MR/brain/{p}/scan.dcm", f"brain-{p}") for p in BRAIN]
    for rel, _ in dicom_rows:
        write_dicom(tmp_path / rel, ramp)
    radimagenet_tree(tmp_path, extra_rows={"train": dicom_rows})
    data = load_dataset(DataConfig(kind="radimagenet", root=str(tmp_path), subset="MR/brain", image_size=16),
                        progress=False)
    assert data.name == "radimagenet-MR-brain" and data.kind == "radimagenet" and data.subset == "MR/brain"
    assert len(data.splits["train"].labels) == 15 and not data.skipped
    assert data.class_names == ["edema", "normal", "pituitary_lesion"]


# --------------------------------------------------------------------------- detection


def test_detect_source_names_each_kind(tmp_path: Path) -> None:
    rin = radimagenet_tree(tmp_path / "rin")
    assert detect_source(rin).kind == "radimagenet"
    assert detect_source(rin / "radiology_ai").kind == "radimagenet"
    assert detect_source(rin / "RadiologyAI_train.csv").root == rin
    folder = tmp_path / "folder"
    for name in ("a", "b"):
        _png(folder / name / "0.png", 1)
    assert detect_source(folder).kind == "folder"
    dicoms = tmp_path / "dicoms"
    for name in ("a", "b"):
        write_dicom(dicoms / name / "IM0001", np.zeros((4, 4), dtype=np.uint16))  # no suffix: the DICM marker
    assert detect_source(dicoms).kind == "dicom"
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\n")
    assert detect_source(manifest).kind == "manifest"
    (folder / "manifest.csv").write_text("path,label\n")
    found = detect_source(folder)
    assert (found.kind, found.root) == ("manifest", folder / "manifest.csv")
    with pytest.raises(DatasetError, match="no such file or folder"):
        detect_source(tmp_path / "absent")
