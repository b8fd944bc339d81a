"""Reading a result file survives whatever the file holds: one ResultError naming it, and one
line from ``medbench results validate`` and ``medbench site``, never a traceback."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.results import store
from bench.results.store import ResultError, load_result, read_json_object, validation_errors, write_result

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "results"
DEPTH = 100_000  # far past the JSON decoder's recursion limit

BAD_FILES = {
    "deep.json": ('{"a": ' + "[" * DEPTH + "]" * DEPTH + "}").encode(),
    "latin1.json": b'{"schema_version": 1, "note": "caf\xe9"}',
    "nan.json": b'{"schema_version": 1, "metrics": {"top1": NaN}}',
    "infinity.json": b'{"schema_version": 1, "metrics": {"top1": -Infinity}}',
    "overflow.json": b'{"schema_version": 1, "metrics": {"top1": 1e999}}',
    "digits.json": b'{"schema_version": 1, "n": ' + b"9" * 10_000 + b"}",
}
PROBLEMS = {
    "deep.json": "JSON nested too deeply to read",
    "latin1.json": "not UTF-8 text (byte 0xe9 at offset 34)",
    "nan.json": "holds the non-finite number NaN",
    "infinity.json": "holds the non-finite number -Infinity",
    "overflow.json": "holds the non-finite number 1e999",
    "digits.json": "unreadable JSON",
}


def _a_train_payload() -> dict:
    for path in sorted(FIXTURES.rglob("train__*.json")):
        payload = load_result(path)
        if payload["error"] is None:
            return payload
    raise AssertionError("no train fixture")


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_file_is_one_result_error_naming_it(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(BAD_FILES[name])
    with pytest.raises(ResultError) as info:
        load_result(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and PROBLEMS[name] in message
    assert "\n" not in message


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"schema_version": 1, "pad": "x" * 2000}))
    monkeypatch.setattr(store, "MAX_RESULT_BYTES", 1024)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read a file over the limit"))
    with pytest.raises(ResultError, match=r"big.json: file is 0.0 MiB, over the 0 MiB limit"):
        read_json_object(path)


def test_validation_reports_non_finite_numbers_anywhere() -> None:
    payload = _a_train_payload()
    payload["config"]["train"]["lr"] = math.nan
    payload["metrics"]["curves"]["val_loss"][0] = -math.inf
    problems = validation_errors(payload)
    assert "config/train/lr: non-finite number nan (JSON has no NaN or Infinity)" in problems
    assert "metrics/curves/val_loss/0: non-finite number -inf (JSON has no NaN or Infinity)" in problems


def test_non_finite_numbers_are_refused_when_writing(tmp_path: Path) -> None:
    payload = _a_train_payload()
    payload["config"]["anything"] = [1.0, {"deep": math.inf}]
    with pytest.raises(ResultError, match=r"config/anything/1/deep: non-finite number inf"):
        write_result(tmp_path / "r.json", payload)
    assert not (tmp_path / "r.json").exists()


def _medbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=REPO, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}, timeout=300)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " ERROR " in line]


def test_validate_and_site_print_one_line_per_bad_file(tmp_path: Path) -> None:
    tree = tmp_path / "results" / "m" / "quick"
    tree.mkdir(parents=True)
    for name, content in BAD_FILES.items():
        (tree / name).write_bytes(content)
    proc = _medbench("results", "validate", "--results-dir", str(tmp_path / "results"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = _error_lines(proc.stderr)
    assert len(lines) == len(BAD_FILES)
    for name, problem in PROBLEMS.items():
        assert any(str(tree / name) in line and problem in line for line in lines), name
    assert "0 of 6 result files valid" in proc.stderr

    for name in BAD_FILES:  # the site stops at the first bad file, in one line
        solo = tmp_path / name.removesuffix(".json") / "m" / "quick"
        solo.mkdir(parents=True)
        (solo / name).write_bytes(BAD_FILES[name])
        proc = _medbench("site", "--results-dir", str(solo.parent.parent), "--artifacts-dir", str(tmp_path / "none"),
                         "--out", str(tmp_path / "site"))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert [PROBLEMS[name] in line for line in proc.stderr.splitlines()] == [True], proc.stderr[-2000:]
