"""Result archives: a round trip reproduces every byte, and unpacking refuses what it must,
writing nothing when it refuses."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from bench.cli.main import main
from bench.results.pack import MANIFEST, pack_results, read_archive, unpack_results
from bench.results.store import ResultError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "results"


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture()
def source(tmp_path: Path) -> tuple[Path, Path]:
    results, artifacts = tmp_path / "src" / "results", tmp_path / "src" / "artifacts"
    shutil.copytree(FIXTURES, results)
    (artifacts / "explain" / "quick").mkdir(parents=True)
    (artifacts / "explain" / "quick" / "strip.png").write_bytes(b"\x89PNG small")
    (artifacts / "big.bin").write_bytes(b"x" * 2048)
    (artifacts / "model.pt").write_bytes(b"weights")
    return results, artifacts


@pytest.fixture()
def archive(source: tuple[Path, Path], tmp_path: Path) -> Path:
    results, artifacts = source
    return pack_results(results, tmp_path / "out.tar.gz", artifacts_root=artifacts, max_artifact_bytes=1024).archive


def test_round_trip_reproduces_every_byte_and_a_second_merge_changes_nothing(source, archive, tmp_path):
    results, artifacts = source
    into_results, into_artifacts = tmp_path / "dst" / "results", tmp_path / "dst" / "artifacts"
    first = unpack_results(archive, into_results, artifacts_root=into_artifacts)
    assert _tree(into_results) == _tree(results)
    assert _tree(into_artifacts) == {"explain/quick/strip.png": b"\x89PNG small"}  # big and checkpoint left out
    assert len(first.written) == len(_tree(results)) + 1 and not first.overwritten
    second = unpack_results(archive, into_results, artifacts_root=into_artifacts)
    assert second.written == () and len(second.unchanged) == len(first.written)


def test_pack_leaves_out_checkpoints_and_large_artifacts_and_filters_results(source, tmp_path):
    results, artifacts = source
    summary = pack_results(results, tmp_path / "a.tar.gz", artifacts_root=artifacts, max_artifact_bytes=1024,
                           machines=["gpu-nvidia-h200"])
    assert set(summary.skipped) == {"big.bin", "model.pt"}
    names = set(read_archive(summary.archive))
    assert names and all(n.startswith(("results/gpu-nvidia-h200/", "artifacts/")) for n in names)


def test_pack_refuses_an_invalid_result_and_writes_no_archive(source, tmp_path):
    results, _ = source
    bad = next(results.rglob("train__*.json"))
    bad.write_text(json.dumps({**json.loads(bad.read_text()), "kind": "nonsense"}))
    with pytest.raises(ResultError) as info:
        pack_results(results, tmp_path / "a.tar.gz")
    assert info.value.path == bad and not (tmp_path / "a.tar.gz").exists()


def test_a_conflict_stops_the_whole_merge_unless_forced(source, archive, tmp_path):
    results, _ = source
    into = tmp_path / "dst"
    shutil.copytree(results, into)
    changed = next(into.rglob("comparison.json"))
    changed.write_text(changed.read_text().replace('"', '"', 1) + " ")  # same JSON, other bytes
    removed = next(into.rglob("train__*.json"))
    removed.unlink()
    with pytest.raises(ResultError, match="1 file\\(s\\) differ.*nothing was written"):
        unpack_results(archive, into)
    assert not removed.exists() and changed.read_text().endswith(" ")
    summary = unpack_results(archive, into, force=True)
    assert len(summary.overwritten) == 1 and len(summary.written) == 1
    assert _tree(into) == _tree(results)


def test_dry_run_and_missing_artifacts_root_write_nothing_there(archive, tmp_path):
    summary = unpack_results(archive, tmp_path / "r", dry_run=True)
    assert summary.written and not (tmp_path / "r").exists()
    summary = unpack_results(archive, tmp_path / "r")
    assert summary.skipped == ("artifacts/explain/quick/strip.png",)


def _archive(tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]], manifest: list[dict] | None = None,
             name: str = "hand") -> Path:
    """A hand-made archive: its manifest lists ``manifest`` or, by default, every regular member."""
    listed = manifest if manifest is not None else [
        {"path": info.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for info, data in members if info.isfile()]
    path = tmp_path / f"{name}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        body = json.dumps({"format": "medbench-results-archive", "format_version": 1, "files": listed}).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


VALID = sorted((FIXTURES / "cpu-fixture-2c" / "quick").glob("train__*.json"))[0]


@pytest.mark.parametrize("name, problem", [
    ("results/../evil.json", "climbs out"),
    ("/etc/evil.json", "climbs out"),
    ("other/x.json", "outside results/ and artifacts/"),
    ("results/m/x.json", "results/<machine>/<suite>/<file>.json"),
    ("results/m/..hidden/x.json", "path component"),
    ("./results/m/s/x.json", "not a normalised relative path"),
    ("results//m/s/x.json", "not a normalised relative path"),
])
def test_unsafe_member_paths_are_refused(tmp_path, name, problem):
    data = VALID.read_bytes()
    with pytest.raises(Exception, match=problem):
        unpack_results(_archive(tmp_path, [_file(name, data)]), tmp_path / "r")
    assert not (tmp_path / "r").exists() and not (tmp_path / "evil.json").exists()


def test_links_unlisted_members_and_bad_hashes_are_refused(tmp_path):
    data = VALID.read_bytes()
    link = tarfile.TarInfo("results/m/s/link.json")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    cases = {
        "not a regular file": ([(link, b"")], []),
        "not in the manifest": ([_file("results/m/s/a.json", data)], []),
        "does not match its manifest": ([_file("results/m/s/a.json", data)],
                                        [{"path": "results/m/s/a.json", "bytes": len(data), "sha256": "0" * 64}]),
        "which the archive lacks": ([], [{"path": "results/m/s/a.json", "bytes": 1, "sha256": "0" * 64}]),
    }
    for i, (problem, (members, manifest)) in enumerate(cases.items()):
        with pytest.raises(ResultError, match=problem):
            unpack_results(_archive(tmp_path, members, manifest, name=f"case{i}"), tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_a_schema_invalid_result_inside_is_named_and_nothing_is_written(tmp_path):
    good = VALID.read_bytes()
    bad = json.dumps({**json.loads(good), "kind": "nonsense"}).encode()
    path = _archive(tmp_path, [_file("results/m/s/a.json", good), _file("results/m/s/b.json", bad)])
    with pytest.raises(ResultError, match="results/m/s/b.json.*does not match the result schema"):
        unpack_results(path, tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_a_file_that_is_not_an_archive_is_named(tmp_path):
    path = tmp_path / "notes.tar.gz"
    path.write_text("hello")
    with pytest.raises(ResultError, match="not a readable .tar.gz archive") as info:
        unpack_results(path, tmp_path / "r")
    assert info.value.path == path


def test_the_cli_packs_and_unpacks_between_two_trees(source, tmp_path, caplog):
    results, artifacts = source
    out = tmp_path / "cli.tar.gz"
    assert main(["results", "pack", str(out), "--results-dir", str(results), "--artifacts-dir", str(artifacts),
                 "--suites", "quick", "--no-artifacts"]) == 0
    assert main(["results", "unpack", str(out), "--results-dir", str(tmp_path / "r")]) == 0
    assert _tree(tmp_path / "r") == {k: v for k, v in _tree(results).items() if k.split("/")[1] == "quick"}
    assert main(["results", "unpack", str(tmp_path / "missing.tar.gz"), "--results-dir", str(tmp_path / "r")]) == 2


def test_a_folder_where_a_result_goes_is_refused_before_anything_is_written(archive, source, tmp_path):
    results, _ = source
    first = sorted(p.relative_to(results) for p in results.rglob("*.json"))
    (tmp_path / "r" / first[-1]).mkdir(parents=True)
    with pytest.raises(ResultError, match="is not a regular file; nothing was written"):
        unpack_results(archive, tmp_path / "r", force=True)
    assert not any(p.is_file() for p in (tmp_path / "r").rglob("*"))
