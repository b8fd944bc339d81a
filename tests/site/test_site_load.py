"""Loading result files and dataset artifacts: golden files validate, bad ones name themselves."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.results.store import ResultError, validation_errors
from bench.site.load import load_datasets, load_results

RESULTS = Path(__file__).resolve().parents[1] / "fixtures" / "results"


@pytest.mark.parametrize("path", sorted(RESULTS.rglob("*.json")), ids=lambda p: p.relative_to(RESULTS).as_posix())
def test_golden_results_match_the_schema(path: Path) -> None:
    assert validation_errors(json.loads(path.read_text())) == []


def test_load_results_reads_every_kind_in_path_order() -> None:
    results = load_results(RESULTS)
    assert [r.relpath for r in results] == sorted(r.relpath for r in results)
    assert all(r.path == RESULTS / r.relpath for r in results)
    assert Counter(r.kind for r in results) == {"train": 5, "baseline": 1, "comparison": 1, "profile": 3, "attention": 1,
                                                     "machine": 1, "explain": 3}
    assert [r.relpath.name for r in results if r.failed] == ["train__pyramid_performer__seed0.json"]
    assert {r.machine_id for r in results} == {"cpu-fixture-2c", "gpu-nvidia-h200"}


def test_missing_results_folder_means_no_results(tmp_path: Path) -> None:
    assert load_results(tmp_path / "absent") == []


@pytest.mark.parametrize(("name", "problem"), [
    ("malformed.json", "malformed JSON at line 3"),
    ("newer.json", "schema_version 99 is newer"),
    ("invalid.json", "does not match the result schema"),
])
def test_bad_result_file_error_names_the_file(tmp_path: Path, paths: SimpleNamespace, name: str, problem: str) -> None:
    target = tmp_path / "results" / "cpu-x" / "quick" / name
    target.parent.mkdir(parents=True)
    shutil.copy(paths.bad / name, target)
    with pytest.raises(ResultError) as info:
        load_results(tmp_path / "results")
    assert info.value.path == target
    first_line = str(info.value).splitlines()[0]
    assert first_line.startswith(f"{target}: ")
    assert problem in str(info.value)


def test_dataset_artifact_with_samples(paths: SimpleNamespace) -> None:
    [dataset] = load_datasets(paths.artifacts)
    assert dataset.name == "synthetic-quick"
    assert dataset.info["synthetic"] is True
    assert len(dataset.class_names) == 10 and dataset.class_names[0] == "acute_infarct"
    assert sorted(dataset.samples) == sorted(dataset.class_names)
    assert all(p.suffix == ".png" and p.is_file() for p in dataset.samples.values())


def test_folder_dataset_takes_class_names_from_its_counts(tmp_path: Path) -> None:
    folder = tmp_path / "dataset" / "my-folder"
    folder.mkdir(parents=True)
    (folder / "dataset.json").write_text(json.dumps({"train_counts": {"b": 3, "a": 5}}))
    (folder / "a.png").write_bytes(b"png")
    [dataset] = load_datasets(tmp_path)
    assert dataset.class_names == ("a", "b")
    assert list(dataset.samples) == ["a"]


@pytest.mark.parametrize(("text", "problem"), [
    ("{not json", "malformed JSON"),
    ("[]", "expected a JSON object"),
    ('{"synthetic": "yes"}', "'synthetic' must be true or false"),
    ('{"counts": {"a": {"train": "many"}}}', "'counts' must be class → {split: count}"),
    ('{"class_names": ["../escape"]}', "plain class names"),
])
def test_bad_dataset_json_names_the_file(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "dataset" / "d" / "dataset.json"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(ResultError, match=problem) as info:
        load_datasets(tmp_path)
    assert info.value.path == path
