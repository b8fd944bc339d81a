"""Trivial baselines scored on the same splits as the models: chance and a pixel classifier.

They answer "is the model learning anything beyond class frequencies and raw intensity
patterns?". Each takes numpy arrays (no torch) and returns test-set probabilities and
predictions plus the configuration it used, so results record how a baseline was made.

- ``chance_majority``: always the most frequent training class; its probabilities are the
  training class frequencies (the same for every image), so AUC is exactly 0.5 and its
  balanced accuracy is exactly 1/K over the classes present in the test split.
- ``chance_uniform``: uniform random guessing, scored by its expected values (balanced
  accuracy exactly 1/K, AUC 0.5, kappa 0) rather than one random draw of guesses.
- ``pixel_logreg``: multinomial logistic regression on area-downsampled, standardised
  pixels with balanced class weights. Resolution and regularisation are picked on the
  validation split (never on test) from a small grid; see :func:`pixel_logistic_regression`.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from bench.core.stats import balanced_accuracy

log = logging.getLogger(__name__)

# Split name → (images (N, C, H, W) float, labels (N,) int).
Splits = Mapping[str, tuple[np.ndarray, np.ndarray]]

LOGREG_SIZES = (16, 32)
LOGREG_CS = (0.001, 0.01, 0.1, 1.0)
LOGREG_MAX_ITER = 2000


@dataclass
class BaselineOutput:
    """Test-set probabilities (N, K), predicted class ids (N,) and the settings used."""

    probs: np.ndarray
    preds: np.ndarray | None  # None: scored by expected values, not by one draw of predictions
    config: dict[str, Any] = field(default_factory=dict)


def majority_class(train_labels: np.ndarray, n_test: int, num_classes: int) -> BaselineOutput:
    """Predict the most frequent training class; probabilities are the training frequencies."""
    counts = np.bincount(np.asarray(train_labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    majority = int(np.argmax(counts))
    probs = np.broadcast_to(counts / counts.sum(), (n_test, num_classes)).copy()
    preds = np.full(n_test, majority, dtype=np.int64)
    frequencies = (counts / counts.sum()).round(6).tolist()
    return BaselineOutput(probs, preds, {"predicts": majority, "train_frequencies": frequencies})


def uniform_random(n_test: int, num_classes: int) -> BaselineOutput:
    """Guess each class with probability 1/K; scored by expected values (no draw of guesses)."""
    return BaselineOutput(np.full((n_test, num_classes), 1.0 / num_classes), None, {"scored_by": "expected values"})


def _area_matrix(src: int, dst: int) -> np.ndarray:
    """(dst, src) averaging weights: output pixel i is the mean over its share of input pixels.

    Exact area (box) resampling, also when ``src`` is not a multiple of ``dst``.
    """
    edges = np.arange(dst + 1) * src / dst
    lo, hi = edges[:-1, None], edges[1:, None]
    pixel = np.arange(src)[None, :]
    overlap = np.clip(np.minimum(hi, pixel + 1) - np.maximum(lo, pixel), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def pool_pixels(images: np.ndarray, size: int) -> np.ndarray:
    """(N, C, H, W) → (N, size*size) features: channels averaged, then area-downsampled.

    Channels are averaged because the loader repeats one grey channel to ``in_chans``.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[:, None]
    grey = x.mean(axis=1)
    rows, cols = _area_matrix(grey.shape[1], size), _area_matrix(grey.shape[2], size)
    return np.einsum("ih,nhw,jw->nij", rows, grey, cols, optimize=True).reshape(len(x), -1)


def _fit(x: np.ndarray, y: np.ndarray, c: float, seed: int) -> tuple[LogisticRegression, bool]:
    model = LogisticRegression(C=c, class_weight="balanced", solver="lbfgs", max_iter=LOGREG_MAX_ITER,
                               random_state=seed)
    # one BLAS thread: these matrices are small, and more threads on shared cores ran ~10x slower
    with warnings.catch_warnings(record=True) as caught, threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x, y)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return model, converged


def _full_probs(model: LogisticRegression, x: np.ndarray, num_classes: int) -> np.ndarray:
    """predict_proba widened to every class (a class absent from train gets probability 0)."""
    probs = np.zeros((len(x), num_classes))
    probs[:, model.classes_] = model.predict_proba(x)
    return probs


def pixel_logistic_regression(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    test_x: np.ndarray,
    num_classes: int,
    seed: int = 0,
    sizes: Sequence[int] = LOGREG_SIZES,
    cs: Sequence[float] = LOGREG_CS,
) -> BaselineOutput:
    """Logistic regression on downsampled, standardised pixels; size and C picked on validation.

    Why this setting: area pooling to 16–32 px keeps the coarse anatomy and lesion blobs while
    making the problem small enough for lbfgs to converge in seconds on 2 cores; standardising
    per pixel (fit on train) puts every feature on one scale so that one L2 strength C fits;
    balanced class weights optimise the same imbalance-aware target as the models. The grid
    point with the best validation balanced accuracy wins (ties: the smaller size, then the
    smaller C — the simpler model). Only the training split is fitted; test is scored once.
    """
    train_y, val_y = np.asarray(train_y, dtype=np.int64), np.asarray(val_y, dtype=np.int64)
    side = min(np.shape(train_x)[-2:])
    sizes = sorted({min(int(s), side) for s in sizes})
    start = time.perf_counter()
    grid, best = [], None
    for size in sizes:
        scaler = StandardScaler().fit(pool_pixels(train_x, size))
        xtr, xva = scaler.transform(pool_pixels(train_x, size)), scaler.transform(pool_pixels(val_x, size))
        for c in sorted(cs):
            model, converged = _fit(xtr, train_y, c, seed)
            score = balanced_accuracy(model.predict(xva), val_y)
            grid.append({"size": size, "C": c, "val_balanced_accuracy": round(score, 6), "converged": converged,
                         "n_iter": int(np.max(model.n_iter_))})
            log.debug("pixel logreg %dpx C=%g: val bal-acc %.4f (%s)", size, c, score,
                      "converged" if converged else "not converged")
            if best is None or score > best[0]:
                best = (score, size, c, model, scaler, converged)
    score, size, c, model, scaler, converged = best
    probs = _full_probs(model, scaler.transform(pool_pixels(test_x, size)), num_classes)
    seconds = time.perf_counter() - start
    if not converged:
        log.warning("pixel logreg %dpx C=%g did not converge in %d iterations", size, c, LOGREG_MAX_ITER)
    log.info("pixel logreg: picked %dpx C=%g on val (bal-acc %.4f); grid of %d in %.1fs",
             size, c, score, len(grid), seconds)
    config = {"size": size, "C": c, "solver": "lbfgs", "penalty": "l2", "class_weight": "balanced",
              "max_iter": LOGREG_MAX_ITER, "converged": converged, "n_iter": int(np.max(model.n_iter_)),
              "val_balanced_accuracy": round(score, 6), "selected_on": "val", "grid": grid,
              "fit_seconds": round(seconds, 3)}
    return BaselineOutput(probs, probs.argmax(axis=1), config)


# --------------------------------------------------------------------------- registry


BaselineFn = Callable[[Splits, int, int], BaselineOutput]


def _chance_majority(splits: Splits, num_classes: int, seed: int) -> BaselineOutput:
    return majority_class(splits["train"][1], len(splits["test"][1]), num_classes)


def _chance_uniform(splits: Splits, num_classes: int, seed: int) -> BaselineOutput:
    return uniform_random(len(splits["test"][1]), num_classes)


def _pixel_logreg(splits: Splits, num_classes: int, seed: int) -> BaselineOutput:
    (train_x, train_y), (val_x, val_y), (test_x, _) = splits["train"], splits["val"], splits["test"]
    return pixel_logistic_regression(train_x, train_y, val_x, val_y, test_x, num_classes, seed)


# Baseline name → ``fn(splits, num_classes, seed) -> BaselineOutput``.
BASELINES: dict[str, BaselineFn] = {
    "chance_majority": _chance_majority,
    "chance_uniform": _chance_uniform,
    "pixel_logreg": _pixel_logreg,
}


def dataset_splits(dataset: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """numpy (images, labels) per split of a :class:`~bench.data.datasets.LoadedDataset`."""
    return {name: (np.asarray(t.images), np.asarray(t.labels)) for name, t in dataset.splits.items()}


def baseline_report(
    name: str, splits: Splits, class_names: Sequence[str], seed: int = 0, n_bootstrap: int = 1000
) -> dict[str, Any]:
    """One baseline's test report (same shape as a model's, test labels included) with its
    config under ``"baseline"``."""
    from bench.core.metrics import classification_report  # lazy: keeps this module light to import

    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; known: {sorted(BASELINES)}")
    from bench.core.metrics import expected_uniform_report

    out = BASELINES[name](splits, len(class_names), seed)
    if out.preds is None:
        report = expected_uniform_report(splits["test"][1], class_names)
    else:
        report = classification_report(out.probs, splits["test"][1], class_names, n_bootstrap, seed, preds=out.preds)
    report["baseline"] = {"name": name, **out.config}
    report["test_labels"] = np.asarray(splits["test"][1]).tolist()
    return report
