"""Imbalance-aware classification metrics with bootstrap confidence intervals.

Point estimates are checked against scikit-learn (see tests); the bootstrap uses
vectorised weighted forms of the same metrics. Any label set is handled: binary tasks,
a test split with a single class, classes with no test examples. A metric that is not
defined for the data is reported as ``{"value": None, "ci95": [None, None], "reason": ...}``
rather than NaN, so every report serialises as strict JSON.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import cohen_kappa_score, confusion_matrix, roc_auc_score

from bench.core.stats import resample_counts, weighted_balanced_accuracy

log = logging.getLogger(__name__)

ECE_BINS = 15
TOP_K = 5
METRIC_NAMES = ("top1", "top5", "balanced_accuracy", "macro_auc", "cohen_kappa", "ece")


def _top_label_confidence(probs: np.ndarray, preds: np.ndarray) -> np.ndarray:
    return probs[np.arange(len(preds)), preds]


def _confidence_bins(probs: np.ndarray, labels: np.ndarray, bins: int, preds: np.ndarray | None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width confidence bin: (images, summed top-label confidence, correct predictions)."""
    preds = probs.argmax(axis=1) if preds is None else preds
    confidence = _top_label_confidence(probs, preds)
    correct = preds == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    return (np.bincount(which, minlength=bins), np.bincount(which, weights=confidence, minlength=bins),
            np.bincount(which, weights=correct.astype(float), minlength=bins))


def expected_calibration_error(
    probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS, preds: np.ndarray | None = None
) -> float:
    """Top-label ECE (Guo et al., 2017): bin by confidence, weight |accuracy − confidence| by bin size.

    ``preds`` defaults to the argmax; a baseline that predicts at random passes its own.
    """
    counts, conf_sum, acc_sum = _confidence_bins(probs, labels, bins, preds)
    filled = counts > 0
    gaps = np.abs(acc_sum[filled] - conf_sum[filled]) / counts[filled]
    return float(np.sum(gaps * counts[filled]) / len(labels))


def reliability_bins(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS,
                     preds: np.ndarray | None = None) -> dict[str, list]:
    """The reliability diagram behind the ECE: per confidence bin, the image count and the sums of
    confidence and of correct predictions (sums, so that seeds can be pooled by adding)."""
    counts, conf_sum, acc_sum = _confidence_bins(probs, labels, bins, preds)
    return {"bin_edges": [round(e, 6) for e in np.linspace(0.0, 1.0, bins + 1).tolist()],
            "count": counts.astype(int).tolist(),
            "confidence_sum": [round(float(v), 6) for v in conf_sum],
            "correct": [int(round(v)) for v in acc_sum]}


def top_k_hits(probs: np.ndarray, labels: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """Per-item top-k hit, with tied scores broken at random in expectation.

    An item whose true class has ``g`` strictly higher scores and ``e`` equal ones (itself
    included) scores ``clip((k − g) / e, 0, 1)``. Without ties this is scikit-learn's
    top-k accuracy; with ties (a constant-probability baseline) it is not biased towards
    whichever class index a sort happens to put first.
    """
    true_score = probs[np.arange(len(labels)), labels][:, None]
    greater = (probs > true_score).sum(axis=1)
    equal = (probs == true_score).sum(axis=1)
    return np.clip((k - greater) / equal, 0.0, 1.0)


def macro_auc(probs: np.ndarray, labels: np.ndarray) -> float | None:
    """Binary AUC of class 1 for two classes; else macro one-vs-rest AUC over the present classes.

    None when fewer than two classes are present in ``labels``.
    """
    present = np.unique(labels)
    if len(present) < 2:
        return None
    if probs.shape[1] == 2:
        return float(roc_auc_score(labels == 1, probs[:, 1]))
    return float(np.mean([roc_auc_score(labels == c, probs[:, c]) for c in present]))


def undefined_reasons(num_classes: int, labels: np.ndarray) -> dict[str, str]:
    """Why each metric that the label set cannot support is undefined (metric name → reason)."""
    reasons = {}
    if num_classes <= TOP_K:
        reasons["top5"] = f"top-{TOP_K} accuracy needs more than {TOP_K} classes; the task has {num_classes}"
    n_present = len(np.unique(labels))
    if n_present < 2:
        why = f"the test split holds {n_present} class; needs at least 2"
        reasons["macro_auc"] = f"AUC is undefined: {why}"
        reasons["cohen_kappa"] = f"Cohen's kappa is degenerate (chance agreement is total): {why}"
    return reasons


def _scalar_metrics(probs: np.ndarray, labels: np.ndarray, preds: np.ndarray) -> dict[str, float | None]:
    skip = undefined_reasons(probs.shape[1], labels)
    return {
        "top1": float(np.mean(preds == labels)),
        "top5": None if "top5" in skip else float(np.mean(top_k_hits(probs, labels))),
        "balanced_accuracy": float(weighted_balanced_accuracy(preds == labels, labels, np.ones((1, len(labels))))[0]),
        "macro_auc": None if "macro_auc" in skip else macro_auc(probs, labels),
        "cohen_kappa": None if "cohen_kappa" in skip else float(cohen_kappa_score(labels, preds)),
        "ece": expected_calibration_error(probs, labels, preds=preds),
    }


def _weighted_auc(probs: np.ndarray, labels: np.ndarray, w: np.ndarray, c: int) -> np.ndarray:
    """One-vs-rest AUC of class ``c`` per weight row: Mann-Whitney U with tie correction, one sort."""
    order = np.argsort(probs[:, c], kind="stable")
    scores, positive = probs[order, c], labels[order] == c
    wc = w[:, order]
    neg_cum = np.concatenate([np.zeros((len(w), 1)), np.cumsum(wc * ~positive, axis=1)], axis=1)
    lo = np.searchsorted(scores, scores, side="left")
    hi = np.searchsorted(scores, scores, side="right")
    below = neg_cum[:, lo] + 0.5 * (neg_cum[:, hi] - neg_cum[:, lo])
    pos_w, neg_w = (wc * positive).sum(axis=1), neg_cum[:, -1]
    defined = (pos_w > 0) & (neg_w > 0)
    num = (wc * positive * below).sum(axis=1)
    return np.divide(num, pos_w * neg_w, out=np.full(len(w), np.nan), where=defined)


def weighted_metrics(
    probs: np.ndarray, labels: np.ndarray, weights: np.ndarray, preds: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The scalar metrics of many weighted copies of one test set at once.

    ``weights`` is (B, N): row b counts how often item n was drawn in bootstrap resample b.
    These are the vectorised forms of the point metrics (tests check that both agree on unit
    weights); they make a 1000-resample bootstrap cost well under a second. A metric that is
    undefined for a resample (e.g. AUC when it drew one class) is NaN there; metrics undefined
    for the whole label set (top-5 with ≤ 5 classes) are left out.
    """
    n, k = probs.shape
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum(axis=1)
    preds = probs.argmax(axis=1) if preds is None else preds
    correct = preds == labels
    out = {"top1": w @ correct / total}
    if k > TOP_K:
        out["top5"] = w @ top_k_hits(probs, labels) / total
    out["balanced_accuracy"] = weighted_balanced_accuracy(correct, labels, w)

    cm = (w @ np.eye(k * k)[labels * k + preds]).reshape(-1, k, k)
    support = cm.sum(axis=2)
    observed = np.trace(cm, axis1=1, axis2=2) / total
    expected = np.einsum("bk,bk->b", support, cm.sum(axis=1)) / total**2
    # kappa is defined only when the resample holds two or more true classes (as for the point value)
    two_classes = (support > 0).sum(axis=1) >= 2
    out["cohen_kappa"] = np.divide(observed - expected, 1 - expected, out=np.full(len(w), np.nan),
                                   where=two_classes & (expected < 1))

    confidence = _top_label_confidence(probs, preds)
    edges = np.linspace(0.0, 1.0, ECE_BINS + 1)
    bins = np.eye(ECE_BINS)[np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, ECE_BINS - 1)]
    gap = np.abs(w @ (bins * correct[:, None]) - w @ (bins * confidence[:, None]))
    out["ece"] = gap.sum(axis=1) / total

    if k == 2:
        out["macro_auc"] = _weighted_auc(probs, labels, w, 1)
    else:
        aucs = np.stack([_weighted_auc(probs, labels, w, c) for c in range(k)], axis=1)
        counted = np.isfinite(aucs)
        sums = np.where(counted, aucs, 0.0).sum(axis=1)
        out["macro_auc"] = np.divide(sums, counted.sum(axis=1), out=np.full(len(w), np.nan),
                                     where=counted.sum(axis=1) >= 2)
    return out


def bootstrap_ci(
    probs: np.ndarray, labels: np.ndarray, n_resamples: int, seed: int = 0, preds: np.ndarray | None = None
) -> dict[str, list[float | None]]:
    """Percentile 95% intervals of every scalar metric, resampling test items with replacement.

    Resamples where a metric is undefined are left out of its interval; an endpoint that
    cannot be computed at all is None.
    """
    weights = resample_counts(len(labels), n_resamples, np.random.default_rng(seed))
    out = {}
    for name, values in weighted_metrics(probs, labels, weights, preds).items():
        finite = values[np.isfinite(values)]
        out[name] = [float(v) for v in np.percentile(finite, [2.5, 97.5])] if len(finite) else [None, None]
    return out


def per_class_rates(cm: np.ndarray, class_names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Sensitivity (recall) and specificity of each class from a confusion matrix (None when 0/0)."""
    total = cm.sum()
    out = {}
    for i, name in enumerate(class_names):
        tp = cm[i, i]
        fn = cm[i].sum() - tp
        fp = cm[:, i].sum() - tp
        tn = total - tp - fn - fp
        out[name] = {
            "sensitivity": float(tp / (tp + fn)) if tp + fn else None,
            "specificity": float(tn / (tn + fp)) if tn + fp else None,
            "support": int(tp + fn),
        }
    return out


def expected_uniform_report(labels: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """The expected test metrics of guessing each of K classes with probability 1/K: exact
    values, so every interval is the value itself. Each class's expected recall is 1/K, so
    balanced accuracy is 1/K; constant probabilities rank nothing (AUC 0.5); the expected
    confusion matrix has independent rows and columns (kappa 0); a constant confidence of
    1/K equals the expected accuracy (ECE 0)."""
    labels = np.asarray(labels, dtype=np.int64)
    k = len(class_names)
    note = "expected value of uniform random guessing: exact, no sampling"
    values = {"top1": 1 / k, "top5": min(5, k) / k, "balanced_accuracy": 1 / k, "macro_auc": 0.5,
              "cohen_kappa": 0.0, "ece": 0.0}
    reasons = undefined_reasons(k, labels)
    report: dict[str, Any] = {name: _entry(None, [None, None], reasons[name]) if name in reasons else
                              {"value": round(v, 6), "ci95": [round(v, 6), round(v, 6)], "note": note}
                              for name, v in values.items()}
    support = np.bincount(labels, minlength=k)
    report["per_class"] = {name: {"sensitivity": round(1 / k, 6), "specificity": round(1 - 1 / k, 6),
                                  "support": int(n)} for name, n in zip(class_names, support)}
    report["classes_absent_from_test"] = [name for name, n in zip(class_names, support) if n == 0]
    report["num_test"] = int(len(labels))
    report["expected"] = True
    return report


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _entry(value: float | None, ci: list[float | None], reason: str | None) -> dict[str, Any]:
    value = _finite(value)
    if value is None:
        return {"value": None, "ci95": [None, None], "reason": reason or "not finite for these predictions"}
    return {"value": value, "ci95": [_finite(v) for v in ci]}


def classification_report(
    probs: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    n_bootstrap: int = 1000,
    seed: int = 0,
    preds: np.ndarray | None = None,
) -> dict[str, Any]:
    """Every test metric of a result: point estimates with 95% CIs, per class, confusion matrix.

    ``preds`` (default: argmax of ``probs``) lets a baseline whose predictions are not the
    argmax of its probabilities (uniform random guessing) be scored as it predicts. The
    report also carries the predicted class per test image (``test_predictions``, in split
    order) so that seeds and models can be compared later from results alone.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    k = len(class_names)
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0] or probs.shape[1] != k:
        raise ValueError(f"probs {probs.shape} and labels {labels.shape} do not fit {k} classes")
    if len(labels) == 0:
        raise ValueError("no test items to score")
    if labels.min() < 0 or labels.max() >= k:
        raise ValueError(f"labels must lie in [0, {k}); got [{labels.min()}, {labels.max()}]")
    bad_rows = ~np.isfinite(probs).all(axis=1)
    if bad_rows.any():  # a diverged model: score those rows as uniform guesses instead of crashing
        log.warning("%d of %d test rows have non-finite probabilities; scored as uniform", bad_rows.sum(), len(probs))
        probs = np.where(bad_rows[:, None], 1.0 / k, probs)
    preds = probs.argmax(axis=1) if preds is None else np.asarray(preds, dtype=np.int64)
    if preds.shape != labels.shape or preds.min() < 0 or preds.max() >= k:
        raise ValueError(f"preds {preds.shape} must be {labels.shape} class ids in [0, {k})")

    point = _scalar_metrics(probs, labels, preds)
    intervals = bootstrap_ci(probs, labels, n_bootstrap, seed, preds) if n_bootstrap else {}
    reasons = undefined_reasons(k, labels)
    report: dict[str, Any] = {
        name: _entry(value, intervals.get(name, [None, None]), reasons.get(name)) for name, value in point.items()
    }
    cm = confusion_matrix(labels, preds, labels=np.arange(k))
    absent = [name for name, n in zip(class_names, cm.sum(axis=1)) if n == 0]
    if absent:  # say so where it changes the meaning of a mean over classes
        note = f"over the {k - len(absent)} classes present in the test split; absent: {absent}"
        for name in ("balanced_accuracy", "macro_auc"):
            if report[name]["value"] is not None:
                report[name]["note"] = note
    report["classes_absent_from_test"] = absent
    report["confusion_matrix"] = cm.astype(int).tolist()
    report["per_class"] = per_class_rates(cm, class_names)
    report["num_test"] = int(len(labels))
    report["test_predictions"] = preds.astype(int).tolist()
    report["reliability"] = reliability_bins(probs, labels, preds=preds)
    if bad_rows.any():
        report["nonfinite_prob_rows"] = int(bad_rows.sum())
    return report
