"""Imbalance-aware classification metrics with bootstrap confidence intervals.

scikit-learn computes each metric; this module only decides which ones, handles the
classes absent from a resample, and bootstraps the test set for 95% intervals.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import (
    balanced_accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    roc_auc_score,
    top_k_accuracy_score,
)

log = logging.getLogger(__name__)

ECE_BINS = 15


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE (Guo et al., 2017): bin by confidence, weight |accuracy − confidence| by bin size."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    conf_sum = np.bincount(which, weights=confidence, minlength=bins)
    acc_sum = np.bincount(which, weights=correct.astype(float), minlength=bins)
    filled = counts > 0
    gaps = np.abs(acc_sum[filled] - conf_sum[filled]) / counts[filled]
    return float(np.sum(gaps * counts[filled]) / len(labels))


def macro_auc(probs: np.ndarray, labels: np.ndarray) -> float | None:
    """Macro one-vs-rest AUC over the classes present in ``labels`` (None if fewer than two)."""
    present = np.unique(labels)
    if len(present) < 2:
        return None
    scores = [roc_auc_score(labels == c, probs[:, c]) for c in present]
    return float(np.mean(scores))


def _scalar_metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, float | None]:
    num_classes = probs.shape[1]
    preds = probs.argmax(axis=1)
    k = min(5, num_classes - 1)
    kappa = cohen_kappa_score(labels, preds) if len(np.unique(np.r_[labels, preds])) > 1 else 0.0
    return {
        "top1": float(np.mean(preds == labels)),
        "top5": float(top_k_accuracy_score(labels, probs, k=k, labels=np.arange(num_classes))),
        "balanced_accuracy": float(balanced_accuracy_score(labels, preds)),
        "macro_auc": macro_auc(probs, labels),
        "cohen_kappa": float(kappa),
        "ece": expected_calibration_error(probs, labels),
    }


def weighted_metrics(probs: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """The scalar metrics of many weighted copies of one test set at once.

    ``weights`` is (B, N): row b counts how often item n was drawn in bootstrap resample b.
    These are the vectorised forms of the scikit-learn metrics (tests check that both agree
    on unit weights); they make a 1000-resample bootstrap cost well under a second.
    """
    n, k = probs.shape
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum(axis=1)
    preds = probs.argmax(axis=1)
    top5 = np.argsort(-probs, axis=1)[:, : min(5, k - 1)]
    out = {
        "top1": w @ (preds == labels) / total,
        "top5": w @ (top5 == labels[:, None]).any(axis=1) / total,
    }
    cm = (w @ np.eye(k * k)[labels * k + preds]).reshape(-1, k, k)
    support = cm.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.diagonal(cm, axis1=1, axis2=2) / support
        out["balanced_accuracy"] = np.nanmean(np.where(support > 0, recall, np.nan), axis=1)
        observed = np.trace(cm, axis1=1, axis2=2) / total
        expected = np.einsum("bk,bk->b", support, cm.sum(axis=1)) / total**2
        out["cohen_kappa"] = np.where(expected < 1, (observed - expected) / (1 - expected), 0.0)

    confidence = probs.max(axis=1)
    edges = np.linspace(0.0, 1.0, ECE_BINS + 1)
    bins = np.eye(ECE_BINS)[np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, ECE_BINS - 1)]
    gap = np.abs(w @ (bins * (preds == labels)[:, None]) - w @ (bins * confidence[:, None]))
    out["ece"] = gap.sum(axis=1) / total

    aucs = []
    for c in range(k):  # Mann-Whitney U with tie correction, one sort per class
        order = np.argsort(probs[:, c], kind="stable")
        scores, positive = probs[order, c], labels[order] == c
        wc = w[:, order]
        neg_cum = np.concatenate([np.zeros((len(w), 1)), np.cumsum(wc * ~positive, axis=1)], axis=1)
        lo = np.searchsorted(scores, scores, side="left")
        hi = np.searchsorted(scores, scores, side="right")
        below = neg_cum[:, lo] + 0.5 * (neg_cum[:, hi] - neg_cum[:, lo])
        pos_w, neg_w = (wc * positive).sum(axis=1), neg_cum[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            aucs.append(np.where((pos_w > 0) & (neg_w > 0), (wc * positive * below).sum(axis=1) / (pos_w * neg_w), np.nan))
    out["macro_auc"] = np.nanmean(np.stack(aucs, axis=1), axis=1)
    return out


def bootstrap_ci(probs: np.ndarray, labels: np.ndarray, n_resamples: int, seed: int = 0) -> dict[str, list[float]]:
    """Percentile 95% intervals of every scalar metric, resampling test items with replacement."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    draws = rng.integers(0, n, size=(n_resamples, n))
    weights = np.zeros((n_resamples, n))
    np.add.at(weights, (np.arange(n_resamples)[:, None], draws), 1.0)
    out = {}
    for name, values in weighted_metrics(probs, labels, weights).items():
        lo, hi = np.nanpercentile(values, [2.5, 97.5])
        out[name] = [float(lo), float(hi)]
    return out


def per_class_rates(cm: np.ndarray, class_names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Sensitivity (recall) and specificity of each class from a confusion matrix."""
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


def classification_report(
    probs: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Every test metric of a train result: point estimates with 95% CIs, per class, confusion matrix."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0] or probs.shape[1] != len(class_names):
        raise ValueError(f"probs {probs.shape} and labels {labels.shape} do not fit {len(class_names)} classes")
    point = _scalar_metrics(probs, labels)
    intervals = bootstrap_ci(probs, labels, n_bootstrap, seed) if n_bootstrap else {}
    report: dict[str, Any] = {
        name: {"value": value, "ci95": intervals.get(name, [None, None])} for name, value in point.items()
    }
    cm = confusion_matrix(labels, probs.argmax(axis=1), labels=np.arange(len(class_names)))
    report["confusion_matrix"] = cm.astype(int).tolist()
    report["per_class"] = per_class_rates(cm, class_names)
    report["num_test"] = int(len(labels))
    return report
