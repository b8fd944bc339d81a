"""The robustness statistics: paired drops from clean, the relative robustness score, and ties
with the most robust model after Holm's correction."""

from __future__ import annotations

import numpy as np
import pytest

from bench.core.shift_stats import CLEAN, condition_name, robustness, split_condition
from bench.core.stats import balanced_accuracy

N, CLASSES, SEEDS = 600, 4, 3
LABELS = np.arange(N) % CLASSES


def _preds(rng: np.random.Generator, accuracy: float) -> np.ndarray:
    """(SEEDS, N) predictions right on about ``accuracy`` of the images, wrong class otherwise."""
    right = rng.random((SEEDS, N)) < accuracy
    return np.where(right, LABELS, (LABELS + 1) % CLASSES)


def _model(seed: int, clean: float, shifted: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {CLEAN: _preds(rng, clean), condition_name("blur", 1): _preds(rng, shifted),
            condition_name("blur", 2): _preds(rng, shifted - 0.05)}


def test_the_model_that_degrades_more_ranks_below_and_is_not_tied():
    preds = {"steady": _model(1, 0.90, 0.88), "steady_twin": _model(2, 0.90, 0.875),
             "fragile": _model(3, 0.90, 0.55)}
    result = robustness(preds, LABELS, n_resamples=500, seed=0)
    models = result["models"]
    assert result["most_robust"] in ("steady", "steady_twin")
    other_steady = "steady_twin" if result["most_robust"] == "steady" else "steady"
    assert models[other_steady]["robustness"]["tied_with_most_robust"] is True
    assert models["fragile"]["robustness"]["tied_with_most_robust"] is False
    assert models["fragile"]["robustness"]["vs_most_robust"]["p_holm"] <= 0.05
    assert models["fragile"]["robustness"]["score"] < models[other_steady]["robustness"]["score"]
    # the fragile model's drop is resolved and negative; its interval holds the point value
    drop = models["fragile"]["conditions"]["blur@1"]["drop"]
    assert drop["resolved"] and drop["hi"] < 0 and drop["lo"] <= drop["mean"] <= drop["hi"]
    assert result["conditions"] == [CLEAN, "blur@1", "blur@2"]


def test_point_values_are_the_seed_means_and_the_score_is_the_mean_ratio():
    preds = {"m": _model(4, 0.8, 0.6)}
    entry = robustness(preds, LABELS, n_resamples=200)["models"]["m"]
    per_condition = {c: np.mean([balanced_accuracy(p, LABELS) for p in preds["m"][c]]) for c in preds["m"]}
    for condition, value in per_condition.items():
        assert entry["conditions"][condition]["balanced_accuracy"] == pytest.approx(value, abs=1e-6)
    # the score is the share of clean's margin over chance (1/4 here) kept, averaged over conditions
    kept = [(per_condition[c] - 0.25) / (per_condition[CLEAN] - 0.25) for c in ("blur@1", "blur@2")]
    assert entry["robustness"]["score"] == pytest.approx(np.mean(kept), abs=1e-6)
    assert entry["robustness"]["is_most_robust"] and entry["robustness"]["tied_with_most_robust"]


def test_a_drop_paired_on_seeds_and_images_is_narrower_than_unpaired():
    rng = np.random.default_rng(5)
    clean = _preds(rng, 0.8)
    flip = rng.random((SEEDS, N)) < 0.03  # the shift changes 3% of the answers, nothing else
    shifted = np.where(flip, (clean + 1) % CLASSES, clean)
    entry = robustness({"m": {CLEAN: clean, "noise@1": shifted}}, LABELS, n_resamples=500)["models"]["m"]
    drop = entry["conditions"]["noise@1"]["drop"]
    clean_ci = entry["conditions"][CLEAN]["ci95"]
    # an unpaired difference would be about 1.4 times as wide as the clean interval
    assert drop["hi"] - drop["lo"] < clean_ci[1] - clean_ci[0]


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="clean"):
        robustness({"m": {"blur@1": np.zeros((1, N), int)}}, LABELS)
    with pytest.raises(ValueError, match="same conditions"):
        robustness({"a": _model(1, 0.9, 0.8), "b": {CLEAN: _preds(np.random.default_rng(0), 0.9)}}, LABELS)
    assert split_condition(condition_name("rotation", 3)) == ("rotation", 3)


def test_a_model_at_chance_is_not_robust():
    """Shifted over clean would call a model that learned nothing perfectly robust; measured from chance it is 0."""
    rng = np.random.default_rng(7)
    guessing = {c: rng.integers(0, CLASSES, (SEEDS, N)) for c in (CLEAN, "blur@1", "blur@2")}
    result = robustness({"guessing": guessing, "learner": _model(8, 0.9, 0.8)}, LABELS, n_resamples=300)
    assert result["most_robust"] == "learner" and result["chance"] == 0.25
    guessed = result["models"]["guessing"]["robustness"]
    assert guessed["score"] is None and guessed["above_chance"] is False and guessed["tied_with_most_robust"] is None
    assert "drop" in result["models"]["guessing"]["conditions"]["blur@1"]  # its drops are still reported
