"""Statistics across seeds and between models, from test predictions alone (pure numpy).

Every interval here is a percentile bootstrap of balanced accuracy. A resample is a
vector of counts per test image (how often it was drawn), so a metric under a thousand
resamples is a couple of matrix products rather than a Python loop.

The interval for a model's mean over seeds is a *two-level (hierarchical) bootstrap*:
each resample draws S of the model's S seeds with replacement and N of the N test
images with replacement, applies the same image draw to every drawn seed, and averages
the drawn seeds' balanced accuracies. It therefore covers both sources of variation
— which seed you trained, and which images you tested on — instead of averaging
per-seed endpoints (which ignores seed spread) or pooling seeds as if they were images.

A plain bootstrap over S seeds shrinks the seed variance by (S - 1)/S (two seeds: half
of it). Each resample's seed draw is therefore stretched about the mean of all S seeds
by sqrt(S/(S - 1)), which makes the bootstrap variance of the seed mean s²/S, with s the
usual (n - 1) seed standard deviation. One seed carries no seed variance at all: its
interval covers the test images only, and the comparison says so (``num_seeds``).

Model comparisons are *paired*: both models are scored on the same image draw in each
resample, so the difficulty of the drawn images cancels in the difference. Against the
best model, the p-values of all comparisons are adjusted together by Holm's step-down
method, so that "tied with the best" holds the family-wise error at 5%.

Neither torch nor scikit-learn is imported: the static site builder uses this module.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)

# Resamples are processed in blocks so that the (block, N) count matrix stays small.
_BLOCK_CELLS = 4_000_000


def resample_counts(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, n) float counts: row b says how often each item was drawn in resample b."""
    draws = rng.integers(0, n, size=(n_resamples, n))
    offsets = (np.arange(n_resamples) * n)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=n_resamples * n).reshape(n_resamples, n).astype(np.float64)


def weighted_balanced_accuracy(correct: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Balanced accuracy of weighted copies of a test set; classes with zero weight are left out.

    ``correct`` is (N,) or (S, N) booleans (one row per seed), ``weights`` (B, N) counts.
    Returns (B,) or (B, S). Equals scikit-learn's ``balanced_accuracy_score`` on unit weights:
    the mean recall over the classes present in ``labels``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    correct = np.asarray(correct, dtype=np.float64)
    single = correct.ndim == 1
    correct = np.atleast_2d(correct)
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    k = int(labels.max()) + 1
    onehot = np.eye(k)[labels]  # (N, K)
    support = w @ onehot  # (B, K)
    # (N, S*K): image n's correctness per seed, in its class's column
    hits = (correct.T[:, :, None] * onehot[:, None, :]).reshape(len(labels), -1)
    hit_counts = (w @ hits).reshape(len(w), correct.shape[0], k)  # (B, S, K)
    present = support > 0
    recall = np.divide(hit_counts, support[:, None, :], out=np.zeros_like(hit_counts), where=present[:, None, :])
    out = recall.sum(axis=2) / present.sum(axis=1, keepdims=True)  # every resample has >= 1 class
    return out[:, 0] if single else out


def balanced_accuracy(preds: np.ndarray, labels: np.ndarray) -> float:
    """Mean per-class recall over the classes present in ``labels``."""
    preds, labels = np.asarray(preds), np.asarray(labels, dtype=np.int64)
    if preds.ndim != 1:
        raise ValueError(f"balanced_accuracy takes one row of predictions, got shape {preds.shape}")
    _check(preds[None, :], labels)
    return float(weighted_balanced_accuracy(preds == labels, labels, np.ones((1, len(labels))))[0])


def _check(preds: np.ndarray, labels: np.ndarray) -> None:
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-d array, got shape {labels.shape}")
    if preds.ndim != 2 or preds.shape[1] != len(labels) or preds.shape[0] == 0:
        raise ValueError(f"predictions {preds.shape} must be (seeds >= 1, {len(labels)} test images)")
    if labels.min() < 0:
        raise ValueError("labels must be non-negative class ids")


def _rngs(seed: int, n_models: int) -> tuple[np.random.Generator, list[np.random.Generator]]:
    """One stream for the shared image draw and one per model for its seed draw."""
    children = np.random.SeedSequence(seed).spawn(n_models + 1)
    return np.random.default_rng(children[0]), [np.random.default_rng(c) for c in children[1:]]


def seed_stretch(num_seeds: int) -> float:
    """How far a resample's seed draw is stretched about the all-seed mean: sqrt(S/(S-1)), 0 for one seed."""
    return float(np.sqrt(num_seeds / (num_seeds - 1))) if num_seeds > 1 else 0.0


def _resampled_means(
    preds: list[np.ndarray], labels: np.ndarray, n_resamples: int, seed: int, seeds: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Point mean balanced accuracy per model (M,) and its two-level bootstrap replicates (M, B).

    All models share each resample's image draw, which is what makes differences paired.
    ``seeds=False`` keeps every seed in every resample: the images-only interval.
    """
    labels = np.asarray(labels, dtype=np.int64)
    preds = [np.atleast_2d(np.asarray(p)) for p in preds]
    for p in preds:
        _check(p, labels)
    n = len(labels)
    image_rng, seed_rngs = _rngs(seed, len(preds))
    correct = [p == labels for p in preds]
    unit = np.ones((1, n))
    point = np.array([weighted_balanced_accuracy(c, labels, unit)[0].mean() for c in correct])
    # seed draws are independent per model: seeds of different models are not paired
    seed_weights = [resample_counts(len(c), n_resamples, r) / len(c) for c, r in zip(correct, seed_rngs)]
    reps = np.empty((len(preds), n_resamples))
    block = max(1, _BLOCK_CELLS // n)
    for start in range(0, n_resamples, block):
        stop = min(start + block, n_resamples)
        w = resample_counts(n, stop - start, image_rng)
        for m, c in enumerate(correct):
            per_seed = weighted_balanced_accuracy(c, labels, w)  # (b, S)
            all_seeds = per_seed.mean(axis=1)
            drawn = np.einsum("bs,bs->b", per_seed, seed_weights[m][start:stop])
            reps[m, start:stop] = all_seeds + (seed_stretch(len(c)) * (drawn - all_seeds) if seeds else 0.0)
    return point, reps


def seed_sd(preds_by_seed: np.ndarray, labels: np.ndarray) -> float | None:
    """The (n - 1) standard deviation of balanced accuracy across seeds; None for one seed."""
    preds_by_seed = np.atleast_2d(np.asarray(preds_by_seed))
    if len(preds_by_seed) < 2:
        return None
    scores = weighted_balanced_accuracy(preds_by_seed == np.asarray(labels), labels, np.ones((1, len(labels))))[0]
    return float(np.std(scores, ddof=1))


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: the family-wise error stays at
    the level of the test when every adjusted p-value is compared with it."""
    order = np.argsort(p_values, kind="stable")
    m, running, adjusted = len(p_values), 0.0, [0.0] * len(p_values)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        adjusted[i] = running
    return adjusted


def _interval(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def seed_image_bootstrap(
    preds_by_seed: np.ndarray, labels: np.ndarray, n_resamples: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, lo, hi): the across-seed mean balanced accuracy and its two-level 95% interval.

    ``preds_by_seed`` is (S, N) predicted class ids, one row per training seed, on the same
    N test images. See the module docstring for the resampling scheme.
    """
    point, reps = _resampled_means([preds_by_seed], labels, n_resamples, seed)
    return (float(point[0]), *_interval(reps[0]))


def image_bootstrap(
    preds_by_seed: np.ndarray, labels: np.ndarray, n_resamples: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, lo, hi) as :func:`seed_image_bootstrap`, with every seed kept in every resample:
    the interval the test images alone would give, blind to seed-to-seed variation."""
    point, reps = _resampled_means([preds_by_seed], labels, n_resamples, seed, seeds=False)
    return (float(point[0]), *_interval(reps[0]))


def _p_value(diffs: np.ndarray) -> float:
    """Two-sided bootstrap p-value for "no difference"; +1 smoothing keeps it above 1/(B+1)."""
    b = len(diffs)
    below = (np.sum(diffs <= 0) + 1) / (b + 1)
    above = (np.sum(diffs >= 0) + 1) / (b + 1)
    return float(min(1.0, 2 * min(below, above)))


def _difference(point: np.ndarray, reps: np.ndarray, a: int, b: int) -> dict[str, Any]:
    diffs = reps[a] - reps[b]
    lo, hi = _interval(diffs)
    return {
        "diff": _r(point[a] - point[b]),
        "lo": _r(lo),
        "hi": _r(hi),
        "p_value": _r(_p_value(diffs)),
        "tied": bool(lo <= 0 <= hi),
    }


def paired_difference(
    preds_a: np.ndarray, preds_b: np.ndarray, labels: np.ndarray, n_resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Mean balanced accuracy of A minus B with a paired two-level 95% interval and p-value.

    Each resample draws the test images once for both models and each model's seeds
    separately. ``tied`` is True when the interval contains 0.
    """
    point, reps = _resampled_means([preds_a, preds_b], labels, n_resamples, seed)
    return _difference(point, reps, 0, 1)


def _r(x: float) -> float:
    return round(float(x), 6)


def compare_models(
    preds: Mapping[str, np.ndarray],
    labels: np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
    reference: str | None = None,
    candidates: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Mean, 95% interval and paired comparisons of several models on one test set.

    The best is the highest mean among ``candidates`` (default: all), so that a baseline
    can sit in the comparison without ever being called the best model.

    ``preds`` maps a model name to its (S, N) predictions (S may differ between models).
    Returns ``{"best": name, "reference": name|None, "models": {name: {...}}}`` where each
    model has ``mean``, ``ci95`` (seeds and images), ``ci95_images`` (images only),
    ``seed_sd``, ``num_seeds``, ``is_best``, ``tied_with_best`` and (except the best)
    ``vs_best`` — the paired difference model − best, whose ``p_holm`` is its p-value
    adjusted by Holm over every comparison with the best; ``tied_with_best`` is
    ``p_holm > alpha``. With a ``reference`` that
    is one of ``preds`` (a baseline), every other model also gets ``vs_reference``,
    ``better_than_reference`` (the lower end of model − reference is above 0) and
    ``ci_overlaps_reference`` (whether the two models' own intervals overlap, which is a
    cruder, more conservative test than the paired one).
    """
    if not preds:
        raise ValueError("compare_models needs at least one model")
    if reference is not None and reference not in preds:
        log.warning("reference %r is not among the models %s; no reference comparison", reference, sorted(preds))
        reference = None
    names = list(preds)
    point, reps = _resampled_means([preds[n] for n in names], labels, n_resamples, seed)
    ci = [_interval(r) for r in reps]
    ci_images = [_interval(r) for r in _resampled_means([preds[n] for n in names], labels, n_resamples, seed,
                                                        seeds=False)[1]]
    eligible = [i for i, n in enumerate(names) if candidates is None or n in candidates]
    best = max(eligible, key=lambda i: point[i]) if eligible else None  # ties resolve to the first listed
    ref = names.index(reference) if reference is not None else None
    models: dict[str, Any] = {}
    for i, name in enumerate(names):
        entry: dict[str, Any] = {
            "mean": _r(point[i]),
            "ci95": [_r(ci[i][0]), _r(ci[i][1])],
            "ci95_images": [_r(ci_images[i][0]), _r(ci_images[i][1])],
            "seed_sd": None if (sd := seed_sd(preds[name], labels)) is None else _r(sd),
            "num_seeds": int(np.atleast_2d(preds[name]).shape[0]),
            "is_best": i == best,
        }
        if i == best:
            entry["tied_with_best"] = True
        elif best is None:  # nothing eligible to be the best: no comparison against it
            entry["tied_with_best"] = False
        else:
            entry["vs_best"] = _difference(point, reps, i, best)
        if ref is not None and i != ref:
            entry["vs_reference"] = _difference(point, reps, i, ref)
            entry["better_than_reference"] = entry["vs_reference"]["lo"] > 0
            entry["ci_overlaps_reference"] = bool(ci[i][0] <= ci[ref][1] and ci[ref][0] <= ci[i][1])
        models[name] = entry
    family = [name for name in names if "vs_best" in models[name]]
    for name, p_holm in zip(family, holm_adjust([models[n]["vs_best"]["p_value"] for n in family])):
        models[name]["vs_best"]["p_holm"] = _r(p_holm)
        models[name]["tied_with_best"] = bool(p_holm > alpha)
    return {"best": None if best is None else names[best], "reference": reference, "n_resamples": int(n_resamples), "models": models}
