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
from bench.explain.baselines import MODEL_FREE
from bench.explain.faithfulness import SCORES
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
    stale = paths.artifacts / "explain" / "tiny" / "resnet50" / "saliency" / "99999-predicted.webp"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"left by an earlier run")
    written = explain_suite(suite, list(suite.models), data, paths, seed=0)
    results = {p.name: load_result(p) for p in written}
    assert set(results) == {"explain__pyramid_performer.json", "explain__resnet50.json", "explain.json"}
    assert not stale.exists(), "a strip no result references is removed"
    for name in suite.models:
        r = results[f"explain__{name}.json"]
        m = r["metrics"]
        assert r["error"] is None
        faith = m["faithfulness"]
        assert set(faith["scores"]) == set(METHODS) == set(m["sanity"]["methods"])
        assert set(faith["baselines"]) == set(MODEL_FREE) and set(faith["strongest_baseline"]) == set(SCORES)
        for baseline in faith["baselines"].values():
            assert set(SCORES) <= set(baseline) and all(len(baseline[s]["ci95"]) == 2 for s in SCORES)
        for scores in faith["scores"].values():
            lo, hi = scores["pointing_game"]["ci95"]
            assert 0 <= lo <= scores["pointing_game"]["value"] <= hi <= 1
            assert set(scores["randomised_weights"]) >= set(SCORES)
            for score in SCORES:
                verdict = scores["vs_strongest_baseline"][score]
                assert verdict["baseline"] == faith["strongest_baseline"][score]
                assert verdict["beats"] == (verdict["difference"]["ci95"][0] > 0)
            assert len(scores["per_image"]["deletion_vs_random"]) == len(faith["images"])
        point = faith["random_point"]
        assert 0 < point["image"]["value"] < point["foreground"]["value"] < 1  # the head is part of the image
        assert faith["gradcam_ceiling"]["grid"] == m["gradcam_grid"] and min(m["gradcam_grid"]) >= 8
        assert 0 <= faith["gradcam_ceiling"]["pointing_game"]["value"] <= 1
        deletion = faith["deletion"]
        assert deletion["fill"] == "lesion_free" and faith["mask"] == "evidence"  # the synthetic data has twins
        assert 0 < deletion["starting_probability"]["value"] < 1
        # the fully removed image: recorded for the fill used and for the cues it replaces (black, blur, mean)
        removed = m["fully_removed"]
        assert removed["fill"] == "lesion_free" and {"lesion_free", "blur", "mean", "black"} <= set(removed)
        reference = removed["reference"]
        assert reference["images"] == len(faith["images"]) == 6 and deletion["scored_images"] == reference["scored"]
        for score in ("deletion_vs_random", "insertion_vs_random"):  # curves: only the images read clean
            per_image = faith["scores"]["saliency"]["per_image"][score]
            assert sum(v is not None for v in per_image) == reference["scored"]
            assert faith["scores"]["saliency"][score]["n"] == reference["scored"]
        if reference["scored"]:
            check = removed["lesion_free"]
            assert m["fully_removed_max_finding_prob"] == check["max_finding_prob"]
            # no scored image's fully removed version is read as a finding above 0.5, image by image
            assert check["images"] == reference["scored"] and check["images_above_threshold"] == 0
            assert check["any_image_max_finding_prob"] <= 0.5 and check["passed"]
        sanity = m["sanity"]
        assert sanity["cascade_order"][0] == "head" and sanity["cascade_order"][-1] == "stem"
        for record in sanity["methods"].values():
            assert len(record["cascade"]) == len(sanity["cascade_order"]) and record["full"] == record["cascade"][-1]
            assert record["passed"] == (not record["failures"])
        assert m["timing"]["sanity_s"] >= 0 and m["explain_time_s"] > 0
        strips = [f for e in m["gallery"] for targets in e["files"].values() for f in targets.values()]
        assert len(strips) >= 10 * len(METHODS)  # one image per class, every method
        for rel in strips:
            assert 0 < (paths.artifacts / rel).stat().st_size <= 60_000
    assert results["explain__resnet50.json"]["metrics"]["native"]["maps"] == []
    native = results["explain__pyramid_performer.json"]["metrics"]["native"]["maps"]
    assert native and all(0 < m["uniformity"]["entropy_ratio"] <= 1 and 0 <= m["uniformity"]["floor"] <= 1
                          for m in native)
    summary = results["explain.json"]["metrics"]
    assert set(summary["comparison"]) == set(METHODS)
    assert summary["comparison"]["gradcam"]["pointing_game"]["best"] in suite.models
    assert summary["pairs"] == 2 * len(METHODS) and summary["metric_correlations"]["scores"] == list(SCORES)
    assert set(summary["flagged_methods"]) <= set(METHODS)
    if summary["lead"] is not None:
        assert summary["lead"]["method"] not in summary["flagged_methods"]
    before = {p: p.stat().st_mtime_ns for p in written[:-1]}
    explain_suite(suite, list(suite.models), data, paths, seed=0)  # finished work is skipped
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_without_masks_the_scores_are_skipped_and_the_gallery_stays(trained, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDBENCH_MACHINE_ID", "test-machine")
    suite, data, paths = trained
    monkeypatch.setattr(data.splits["test"], "mask_paths", None)  # real data: no lesion masks (undone after)
    paths = dataclasses.replace(paths, results=tmp_path / "results", artifacts=tmp_path / "artifacts")
    written = explain_suite(suite, ["resnet50"], data, paths, seed=0)
    result = load_result(written[0])
    assert result["metrics"]["faithfulness"] is None
    assert "no lesion masks" in result["metrics"]["faithfulness_skipped"]
    assert result["metrics"]["gallery"] and len(written) == 1  # no summary without scores


def test_several_seeds_are_scored_and_summarised_over_seeds(trained, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDBENCH_MACHINE_ID", "test-machine")
    suite, data, paths = trained
    train_one(suite, "resnet50", 1, data, paths, progress=False)
    suite = dataclasses.replace(suite, explain=dataclasses.replace(suite.explain, seeds=(0, 1)))
    paths = dataclasses.replace(paths, results=tmp_path / "results", artifacts=tmp_path / "artifacts")
    written = explain_suite(suite, ["resnet50"], data, paths, seed=0)
    assert [p.name for p in written] == ["explain__resnet50.json", "explain__resnet50__seed1.json", "explain.json"]
    extra = load_result(written[1])
    assert extra["seed"] == 1 and extra["config"]["primary"] is False and extra["metrics"]["gallery"] == []
    assert "sanity" not in extra["metrics"] and extra["metrics"]["faithfulness"]["scores"]
    summary = load_result(written[2])["metrics"]
    assert summary["pairs"] == len(METHODS)  # the first seed's results are the rows
    entry = summary["across_seeds"]["resnet50"]
    assert entry["seeds"] == [0, 1]
    for method in METHODS:
        pg = entry["methods"][method]["pointing_game"]
        assert len(pg["per_seed"]) == 2 and pg["ci95"][0] <= pg["value"] <= pg["ci95"][1]
        assert pg["value"] == pytest.approx(sum(pg["per_seed"]) / 2)


def test_explained_seeds_are_distinct():
    from bench.core.config import ExplainConfig

    assert ExplainConfig().seeds == () and ExplainConfig(seeds=(0, 2)).seeds == (0, 2)
    with pytest.raises(ValueError, match="explain.seeds"):
        ExplainConfig(seeds=(1, 1))
