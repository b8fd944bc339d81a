"""Bad input: each policy error before any training, and skipping vs failing on unreadable files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.core.config import ConfigError, DataConfig, load_suite
from bench.data import ImageReadError, load_dataset
from bench.data.datasets import folder_datalist, manifest_datalist
from bench.data.policy import DatasetError, relative_inside
from bench.results.records import dataset_info

CLASSES = ("edema", "glioma", "normal")
CORRUPT_PNG = b"\x89PNG\r\n\x1a\n not really a PNG"


def _png(path: Path, value: int, size: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size), value, dtype=np.uint8)).save(path)
    return path


def _tree(root: Path, classes: tuple[str, ...] = CLASSES, per_class: int = 6) -> Path:
    for c, name in enumerate(classes):
        for i in range(per_class):
            _png(root / name / f"{i}.png", 40 * c + i)
    return root


def _manifest(path: Path, rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _load(root: Path, kind: str = "folder", **kw) -> object:
    return load_dataset(DataConfig(kind=kind, root=str(root), image_size=16, **kw), progress=False)


# --------------------------------------------------------------------------- paths leaving the root


@pytest.mark.parametrize(("raw", "problem"), [
    ("../x.png", "leaves the dataset root"),
    ("glioma/../../x.png", "leaves the dataset root"),
    ("..\\x.png", "leaves the dataset root"),
    ("/etc/passwd", "is absolute"),
    ("C:/scans/x.png", "is absolute"),
    ("", "empty path"),
])
def test_a_manifest_path_may_not_leave_the_dataset_root(tmp_path: Path, raw: str, problem: str) -> None:
    _tree(tmp_path)
    rows = [{"path": f"{n}/{i}.png", "label": n} for n in CLASSES for i in range(6)]
    rows.insert(3, {"path": raw, "label": "glioma"})
    with pytest.raises(DatasetError, match=problem) as info:
        manifest_datalist(_manifest(tmp_path / "m.csv", rows))
    assert "m.csv (line 5)" in str(info.value)


def test_a_mask_path_may_not_leave_the_dataset_root(tmp_path: Path) -> None:
    _tree(tmp_path)
    rows = [{"path": f"{n}/{i}.png", "label": n, "mask_path": ""} for n in CLASSES for i in range(6)]
    rows[0]["mask_path"] = "../../mask.png"
    with pytest.raises(DatasetError, match=r"line 2, mask_path\): path '../../mask.png' leaves"):
        manifest_datalist(_manifest(tmp_path / "m.csv", rows))


def test_relative_inside_keeps_a_plain_relative_path() -> None:
    assert str(relative_inside(" a\\b/c.png ", "m.csv", "line 2")) == "a/b/c.png"


# --------------------------------------------------------------------------- class names


def test_a_label_that_differs_only_in_case_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    _tree(tmp_path)
    rows = [{"path": f"{n}/{i}.png", "label": n} for n in CLASSES for i in range(6)]
    rows[9]["label"] = " GLIOMA "  # stripped, then still differs in case from 'glioma'
    with pytest.raises(DatasetError, match=r"label 'GLIOMA' \(line 11\) matches the class 'glioma' only up to "
                                           r"case or spacing; did you mean 'glioma'\?"):
        manifest_datalist(_manifest(tmp_path / "m.csv", rows))


def test_a_class_folder_that_differs_only_in_spacing_is_refused(tmp_path: Path) -> None:
    _tree(tmp_path, ("white_matter", "normal"))
    _png(tmp_path / "White Matter" / "x.png", 9)
    with pytest.raises(DatasetError, match=r"'White Matter' \(folder White Matter\).*did you mean 'white_matter'\?"):
        folder_datalist(tmp_path)


def test_aliases_merge_a_known_misspelling(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _tree(tmp_path, ("pituatary_lesion", "normal"))
    rows = [{"path": f"{n}/{i}.png", "label": n} for n in ("pituatary_lesion", "normal") for i in range(6)]
    rows[0]["label"] = "pituitary_lesion"  # both spellings: one class
    caplog.set_level("INFO")
    names, samples = manifest_datalist(_manifest(tmp_path / "m.csv", rows))
    assert names == ["normal", "pituitary_lesion"]
    assert sum(s.label == "pituitary_lesion" for s in samples) == 6
    assert "'pituatary_lesion' read as 'pituitary_lesion'" in caplog.text
    assert folder_datalist(tmp_path)[0] == ["normal", "pituitary_lesion"]


# --------------------------------------------------------------------------- classes and splits


@pytest.mark.parametrize("name", ["<b onclick=x>", "edema`s", "a|b", "white matter"])
def test_a_class_name_a_result_cannot_hold_is_refused_naming_the_source(tmp_path: Path, name: str) -> None:
    root = _tree(tmp_path / "data", classes=("normal", "glioma", name))
    with pytest.raises(DatasetError) as caught:
        _load(root)
    message = str(caught.value)
    assert message.startswith(str(root)) and repr(name) in message and "\n" not in message


def test_a_dataset_named_with_markup_is_renamed_not_refused(tmp_path: Path) -> None:
    data = _load(_tree(tmp_path / "my <scans> & more"))
    assert data.name == "my-scans-more"


def test_an_empty_class_folder_is_refused_before_reading(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "meningioma").mkdir()
    (tmp_path / "meningioma" / "notes.txt").write_text("not an image")
    with pytest.raises(DatasetError, match="class 'meningioma' has no images; add some or remove the class"):
        _load(tmp_path)


def test_a_single_class_dataset_is_refused(tmp_path: Path) -> None:
    _tree(tmp_path, ("glioma",))
    with pytest.raises(DatasetError, match=r"only one class \('glioma'\); a classifier needs at least two"):
        _load(tmp_path)


def test_a_class_in_test_but_not_in_train_is_refused(tmp_path: Path) -> None:
    for split in ("train", "val", "test"):
        for name in ("edema", "normal"):
            _png(tmp_path / split / name / "0.png", 10)
    _png(tmp_path / "test" / "glioma" / "0.png", 10)
    with pytest.raises(DatasetError, match=r"classes \['glioma'\] are in the 'test' split but not in 'train'"):
        _load(tmp_path)


# --------------------------------------------------------------------------- unreadable files


def _with_corrupt_files(root: Path) -> Path:
    _tree(root)
    (root / "glioma" / "bad.png").write_bytes(CORRUPT_PNG)
    (root / "normal" / "empty.png").write_bytes(b"")
    return root


def test_unreadable_files_are_skipped_and_recorded_by_default(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    root = _with_corrupt_files(tmp_path / "ds")
    data = _load(root)
    assert [s.path for s in data.skipped] == ["glioma/bad.png", "normal/empty.png"]
    assert all(s.reason and "/ds/" not in s.reason for s in data.skipped)  # the reader's problem, not the path
    assert sum(len(t.labels) for t in data.splits.values()) == 18
    assert "skipped 2 unreadable file(s) of 20" in caplog.text and "glioma/bad.png: " in caplog.text
    info = dataset_info(data)
    assert info["skipped_count"] == 2 and info["kind"] == "folder"
    assert info["skipped_files"][0] == {"path": "glioma/bad.png", "reason": data.skipped[0].reason}


def test_a_result_carries_at_most_the_cap_of_skipped_files_and_the_full_count(tmp_path: Path, monkeypatch) -> None:
    from bench.results import records

    data = _load(_with_corrupt_files(tmp_path / "ds"))
    monkeypatch.setattr(records, "MAX_SKIPPED_RECORDED", 1)
    info = dataset_info(data)
    assert info["skipped_count"] == 2 and [f["path"] for f in info["skipped_files"]] == ["glioma/bad.png"]


def test_with_fail_the_first_unreadable_file_stops_the_load_naming_it(tmp_path: Path) -> None:
    root = _with_corrupt_files(tmp_path / "ds")
    with pytest.raises(ImageReadError, match=r"glioma/bad.png: "):
        _load(root, on_bad_file="fail")


def test_a_class_left_empty_by_skipping_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path / "ds")
    for i in range(6):
        (root / "normal" / f"{i}.png").write_bytes(CORRUPT_PNG)
    with pytest.raises(DatasetError, match=r"class 'normal' has no readable images \(all 6 were skipped"):
        _load(root)


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(("values", "problem"), [
    ({"on_bad_file": "ignore"}, "data.on_bad_file must be one of"),
    ({"kind": "radimagenet", "subset": "../MR"}, "data.subset must be folder names"),
    ({"kind": "radimagenet", "subset": "/MR/brain"}, "data.subset must be folder names"),
    ({"kind": "folder", "subset": "MR/brain"}, "applies to data.kind 'radimagenet' only"),
    ({"kind": "nifti"}, "data.kind must be one of"),
])
def test_data_config_is_validated(values: dict, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        DataConfig(**values)


def test_new_data_fields_at_their_defaults_leave_recorded_configs_unchanged() -> None:
    data = load_suite("quick").to_dict()["data"]
    assert "subset" not in data and "on_bad_file" not in data  # so existing fingerprints still match
    custom = DataConfig(kind="radimagenet", subset="MR/brain", on_bad_file="fail").to_dict()
    assert custom["subset"] == "MR/brain" and custom["on_bad_file"] == "fail"
