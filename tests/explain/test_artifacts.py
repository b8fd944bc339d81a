"""The artifacts folder holds exactly what the results reference, within its size limits."""

from __future__ import annotations

import json
from pathlib import Path

from bench.explain.artifacts import (
    EXPLAIN_MAX_BYTES, GALLERY_IMAGE_MAX_BYTES, explain_sizes, main, missing, prune, referenced, unreferenced,
)

REPO = Path(__file__).resolve().parents[2]


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    results, artifacts = tmp_path / "results", tmp_path / "artifacts"
    (results / "m" / "quick").mkdir(parents=True)
    (results / "m" / "quick" / "explain__a.json").write_text(json.dumps(
        {"metrics": {"gallery": [{"files": {"saliency": {"predicted": "explain/quick/a/saliency/00001-predicted.webp"}},
                                  "true": "edema"}]}}))
    (results / "m" / "quick" / "export__a.json").write_text(json.dumps(
        {"metrics": {"file": "export/quick/a.onnx", "web_file": "export/quick/a.onnx.gz"}}))
    for rel in ("explain/quick/a/saliency/00001-predicted.webp", "explain/quick/a/saliency/00002-predicted.webp",
                "export/quick/a.onnx.gz", "dataset/synth/edema.png", "dataset/synth/stray.txt"):
        (artifacts / rel).parent.mkdir(parents=True, exist_ok=True)
        (artifacts / rel).write_bytes(b"x")
    (artifacts / "dataset" / "synth" / "dataset.json").write_text(json.dumps({"class_names": ["edema"]}))
    return results, artifacts


def test_references_unreferenced_files_and_pruning(tmp_path: Path):
    results, artifacts = _tree(tmp_path)
    assert "explain/quick/a/saliency/00001-predicted.webp" in referenced(results)
    assert unreferenced(artifacts, results) == ["dataset/synth/stray.txt",
                                                "explain/quick/a/saliency/00002-predicted.webp"]
    assert missing(artifacts, results) == []  # the uncompressed ONNX is local only
    (artifacts / "export" / "quick" / "a.onnx.gz").unlink()
    assert missing(artifacts, results) == ["export/quick/a.onnx.gz"]
    assert main(["--results-dir", str(results), "--artifacts-dir", str(artifacts), "--prune"]) == 1
    assert unreferenced(artifacts, results) == []
    assert (artifacts / "explain/quick/a/saliency/00001-predicted.webp").exists()
    assert prune(artifacts, results) == []


def test_committed_artifacts_are_all_referenced_and_present():
    artifacts, results = REPO / "data" / "artifacts", REPO / "data" / "results"
    assert missing(artifacts, results) == []
    stale = unreferenced(artifacts, results)
    assert not stale, (f"{len(stale)} files under data/artifacts/ are referenced by no result (e.g. {stale[:3]}): "
                       "run `python -m bench.explain.artifacts --prune`")


def test_committed_explain_artifacts_stay_small():
    total, large = explain_sizes(REPO / "data" / "artifacts")
    assert not large, f"gallery images over {GALLERY_IMAGE_MAX_BYTES} bytes: {large[:3]}"
    assert total <= EXPLAIN_MAX_BYTES, f"explain artifacts take {total / 2**20:.1f} MB"
