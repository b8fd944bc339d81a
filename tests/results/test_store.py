"""Result files: validation on write, atomic writes, clear errors on bad files."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.results import store
from bench.results.store import ResultError, load_result, result_path, validation_errors, write_result

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


def _golden() -> list[Path]:
    return sorted((FIXTURES / "results").rglob("*.json"))


def test_golden_fixtures_exist_and_validate():
    files = _golden()
    assert len(files) >= 5
    kinds = {load_result(p)["kind"] for p in files}
    assert {"train", "profile", "machine"} <= kinds


def test_committed_results_validate():
    files = list(store.iter_result_files())
    for path in files:
        load_result(path)  # raises with the file name on any problem


def _a_train_payload() -> dict:
    path = next(p for p in _golden() if load_result(p)["kind"] == "train" and load_result(p)["error"] is None)
    return json.loads(path.read_text())


def test_write_then_load_round_trip(tmp_path):
    payload = _a_train_payload()
    out = tmp_path / "m" / "quick" / "train__x__seed0.json"
    write_result(out, payload)
    assert load_result(out) == payload
    text = out.read_text()
    assert text.endswith("\n") and '  "kind": "train"' in text
    assert list(tmp_path.rglob("*.tmp")) == []


def test_invalid_payload_is_never_written(tmp_path):
    payload = _a_train_payload()
    del payload["metrics"]["balanced_accuracy"]
    out = tmp_path / "bad.json"
    with pytest.raises(ResultError, match="balanced_accuracy"):
        write_result(out, payload)
    assert not out.exists()


def test_non_finite_numbers_are_refused(tmp_path):
    payload = _a_train_payload()
    payload["metrics"]["train_time_s"] = float("nan")
    with pytest.raises(ResultError, match="non-finite"):
        write_result(tmp_path / "nan.json", payload)


def test_overwrite_keeps_old_file_until_new_one_is_complete(tmp_path, monkeypatch):
    payload = _a_train_payload()
    out = tmp_path / "r.json"
    write_result(out, payload)
    before = out.read_text()

    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(store.os, "replace", boom)
    changed = copy.deepcopy(payload)
    changed["seed"] = 99
    with pytest.raises(OSError):
        write_result(out, changed)
    assert out.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"schema_version": 1, "kind": ', "malformed JSON at line 1"),
        ("[1, 2]", "expected a JSON object"),
        ('{"kind": "train"}', "no integer 'schema_version'"),
        ('{"schema_version": 99, "kind": "train"}', "newer than this code"),
        ('{"schema_version": 0, "kind": "train"}', "older than this code"),
        ('{"schema_version": 1, "kind": "train"}', "does not match the result schema"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(ResultError) as info:
        load_result(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_cli_reports_a_malformed_file_in_one_line(tmp_path):
    bad = tmp_path / "results" / "m" / "quick" / "train__x__seed0.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    proc = subprocess.run([sys.executable, "-m", "bench", "results", "validate", "--results-dir", str(tmp_path / "results")],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1
    assert str(bad) in proc.stderr and "malformed JSON" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_result_path_layout():
    p = result_path(Path("/r"), "cpu-x-2c", "quick", "train", "timm:convnext_tiny", 3)
    assert p == Path("/r/cpu-x-2c/quick/train__timm-convnext_tiny__seed3.json")
    assert result_path(Path("/r"), "m", "hardware", "machine", None, None) == Path("/r/m/hardware/machine.json")


def test_validation_errors_point_at_the_field():
    payload = _a_train_payload()
    payload["machine"]["cores"] = 0
    assert any(e.startswith("machine/cores") for e in validation_errors(payload))


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", None])
def test_per_image_class_ids_are_checked_item_by_item(bad):
    payload = _a_train_payload()
    payload["metrics"]["test_predictions"] = [0, 1, bad, 2]
    payload["metrics"]["test_labels"] = [0, 1, 2, 2]
    problems = validation_errors({"schema_version": store.SCHEMA_VERSION, **payload})
    assert problems == [f"metrics/test_predictions/2: {bad!r} is not a class id (an integer >= 0)"]
