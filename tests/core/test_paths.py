"""Machine ids, suite names and model names become folders: an unsafe one is refused in one
line, at the CLI and again where paths are built, and no write ever leaves its root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.core.paths import UnsafePathError, check_name, inside, safe_name
from bench.results.records import RunPaths
from bench.results.store import result_path
from engine_helpers import REPO, tiny_suite

UNSAFE = ["..", ".", "", "/", "/tmp/elsewhere", "a/b", "..\\x", "-rf", ".hidden", "a\x00b", "C:evil"]


@pytest.mark.parametrize("name", UNSAFE)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafePathError, match="is not a safe file name"):
        check_name(name, "machine id")


@pytest.mark.parametrize("name", ["cpu-amd-epyc-2c", "gpu-nvidia-h200", "quick", "timm:convnext_tiny", "a.b_c"])
def test_ordinary_names_pass(name: str) -> None:
    assert check_name(name, "name") == name


def test_safe_name_maps_separators_and_refuses_what_still_climbs() -> None:
    assert safe_name("timm:foo/bar") == "timm-foo-bar"
    for name in ("..", ".", ""):
        with pytest.raises(UnsafePathError):
            safe_name(name)


@pytest.mark.parametrize(("machine", "suite", "model"), [
    ("..", "quick", "m"), ("m", "..", "m"), ("m", "quick", "../m"), ("/abs", "quick", "m"), ("m", "a/b", "m"),
])
def test_result_path_and_run_paths_refuse_unsafe_names(tmp_path: Path, machine: str, suite: str, model: str) -> None:
    with pytest.raises(UnsafePathError):
        result_path(tmp_path, machine, suite, "train", model, 0)
    if machine == "m":
        with pytest.raises(UnsafePathError):
            RunPaths(checkpoints=tmp_path).checkpoint(suite, model, 0)


def test_a_symlink_out_of_the_root_is_caught(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "results", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / "m").symlink_to(elsewhere)
    with pytest.raises(UnsafePathError, match="would be written outside its root"):
        result_path(root, "m", "quick", "train", "x", 0)
    assert inside(root, root / "ok" / "x.json") == root / "ok" / "x.json"


# --------------------------------------------------------------------------- the CLI


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def _medbench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MEDBENCH_MACHINE_ID"}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=REPO, capture_output=True, text=True,
                          env={**env, "OMP_NUM_THREADS": "1"}, timeout=300)


def _roots(tmp_path: Path) -> list[str]:
    out = tmp_path / "out"
    return ["--results-dir", str(out / "results"), "--checkpoint-dir", str(out / "ckpt"),
            "--artifacts-dir", str(out / "artifacts")]


CASES = {
    "machine id ..": (["--machine-id", ".."], [], "--machine-id '..' is not a safe file name"),
    "machine id /": (["--machine-id", "/"], [], "--machine-id '/' is not a safe file name"),
    "machine id absolute": (["--machine-id", "/tmp/elsewhere"], [], "'/tmp/elsewhere' is not a safe file name"),
    "suite name ..": ([], ["--set", "name=.."], "suite name '..' is not a safe file name"),
    "suite name absolute": ([], ["--set", "name=/tmp/elsewhere"], "suite name '/tmp/elsewhere' is not a safe"),
    "suite name nested": ([], ["--set", "name=a/../../b"], "suite name 'a/../../b' is not a safe file name"),
    "model name ..": ([], ["--models", ".."], "model name '..' is not a safe file name"),
    "model name /": ([], ["--models", "pyramid_softmax,/"], "model name '/' is not a safe file name"),
    "model name absolute": ([], ["--models", "/tmp/elsewhere"], "model name '/tmp/elsewhere' is not a safe"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_cli_refuses_unsafe_names_in_one_line_and_writes_nothing(tmp_path: Path, case: str) -> None:
    before, after_run, message = CASES[case]
    suite = tiny_suite(tmp_path, tmp_path / "dataset", epochs=1)
    inputs = _files(tmp_path)
    proc = _medbench(tmp_path, *before, "run", "--suite", str(suite), "--stages", "train",
                     *_roots(tmp_path), *after_run)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert _files(tmp_path) == inputs  # no dataset generated, no result, nothing outside the roots


def test_results_table_refuses_an_unsafe_suite_name(tmp_path: Path) -> None:
    proc = _medbench(tmp_path, "--machine-id", "m", "results", "table", "--suite", "../../etc",
                     "--results-dir", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "suite name '../../etc' is not a safe file name" in proc.stderr


def test_an_unsafe_machine_id_from_the_environment_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "bench", "results", "table", "--results-dir", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MEDBENCH_MACHINE_ID": "..", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "$MEDBENCH_MACHINE_ID '..' is not a safe file name" in proc.stderr
