"""Chance and pixel baselines: shapes, exact chance levels, determinism, and learning something."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from bench.core.metrics import classification_report
from bench.core.stats import balanced_accuracy
from bench.stages.baselines import (
    BASELINES,
    dataset_splits,
    majority_class,
    pixel_logistic_regression,
    pool_pixels,
    baseline_report,
)

K = 3
CLASSES = ["a", "b", "c"]


def _images(labels: np.ndarray, rng: np.random.Generator, side: int = 12) -> np.ndarray:
    """Noise plus a bright square whose corner depends on the class: linearly separable."""
    x = rng.normal(scale=0.5, size=(len(labels), 1, side, side)).astype(np.float32)
    half = side // 2
    for c in range(K):
        rows, cols = divmod(c, 2)
        x[labels == c, :, rows * half:(rows + 1) * half, cols * half:(cols + 1) * half] += 1.5
    return x


@pytest.fixture(scope="module")
def splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    out = {}
    for name, n in (("train", 150), ("val", 60), ("test", 60)):
        labels = rng.choice(K, size=n, p=[0.6, 0.25, 0.15])
        out[name] = (_images(labels, rng), labels)
    return out


def test_pool_pixels_is_area_averaging():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    assert pool_pixels(x, 2).tolist() == [[2.5, 4.5, 10.5, 12.5]]
    y = np.random.default_rng(0).normal(size=(3, 2, 7, 7))
    assert pool_pixels(y, 3).mean(axis=1) == pytest.approx(y.mean(axis=(1, 2, 3)), abs=1e-5)  # 7 → 3: uneven
    assert pool_pixels(y, 7) == pytest.approx(y.mean(axis=1).reshape(3, -1), abs=1e-6)


def test_majority_is_exactly_chance_on_present_classes(splits):
    train_y, test_y = splits["train"][1], splits["test"][1]
    out = majority_class(train_y, len(test_y), K)
    assert out.probs.shape == (len(test_y), K) and out.preds.shape == (len(test_y),)
    assert np.all(out.preds == 0) and out.probs.sum(axis=1) == pytest.approx(1.0)
    assert balanced_accuracy(out.preds, test_y) == pytest.approx(1 / len(np.unique(test_y)))
    report = classification_report(out.probs, test_y, CLASSES, n_bootstrap=50, preds=out.preds)
    assert report["macro_auc"]["value"] == pytest.approx(0.5)


def test_majority_with_a_class_missing_from_test():
    out = majority_class(np.array([0, 0, 0, 1, 2, 3]), 4, 4)
    test_y = np.array([0, 0, 1, 1])  # classes 2 and 3 absent
    assert balanced_accuracy(out.preds, test_y) == pytest.approx(1 / 2)


def test_uniform_chance_is_scored_by_its_expected_values(splits):
    """Balanced accuracy exactly 1/K, AUC 0.5, kappa 0, every interval the value itself: no draw."""
    test_y = splits["test"][1]
    report = baseline_report("chance_uniform", splits, CLASSES, seed=3, n_bootstrap=100)
    assert report["expected"] is True and "test_predictions" not in report
    assert report["balanced_accuracy"] == {"value": round(1 / K, 6), "ci95": [round(1 / K, 6)] * 2,
                                           "note": "expected value of uniform random guessing: exact, no sampling"}
    assert report["macro_auc"]["value"] == 0.5 and report["cohen_kappa"]["value"] == 0.0
    assert report["top1"]["value"] == round(1 / K, 6)
    assert baseline_report("chance_uniform", splits, CLASSES, seed=4)["balanced_accuracy"] == report["balanced_accuracy"]
    assert [c["support"] for c in report["per_class"].values()] == np.bincount(test_y, minlength=K).tolist()


def test_logreg_beats_chance_and_selects_on_val(splits):
    (tx, ty), (vx, vy), (sx, sy) = splits["train"], splits["val"], splits["test"]
    out = pixel_logistic_regression(tx, ty, vx, vy, sx, K, seed=0, sizes=(4, 6, 32), cs=(0.01, 1.0))
    assert out.probs.shape == (len(sy), K) and out.probs.sum(axis=1) == pytest.approx(1.0)
    assert np.array_equal(out.preds, out.probs.argmax(axis=1))
    assert balanced_accuracy(out.preds, sy) > 0.9
    cfg = out.config
    assert cfg["converged"] and cfg["selected_on"] == "val" and cfg["solver"] == "lbfgs"
    assert {g["size"] for g in cfg["grid"]} == {4, 6, 12}  # 32 clipped to the image side
    best = max(cfg["grid"], key=lambda g: g["val_balanced_accuracy"])
    assert cfg["val_balanced_accuracy"] == best["val_balanced_accuracy"]
    again = pixel_logistic_regression(tx, ty, vx, vy, sx, K, seed=0, sizes=(4, 6, 32), cs=(0.01, 1.0))
    assert np.array_equal(again.probs, out.probs)


def test_logreg_class_missing_from_train(splits):
    (tx, ty), (vx, vy), (sx, _) = splits["train"], splits["val"], splits["test"]
    keep = ty != 2
    out = pixel_logistic_regression(tx[keep], ty[keep], vx, vy, sx, K, sizes=(4,), cs=(1.0,))
    assert out.probs.shape == (len(sx), K) and np.all(out.probs[:, 2] == 0)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_registry_reports_are_strict_json(splits, name):
    small = {s: (x, y) for s, (x, y) in splits.items()}
    report = baseline_report(name, small, CLASSES, seed=0, n_bootstrap=100)
    report = json.loads(json.dumps(report, allow_nan=False))
    assert report["baseline"]["name"] == name and report["num_test"] == len(splits["test"][1])
    assert report.get("expected") or len(report["test_predictions"]) == len(splits["test"][1])
    assert report["top5"]["value"] is None  # three classes


def test_unknown_baseline_and_dataset_splits(splits):
    assert list(BASELINES) == ["chance_majority", "chance_uniform", "pixel_logreg"]
    with pytest.raises(KeyError, match="unknown baseline"):
        baseline_report("nope", splits, CLASSES)
    fake = SimpleNamespace(splits={s: SimpleNamespace(images=x, labels=y) for s, (x, y) in splits.items()})
    assert {s: v[0].shape for s, v in dataset_splits(fake).items()} == {s: v[0].shape for s, v in splits.items()}
