"""Statistics of a robustness study: each model's drop from clean under a shift, with a paired
interval, and a relative robustness score compared across models (pure numpy).

A model's S seeds each predicted the same N test images clean and under every (shift,
severity) condition. Every interval is the two-level bootstrap of ``bench.core.stats``: a
resample draws the images once (shared by every model and condition, so comparisons are
paired on images) and each model's seeds with replacement (shared by that model's
conditions, so its drop from clean is paired on seeds too), with the seed draw stretched by
sqrt(S/(S-1)) about the all-seed mean so that few seeds do not shrink their spread.

The relative robustness score of a model is the share of its clean balanced accuracy above
chance (1/K for K classes, what any input-blind classifier scores) that it keeps under shift,
averaged over every condition: (shifted - chance) / (clean - chance), seed means throughout.
1 means no loss, 0 a fall to chance. Measured from chance, a model that learned nothing cannot
look robust, as it would with the plain ratio shifted / clean. The most robust model
is the one with the highest score; every other model's difference from it gets a bootstrap
p-value, and Holm's method over all those comparisons decides which are tied with it at 5%,
as the leaderboard decides ties with the best.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from bench.core.stats import _BLOCK_CELLS, _interval, _p_value, _r, _rngs, holm_adjust, resample_counts, seed_stretch
from bench.core.stats import weighted_balanced_accuracy

CLEAN = "clean"
SCORE = "mean over conditions of (shifted - chance) / (clean - chance), seed means; none where clean is not above chance"


def _stacked(conditions: Mapping[str, np.ndarray], labels: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Condition names (clean first) and a (K, S, N) array of correctness."""
    if CLEAN not in conditions:
        raise ValueError(f"the predictions need a {CLEAN!r} condition, got {sorted(conditions)}")
    names = [CLEAN] + sorted(k for k in conditions if k != CLEAN)
    arrays = [np.atleast_2d(np.asarray(conditions[k])) for k in names]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].shape[1] != len(labels):
        raise ValueError(f"every condition needs the same (seeds, {len(labels)} images) predictions, got {shapes}")
    return names, np.stack([a == labels for a in arrays])


def _retained(accuracy: np.ndarray, chance: float) -> np.ndarray:
    """(K, B) seed-mean accuracies, clean first → (B,) mean share of clean's margin over chance kept."""
    margin = np.maximum(accuracy[:1] - chance, 1e-9)
    return ((accuracy[1:] - chance) / margin).mean(axis=0)


def robustness(preds: Mapping[str, Mapping[str, np.ndarray]], labels: np.ndarray, n_resamples: int = 1000,
               seed: int = 0, alpha: float = 0.05) -> dict[str, Any]:
    """Per model: balanced accuracy per condition, the drop from clean with its paired 95%
    interval, and the relative robustness score with its interval and its comparison with the
    most robust model (Holm-adjusted; ``tied_with_most_robust``).

    ``preds`` maps model → condition → (S, N) predicted class ids; every model has the condition
    ``"clean"`` and the same other conditions. See the module docstring.
    """
    labels = np.asarray(labels, dtype=np.int64)
    models = list(preds)
    if not models:
        raise ValueError("robustness needs at least one model")
    stacked = {m: _stacked(preds[m], labels) for m in models}
    conditions = stacked[models[0]][0]
    if any(names != conditions for names, _ in stacked.values()):
        raise ValueError("every model needs the same conditions")
    n = len(labels)
    image_rng, seed_rngs = _rngs(seed, len(models))
    unit = np.ones((1, n))
    # point values: (K, S) balanced accuracy per condition and seed
    point = {m: np.stack([weighted_balanced_accuracy(c, labels, unit)[0] for c in stacked[m][1]]) for m in models}
    seed_weights = {m: resample_counts(point[m].shape[1], n_resamples, r) / point[m].shape[1]
                    for m, r in zip(models, seed_rngs)}
    reps = {m: np.empty((len(conditions), n_resamples)) for m in models}  # seed-mean accuracy per condition
    block = max(1, _BLOCK_CELLS // n)
    for start in range(0, n_resamples, block):
        stop = min(start + block, n_resamples)
        w = resample_counts(n, stop - start, image_rng)
        for m in models:
            per_seed = np.stack([weighted_balanced_accuracy(c, labels, w) for c in stacked[m][1]])  # (K, b, S)
            all_seeds = per_seed.mean(axis=2)
            drawn = np.einsum("kbs,bs->kb", per_seed, seed_weights[m][start:stop])
            reps[m][:, start:stop] = all_seeds + seed_stretch(per_seed.shape[2]) * (drawn - all_seeds)
    chance = 1.0 / len(np.unique(labels))
    # a score is defined only where clean accuracy is resolved above chance: near chance the
    # margin in the denominator is noise, and a model that learned nothing has nothing to keep
    scored = [m for m in models if _interval(reps[m][0])[0] > chance]
    ratio_reps = {m: _retained(reps[m], chance) for m in scored}
    scores = {m: float(_retained(point[m].mean(axis=1)[:, None], chance)[0]) for m in scored}
    most = max(scored, key=lambda m: scores[m]) if scored else None
    result: dict[str, Any] = {}
    for m in models:
        acc = point[m].mean(axis=1)
        entry: dict[str, Any] = {"num_seeds": int(point[m].shape[1]), "conditions": {}}
        for k, name in enumerate(conditions):
            cell: dict[str, Any] = {"balanced_accuracy": _r(acc[k]),
                                    "ci95": [_r(v) for v in _interval(reps[m][k])]}
            if name != CLEAN:
                drops = reps[m][k] - reps[m][0]
                lo, hi = _interval(drops)
                cell["drop"] = {"mean": _r(acc[k] - acc[0]), "lo": _r(lo), "hi": _r(hi),
                                "resolved": bool(hi < 0 or lo > 0)}
            entry["conditions"][name] = cell
        if m not in scores:
            entry["robustness"] = {"score": None, "ci95": None, "above_chance": False, "is_most_robust": False,
                                   "tied_with_most_robust": None}
            result[m] = entry
            continue
        entry["robustness"] = {"score": _r(scores[m]), "ci95": [_r(v) for v in _interval(ratio_reps[m])],
                               "above_chance": True, "is_most_robust": m == most}
        if m != most:
            diffs = ratio_reps[m] - ratio_reps[most]
            lo, hi = _interval(diffs)
            entry["robustness"]["vs_most_robust"] = {"diff": _r(scores[m] - scores[most]), "lo": _r(lo),
                                                     "hi": _r(hi), "p_value": _r(_p_value(diffs))}
        result[m] = entry
    family = [m for m in scored if m != most]
    for m, p_holm in zip(family, holm_adjust([result[m]["robustness"]["vs_most_robust"]["p_value"] for m in family])):
        result[m]["robustness"]["vs_most_robust"]["p_holm"] = _r(p_holm)
        result[m]["robustness"]["tied_with_most_robust"] = bool(p_holm > alpha)
    if most is not None:
        result[most]["robustness"]["tied_with_most_robust"] = True
    return {"most_robust": most, "conditions": conditions, "n_resamples": int(n_resamples), "alpha": alpha,
            "chance": _r(chance), "score": SCORE,
            "models": result}


def condition_name(kind: str, severity: int) -> str:
    """The key of one shifted condition: ``"<kind>@<severity>"``."""
    return f"{kind}@{int(severity)}"


def split_condition(name: str) -> tuple[str, int]:
    kind, _, severity = name.partition("@")
    return kind, int(severity)


def mean_drop_by_severity(entry: Mapping[str, Any], kinds: Sequence[str], severities: Sequence[int]) -> list[float]:
    """A model's mean balanced accuracy drop at each severity, averaged over ``kinds``."""
    conditions = entry["conditions"]
    return [float(np.mean([conditions[condition_name(k, s)]["drop"]["mean"] for k in kinds])) for s in severities]
