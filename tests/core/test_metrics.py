"""Metrics agree with scikit-learn, and the bootstrap gives sensible intervals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score, roc_auc_score, top_k_accuracy_score

from bench.core.metrics import classification_report, expected_calibration_error, weighted_metrics

CLASSES = [f"c{i}" for i in range(10)]
pytestmark = pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")


def _predictions(n: int = 400, seed: int = 0, skill: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.choice(10, size=n, p=[0.61, 0.08, 0.07, 0.06, 0.05, 0.045, 0.035, 0.02, 0.015, 0.015])
    logits = rng.normal(size=(n, 10))
    logits[np.arange(n), labels] += skill
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    probs[:8, 3] = probs[8:16, 3]  # ties exercise the AUC tie handling
    return probs, labels


def test_vectorised_forms_equal_scikit_learn_on_unit_weights():
    probs, labels = _predictions()
    fast = {k: float(v[0]) for k, v in weighted_metrics(probs, labels, np.ones((1, len(labels)))).items()}
    preds = probs.argmax(axis=1)
    present = np.unique(labels)
    assert fast["top1"] == pytest.approx(np.mean(preds == labels))
    assert fast["top5"] == pytest.approx(top_k_accuracy_score(labels, probs, k=5, labels=np.arange(10)))
    assert fast["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, preds))
    assert fast["cohen_kappa"] == pytest.approx(cohen_kappa_score(labels, preds))
    assert fast["macro_auc"] == pytest.approx(np.mean([roc_auc_score(labels == c, probs[:, c]) for c in present]))
    assert fast["ece"] == pytest.approx(expected_calibration_error(probs, labels))


def test_weights_equal_explicit_resampling():
    probs, labels = _predictions(n=120, seed=3)
    idx = np.random.default_rng(1).integers(0, 120, 120)
    weights = np.bincount(idx, minlength=120)[None, :].astype(float)
    fast = {k: float(v[0]) for k, v in weighted_metrics(probs, labels, weights).items()}
    preds = probs[idx].argmax(axis=1)
    assert fast["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels[idx], preds))
    assert fast["cohen_kappa"] == pytest.approx(cohen_kappa_score(labels[idx], preds))
    present = np.unique(labels[idx])
    auc = np.mean([roc_auc_score(labels[idx] == c, probs[idx][:, c]) for c in present])
    assert fast["macro_auc"] == pytest.approx(auc)


def test_report_has_intervals_that_contain_the_estimate():
    probs, labels = _predictions()
    report = classification_report(probs, labels, CLASSES, n_bootstrap=500, seed=0)
    for name in ("top1", "top5", "balanced_accuracy", "macro_auc", "cohen_kappa", "ece"):
        lo, hi = report[name]["ci95"]
        assert lo <= report[name]["value"] <= hi, name
        assert hi - lo > 0, name
    assert report["num_test"] == 400
    cm = np.array(report["confusion_matrix"])
    assert cm.sum() == 400 and cm.shape == (10, 10)
    assert sum(c["support"] for c in report["per_class"].values()) == 400


def test_intervals_shrink_with_more_data():
    small = classification_report(*_predictions(n=100), CLASSES, n_bootstrap=300)
    large = classification_report(*_predictions(n=1600), CLASSES, n_bootstrap=300)
    width = lambda r: r["top1"]["ci95"][1] - r["top1"]["ci95"][0]  # noqa: E731
    assert width(large) < width(small) / 2


def test_perfect_and_chance_predictions():
    labels = np.repeat(np.arange(10), 20)
    perfect = np.eye(10)[labels] * 0.9 + 0.01
    r = classification_report(perfect, labels, CLASSES, n_bootstrap=0)
    assert r["balanced_accuracy"]["value"] == 1.0 and r["cohen_kappa"]["value"] == 1.0
    assert all(c["sensitivity"] == 1.0 and c["specificity"] == 1.0 for c in r["per_class"].values())
    uniform = np.full((200, 10), 0.1)
    assert expected_calibration_error(uniform, labels) == pytest.approx(0.0)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="do not fit 10 classes"):
        classification_report(np.ones((5, 3)), np.zeros(5), CLASSES)


# --------------------------------------------------------------------------- odd label sets


def _softmax_predictions(n: int, k: int, seed: int, skill: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), labels] += skill
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), labels


def _strict(report: dict) -> dict:
    """The report survives strict JSON (no NaN/Infinity anywhere) and round-trips."""
    return json.loads(json.dumps(report, allow_nan=False))


def _assert_null(entry: dict, word: str) -> None:
    assert entry["value"] is None and entry["ci95"] == [None, None]
    assert word in entry["reason"]


def test_binary_task():
    probs, labels = _softmax_predictions(300, 2, seed=4)
    r = _strict(classification_report(probs, labels, ["neg", "pos"], n_bootstrap=300))
    preds = probs.argmax(axis=1)
    _assert_null(r["top5"], "more than 5 classes")
    assert r["top1"]["value"] == pytest.approx(np.mean(preds == labels))
    assert r["balanced_accuracy"]["value"] == pytest.approx(balanced_accuracy_score(labels, preds))
    assert r["macro_auc"]["value"] == pytest.approx(roc_auc_score(labels, probs[:, 1]))
    assert r["cohen_kappa"]["value"] == pytest.approx(cohen_kappa_score(labels, preds))
    for name in ("top1", "balanced_accuracy", "macro_auc", "cohen_kappa", "ece"):
        lo, hi = r[name]["ci95"]
        assert lo <= r[name]["value"] <= hi, name
        assert "reason" not in r[name]
    assert r["test_predictions"] == preds.tolist()
    fast = weighted_metrics(probs, labels, np.ones((1, 300)))
    assert "top5" not in fast and fast["macro_auc"][0] == pytest.approx(roc_auc_score(labels, probs[:, 1]))


def test_single_class_test_split():
    probs, _ = _softmax_predictions(50, 3, seed=5)
    labels = np.zeros(50, dtype=int)
    r = _strict(classification_report(probs, labels, ["a", "b", "c"], n_bootstrap=200))
    preds = probs.argmax(axis=1)
    assert r["balanced_accuracy"]["value"] == pytest.approx(balanced_accuracy_score(labels, preds))
    assert r["balanced_accuracy"]["ci95"][0] is not None
    _assert_null(r["macro_auc"], "AUC")
    _assert_null(r["cohen_kappa"], "kappa")
    _assert_null(r["top5"], "top-5")
    assert r["per_class"]["a"]["specificity"] is None and r["per_class"]["b"]["sensitivity"] is None
    assert r["classes_absent_from_test"] == ["b", "c"]


def test_a_class_absent_from_test():
    probs, labels = _predictions(n=400, seed=6)
    keep = labels != 7
    probs, labels = probs[keep], labels[keep]
    r = _strict(classification_report(probs, labels, CLASSES, n_bootstrap=300))
    preds = probs.argmax(axis=1)
    present = np.unique(labels)
    assert r["per_class"]["c7"]["sensitivity"] is None and r["per_class"]["c7"]["support"] == 0
    assert r["balanced_accuracy"]["value"] == pytest.approx(balanced_accuracy_score(labels, preds))
    assert r["macro_auc"]["value"] == pytest.approx(np.mean([roc_auc_score(labels == c, probs[:, c]) for c in present]))
    assert r["top5"]["value"] == pytest.approx(top_k_accuracy_score(labels, probs, k=5, labels=np.arange(10)))
    assert r["classes_absent_from_test"] == ["c7"] and "c7" in r["balanced_accuracy"]["note"]


def test_three_classes_match_scikit_learn():
    probs, labels = _softmax_predictions(240, 3, seed=7)
    r = _strict(classification_report(probs, labels, ["x", "y", "z"], n_bootstrap=300))
    preds = probs.argmax(axis=1)
    _assert_null(r["top5"], "has 3")
    assert r["balanced_accuracy"]["value"] == pytest.approx(balanced_accuracy_score(labels, preds))
    assert r["macro_auc"]["value"] == pytest.approx(roc_auc_score(labels, probs, multi_class="ovr"))
    assert r["cohen_kappa"]["value"] == pytest.approx(cohen_kappa_score(labels, preds))
    assert r["ece"]["value"] == pytest.approx(expected_calibration_error(probs, labels))
    assert np.array(r["confusion_matrix"]).shape == (3, 3)


def test_tiny_minority_never_yields_nan_intervals():
    """One positive among twelve: most resamples lack it, AUC/kappa skip those resamples."""
    labels = np.array([0] * 11 + [1])
    probs = np.c_[np.linspace(0.9, 0.4, 12), np.linspace(0.1, 0.6, 12)]
    r = _strict(classification_report(probs, labels, ["a", "b"], n_bootstrap=200))
    assert r["macro_auc"]["value"] == pytest.approx(1.0)
    assert all(v is not None for v in r["macro_auc"]["ci95"])


def test_given_predictions_and_tied_probabilities_score_as_chance():
    labels = np.repeat(np.arange(10), 40)
    preds = np.random.default_rng(0).integers(0, 10, 400)
    uniform = np.full((400, 10), 0.1)
    r = _strict(classification_report(uniform, labels, CLASSES, n_bootstrap=100, preds=preds))
    assert r["top5"]["value"] == pytest.approx(0.5)  # ties broken at random in expectation
    assert r["macro_auc"]["value"] == pytest.approx(0.5)
    assert r["balanced_accuracy"]["value"] == pytest.approx(balanced_accuracy_score(labels, preds))
    assert r["ece"]["value"] == pytest.approx(abs(np.mean(preds == labels) - 0.1))
    assert r["test_predictions"] == preds.tolist()


def test_non_finite_probabilities_do_not_crash():
    probs, labels = _predictions(n=100)
    probs[:3] = np.nan
    r = _strict(classification_report(probs, labels, CLASSES, n_bootstrap=50))
    assert r["nonfinite_prob_rows"] == 3 and r["top1"]["value"] is not None


def test_reliability_bins_add_up_to_the_ece():
    probs, labels = _predictions(n=300)
    r = _strict(classification_report(probs, labels, CLASSES, n_bootstrap=20))
    bins = r["reliability"]
    count, conf, correct = (np.array(bins[k], dtype=float) for k in ("count", "confidence_sum", "correct"))
    assert len(bins["bin_edges"]) == len(count) + 1 and count.sum() == 300
    assert correct.sum() == pytest.approx(r["top1"]["value"] * 300)
    filled = count > 0
    assert np.abs(correct[filled] - conf[filled]).sum() / 300 == pytest.approx(r["ece"]["value"], abs=1e-5)
