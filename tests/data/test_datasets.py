import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.core.config import DataConfig
from bench.data import ImageReadError, load_dataset
from bench.data.datasets import DatasetError, folder_datalist, manifest_datalist
from bench.data.loading import load_image
from bench.data.synthetic import CLASS_NAMES

from .dicom_files import write_dicom

CLASSES = ("glioma", "meningioma", "normal")


def _png(path: Path, value: int, size: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size), value, dtype=np.uint8)).save(path)
    return path


def _flat_folder(root: Path, per_class: int = 6) -> Path:
    for c, name in enumerate(CLASSES):
        for i in range(per_class):
            _png(root / name / f"{i}.png", 40 * c + i)
    return root


def test_folder_without_split_folders_is_split_stratified(tmp_path: Path) -> None:
    root = _flat_folder(tmp_path / "ds")
    (root / "normal" / "README.txt").write_text("skipped")
    names, samples = folder_datalist(root)
    assert names == list(CLASSES)
    assert len(samples) == 18
    for name in CLASSES:
        assert {s.split for s in samples if s.label == name} == {"train", "val", "test"}
    assert folder_datalist(root)[1] == samples  # deterministic


def test_folder_with_split_folders_keeps_them(tmp_path: Path) -> None:
    for split in ("train", "val", "test"):
        for name in CLASSES[:2]:
            _png(tmp_path / split / name / f"{split}.png", 10)
    _png(tmp_path / "train" / "normal" / "only.png", 10)
    names, samples = folder_datalist(tmp_path)
    assert names == list(CLASSES)
    assert {(s.split, s.label) for s in samples} == {
        (split, name) for split in ("train", "val", "test") for name in CLASSES[:2]} | {("train", "normal")}
    assert all(s.path.parent.parent.name == s.split for s in samples)


def test_folder_with_some_split_folders_is_an_error(tmp_path: Path) -> None:
    _png(tmp_path / "train" / "a" / "0.png", 1)
    _png(tmp_path / "val" / "a" / "0.png", 1)
    with pytest.raises(DatasetError, match=r"lacks \['test'\]"):
        folder_datalist(tmp_path)


def test_dicom_folder(tmp_path: Path) -> None:
    ramp = np.arange(16, dtype=np.uint16).reshape(4, 4)
    for name in ("ct_a", "ct_b"):
        for i in range(3):
            write_dicom(tmp_path / name / (f"{i}.dcm" if i else "IM0000"), ramp)
    _png(tmp_path / "ct_a" / "preview.png", 3)  # not DICOM: skipped
    names, samples = folder_datalist(tmp_path, dicom=True)
    assert names == ["ct_a", "ct_b"]
    assert sorted(s.path.name for s in samples if s.label == "ct_a") == ["1.dcm", "2.dcm", "IM0000"]


def _write_manifest(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_manifest_with_and_without_splits(tmp_path: Path) -> None:
    _flat_folder(tmp_path)
    rows = [{"path": f"{name}/{i}.png", "label": name} for name in CLASSES for i in range(6)]
    names, samples = manifest_datalist(_write_manifest(tmp_path / "plain.csv", rows))
    assert names == list(CLASSES)
    assert samples[0].path == tmp_path / "glioma" / "0.png"
    assert {s.split for s in samples} == {"train", "val", "test"}
    split_rows = [{**r, "split": ("train", "val", "test")[i % 3]} for i, r in enumerate(rows)]
    _, samples = manifest_datalist(_write_manifest(tmp_path / "split.csv", split_rows))
    assert [s.split for s in samples] == [r["split"] for r in split_rows]


@pytest.mark.parametrize(("rows", "problem"), [
    ([{"file": "a.png", "label": "x"}], r"lacks column\(s\) \['path'\]"),
    ([{"path": "a.png", "label": "x", "split": "holdout"}], "split 'holdout' is not one of"),
    ([{"path": "a.png", "label": "x", "split": "train"}, {"path": "b.png", "label": "x", "split": ""}],
     "some rows have a split"),
])
def test_bad_manifests_are_explained(tmp_path: Path, rows: list[dict[str, str]], problem: str) -> None:
    with pytest.raises(DatasetError, match=problem):
        manifest_datalist(_write_manifest(tmp_path / "m.csv", rows))


def test_load_image_pads_to_square_then_resizes(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.fromarray(np.full((10, 20), 255, dtype=np.uint8)).save(path)
    out = load_image(path, 8)
    assert out.shape == (8, 8)
    assert out[0].max() < 0.01 and out[4].min() > 0.99  # black bars above and below


def test_load_dataset_end_to_end_on_synthetic(tmp_path: Path) -> None:
    cfg = DataConfig(kind="synthetic", root=str(tmp_path / "tiny"), num_images=100, generator_size=32,
                     image_size=16, in_chans=3)
    ds = load_dataset(cfg, progress=False)
    assert ds.name == "tiny" and ds.synthetic and ds.class_names == list(CLASS_NAMES)
    assert sum(len(s.labels) for s in ds.splits.values()) == 100
    train = ds.splits["train"]
    assert train.images.shape == (len(train.labels), 3, 16, 16) and train.images.dtype == torch.float32
    assert train.labels.dtype == torch.int64 and set(train.labels.tolist()) == set(range(10))
    assert torch.equal(train.images[:, 0], train.images[:, 2])
    assert train.images.mean().item() == pytest.approx(0.0, abs=1e-4)
    assert train.images.std().item() == pytest.approx(1.0, abs=1e-3)
    for split in ds.splits.values():
        assert len(split.paths) == len(split.labels) == len(split.mask_paths)
        assert all(Path(p).is_file() for p in split.paths + split.mask_paths)


def test_load_dataset_from_folder_and_manifest(tmp_path: Path) -> None:
    root = _flat_folder(tmp_path / "ds")
    ds = load_dataset(DataConfig(kind="folder", root=str(root), image_size=16), progress=False)
    assert ds.name == "ds" and not ds.synthetic and ds.class_names == list(CLASSES)
    assert ds.splits["val"].mask_paths is None
    rows = [{"path": f"ds/{name}/{i}.png", "label": name} for name in CLASSES for i in range(6)]
    manifest = _write_manifest(tmp_path / "brains.csv", rows)
    by_csv = load_dataset(DataConfig(kind="manifest", root=str(manifest), image_size=16), progress=False)
    assert by_csv.name == "brains"
    assert torch.equal(by_csv.splits["train"].images, ds.splits["train"].images)


def test_a_corrupt_file_fails_the_load_naming_it_when_the_policy_is_fail(tmp_path: Path) -> None:
    root = _flat_folder(tmp_path / "ds")
    (root / "normal" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ImageReadError, match=r"normal/3.png: corrupt or truncated PNG"):
        load_dataset(DataConfig(kind="folder", root=str(root), image_size=16, on_bad_file="fail"), progress=False)


def test_missing_root_is_explained(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such dataset folder"):
        load_dataset(DataConfig(kind="folder", root=str(tmp_path / "absent")), progress=False)
    with pytest.raises(DatasetError, match="no such manifest file"):
        load_dataset(DataConfig(kind="manifest", root=str(tmp_path / "absent.csv")), progress=False)
