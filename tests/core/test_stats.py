"""Two-level bootstrap over seeds and images, and paired model comparisons."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from bench.core.stats import (
    balanced_accuracy,
    compare_models,
    holm_adjust,
    image_bootstrap,
    paired_difference,
    resample_counts,
    seed_image_bootstrap,
    weighted_balanced_accuracy,
)

N = 500


def _labels(n: int = N, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).choice(5, size=n, p=[0.4, 0.25, 0.15, 0.12, 0.08])


def _model(labels: np.ndarray, accuracy: float, seeds: int, rng: np.random.Generator) -> np.ndarray:
    """(seeds, N) predictions: right with probability ``accuracy``, else a wrong class at random."""
    right = rng.random((seeds, len(labels))) < accuracy
    wrong = (labels + rng.integers(1, 5, (seeds, len(labels)))) % 5
    return np.where(right, labels, wrong)


@pytest.fixture(scope="module")
def three_models() -> tuple[dict[str, np.ndarray], np.ndarray]:
    labels = _labels()
    rng = np.random.default_rng(1)
    preds = {
        "twin_a": _model(labels, 0.8, 3, rng),  # same error rate, independent errors
        "twin_b": _model(labels, 0.8, 3, rng),
        "weak": _model(labels, 0.5, 3, rng),
        "chance": rng.integers(0, 5, (1, len(labels))),
    }
    return preds, labels


def test_balanced_accuracy_matches_scikit_learn():
    labels = _labels()
    preds = _model(labels, 0.6, 1, np.random.default_rng(2))[0]
    assert balanced_accuracy(preds, labels) == pytest.approx(balanced_accuracy_score(labels, preds))
    idx = np.random.default_rng(3).integers(0, N, N)
    weights = np.bincount(idx, minlength=N)[None, :]
    assert weighted_balanced_accuracy(preds == labels, labels, weights)[0] == pytest.approx(
        balanced_accuracy_score(labels[idx], preds[idx]))


def test_resample_counts_sum_to_n():
    w = resample_counts(37, 50, np.random.default_rng(0))
    assert w.shape == (50, 37) and np.all(w.sum(axis=1) == 37)


def test_marks_tied_and_worse_models(three_models):
    preds, labels = three_models
    out = json.loads(json.dumps(compare_models(preds, labels, 1000, seed=0, reference="chance"), allow_nan=False))
    models = out["models"]
    assert out["best"] in ("twin_a", "twin_b") and out["reference"] == "chance"
    other = "twin_b" if out["best"] == "twin_a" else "twin_a"
    assert models[out["best"]]["is_best"] and models[out["best"]]["tied_with_best"]
    assert models[other]["tied_with_best"] and models[other]["vs_best"]["p_value"] > 0.05
    assert not models["weak"]["tied_with_best"]
    assert models["weak"]["vs_best"]["hi"] < 0 and models["weak"]["vs_best"]["p_value"] < 0.01
    for name in ("twin_a", "twin_b", "weak"):
        assert models[name]["better_than_reference"] and not models[name]["ci_overlaps_reference"]
    assert "vs_reference" not in models["chance"]
    for name, entry in models.items():
        lo, hi = entry["ci95"]
        assert lo <= entry["mean"] <= hi, name
    expected = np.mean([balanced_accuracy_score(labels, p) for p in preds["weak"]])
    assert models["weak"]["mean"] == pytest.approx(expected, abs=1e-6)


def test_paired_test_sees_what_overlapping_intervals_miss():
    """B is A with 5% of its hits turned into errors: the CIs overlap, the paired interval does not.

    One seed each, so that only the image draw varies (with several seeds each model's seed
    spread enters the difference too, as it should).
    """
    labels = _labels()
    rng = np.random.default_rng(4)
    a = _model(labels, 0.75, 1, rng)
    spoil = (a == labels) & (rng.random(a.shape) < 0.05)
    b = np.where(spoil, (labels + 1) % 5, a)
    out = compare_models({"a": a, "b": b}, labels, 1000, seed=0, reference="b")["models"]["a"]
    assert out["better_than_reference"] and out["ci_overlaps_reference"]
    d = paired_difference(a, b, labels, 1000, seed=0)
    assert d["lo"] > 0 and not d["tied"] and d["diff"] == pytest.approx(out["vs_reference"]["diff"])


def test_interval_widens_with_seed_disagreement():
    labels = _labels()
    rng = np.random.default_rng(5)
    one = _model(labels, 0.7, 1, rng)
    same = np.repeat(one, 2, axis=0)
    apart = np.concatenate([_model(labels, 0.9, 1, rng), _model(labels, 0.5, 1, rng)])
    _, lo_same, hi_same = seed_image_bootstrap(same, labels, 1000, seed=0)
    _, lo_apart, hi_apart = seed_image_bootstrap(apart, labels, 1000, seed=0)
    assert hi_apart - lo_apart > 2 * (hi_same - lo_same)
    # identical seeds add nothing: the interval is the image-only one
    _, lo_one, hi_one = seed_image_bootstrap(one, labels, 1000, seed=0)
    assert hi_same - lo_same == pytest.approx(hi_one - lo_one, rel=0.15)


def test_two_seeds_far_apart_widen_the_interval_beyond_the_images_alone():
    """Two seeds 0.4 apart: the seed variance of their mean is s²/2 = 0.04 (SD 0.2). A plain
    bootstrap over two seeds halves it (half-width about 0.2); the stretched draw keeps it
    (about 0.28), far beyond what the test images alone give."""
    labels = _labels(2000)
    rng = np.random.default_rng(8)
    apart = np.concatenate([_model(labels, 0.9, 1, rng), _model(labels, 0.5, 1, rng)])
    scores = [balanced_accuracy(p, labels) for p in apart]
    gap = abs(scores[0] - scores[1])
    mean, lo, hi = seed_image_bootstrap(apart, labels, 2000, seed=0)
    _, lo_images, hi_images = image_bootstrap(apart, labels, 2000, seed=0)
    assert mean == pytest.approx(np.mean(scores))
    assert hi_images - lo_images < 0.1 < hi - lo
    assert hi - lo > 1.3 * gap  # a plain two-seed bootstrap gives about 1.0 x the gap
    out = compare_models({"apart": apart}, labels, 2000, seed=0)["models"]["apart"]
    assert out["ci95"] == [pytest.approx(lo, abs=1e-6), pytest.approx(hi, abs=1e-6)]
    assert out["ci95_images"] == [pytest.approx(lo_images, abs=1e-6), pytest.approx(hi_images, abs=1e-6)]
    assert out["seed_sd"] == pytest.approx(np.std(scores, ddof=1), abs=1e-6)


def test_holm_adjusts_step_down_in_the_order_given():
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjust([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert holm_adjust([]) == []


def test_a_model_tied_with_the_best_only_after_the_correction_is_marked_tied():
    """Two challengers, each wrong on 4 images the best gets right: each paired p-value is
    about 2e^-4 = 0.037 and its 95% interval excludes 0, yet over the two comparisons Holm
    lifts both above 0.05, so both are tied with the best."""
    labels = np.repeat(np.arange(5), 200)
    best = labels.copy()
    first, second = labels.copy(), labels.copy()
    first[[0, 1, 2, 3]] = (labels[[0, 1, 2, 3]] + 1) % 5
    second[[500, 501, 502, 503]] = (labels[[500, 501, 502, 503]] + 1) % 5
    out = compare_models({"best": best, "first": first, "second": second}, labels, 4000, seed=0)
    assert out["best"] == "best"
    for name in ("first", "second"):
        vs = out["models"][name]["vs_best"]
        assert vs["hi"] < 0 and vs["p_value"] < 0.05 and not vs["tied"]  # resolved before the correction
        assert vs["p_holm"] > 0.05 and out["models"][name]["tied_with_best"] is True
    alone = compare_models({"best": best, "first": first}, labels, 4000, seed=0)["models"]["first"]
    assert alone["tied_with_best"] is False  # one comparison: nothing to correct


def test_deterministic_given_seed(three_models):
    preds, labels = three_models
    assert compare_models(preds, labels, 300, seed=7) == compare_models(preds, labels, 300, seed=7)
    assert seed_image_bootstrap(preds["weak"], labels, 300, seed=1) != seed_image_bootstrap(
        preds["weak"], labels, 300, seed=2)


def test_unknown_reference_and_bad_shapes(three_models):
    preds, labels = three_models
    assert compare_models(preds, labels, 100, reference="nope")["reference"] is None
    with pytest.raises(ValueError, match="test images"):
        paired_difference(preds["weak"], preds["weak"][:, :10], labels, 100)


def test_imports_neither_torch_nor_sklearn():
    code = "import sys, bench.core.stats; print(any(m in sys.modules for m in ('torch', 'sklearn')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
