"""The explain stage end to end on a tiny trained suite: results, gallery strips, sanity, resumption, no masks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bench.cli.runner import train_one
from bench.core.config import load_suite
from bench.data import load_dataset
from bench.data.synthetic import ensure_dataset
from bench.explain.attribution import METHODS
from bench.explain.stage import explain_suite
from bench.results.records import RunPaths
from bench.results.store import load_result
from engine_helpers import tiny_suite

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDBENCH_MACHINE_ID", "test-machine")
        yield _train(tmp_path_factory.mktemp("explain"))


def _train(tmp: Path):
    suite = load_suite(str(tiny_suite(tmp, tmp / "dataset", epochs=1, models='"pyramid_performer", "resnet50"')))
    suite = dataclasses.replace(suite, explain=dataclasses.replace(
        suite.explain, faithfulness_images=6, gallery_misclassified=2, ig_steps=4, smoothgrad_samples=2,
        sanity_images=3, bootstrap=50, internal_batch_size=8))
    ensure_dataset(suite.data)
    data = load_dataset(suite.data, progress=False)
    paths = RunPaths(results=tmp / "results", checkpoints=tmp / "ckpt", artifacts=tmp / "artifacts", locks=tmp / "locks")
    for name in suite.models:
        train_one(suite, name, 0, data, paths, progress=False)
    return suite, data, paths


def test_every_model_is_explained_scored_and_compared(trained, monkeypatch):
    monkeypatch.setenv("MEDBENCH_MACHINE_ID", "test-machine")
    suite, data, paths = trained
    written = explain_suite(suite, list(suite.models), data, paths, seed=0)
    results = {p.name: load_result(p) for p in written}
    assert set(results) == {"explain__pyramid_performer.json", "explain__resnet50.json", "explain.json"}
    for name in suite.models:
        m = results[f"explain__{name}.json"]["metrics"]
        assert results[f"explain__{name}.json"]["error"] is None
        assert set(m["faithfulness"]["scores"]) == set(METHODS) == set(m["sanity"])
        for scores in m["faithfulness"]["scores"].values():
            lo, hi = scores["pointing_game"]["ci95"]
            assert 0 <= lo <= scores["pointing_game"]["value"] <= hi <= 1
            assert 0 < scores["pointing_game_random"]["value"] < 1
        strips = [f for e in m["gallery"] for targets in e["files"].values() for f in targets.values()]
        assert len(strips) >= 10 * len(METHODS)  # one image per class, every method
        for rel in strips:
            assert 0 < (paths.artifacts / rel).stat().st_size <= 60_000
    assert results["explain__resnet50.json"]["metrics"]["native"]["maps"] == []
    assert results["explain__pyramid_performer.json"]["metrics"]["native"]["maps"]
    summary = results["explain.json"]["metrics"]["comparison"]
    assert set(summary) == set(METHODS) and summary["gradcam"]["pointing_game"]["best"] in suite.models
    before = {p: p.stat().st_mtime_ns for p in written[:-1]}
    explain_suite(suite, list(suite.models), data, paths, seed=0)  # finished work is skipped
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_without_masks_the_scores_are_skipped_and_the_gallery_stays(trained, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDBENCH_MACHINE_ID", "test-machine")
    suite, data, paths = trained
    data.splits["test"].mask_paths = None  # real data: no lesion masks
    paths = dataclasses.replace(paths, results=tmp_path / "results", artifacts=tmp_path / "artifacts")
    written = explain_suite(suite, ["resnet50"], data, paths, seed=0)
    result = load_result(written[0])
    assert result["metrics"]["faithfulness"] is None
    assert "no lesion masks" in result["metrics"]["faithfulness_skipped"]
    assert result["metrics"]["gallery"] and len(written) == 1  # no summary without scores
