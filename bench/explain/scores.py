"""Faithfulness scores of one map against a lesion mask, and the bootstrap statistics over images.

Numpy only, one image at a time:

- pointing game (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016):
  is the map's maximum inside the mask, dilated by a tolerance?
- relevance mass (Arras et al., "CLEVR-XAI", Information Fusion 2022): the share of positive
  attribution inside the mask;
- relevance rank: the AUROC of attribution as a detector of mask pixels (the rank-based
  counterpart of Arras et al.'s relevance rank accuracy, free of a top-k choice);
- Spearman's rank correlation of two maps (the sanity checks of Adebayo et al., "Sanity Checks
  for Saliency Maps", NeurIPS 2018), optionally inside a region.

Intervals are percentile bootstraps over images (Efron & Tibshirani 1993); comparisons of two
maps or two models on the same images are paired bootstraps of the per-image differences. A NaN
marks an image a score was not taken on (a curve score where the model reads the fully removed
image as a finding): means and intervals leave it out, and paired statistics keep the images
both sides have.
"""

from __future__ import annotations

import numpy as np


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """A boolean mask grown by ``pixels`` in every direction (a square structuring element)."""
    if pixels <= 0:
        return mask.copy()
    padded = np.pad(mask, pixels)
    out = np.zeros_like(mask)
    h, w = mask.shape
    for dy in range(2 * pixels + 1):
        for dx in range(2 * pixels + 1):
            out |= padded[dy:dy + h, dx:dx + w]
    return out


def pointing_hit(saliency: np.ndarray, mask: np.ndarray, tolerance: int) -> float:
    """1 when the map's maximum falls inside the mask dilated by ``tolerance`` pixels.

    Where several pixels share the maximum (a flat map, a plateau of an upsampled coarse map)
    the hit is the share of them inside: the expected hit of a random pick among them, so a
    flat map scores the random baseline instead of whatever its first pixel happens to be.
    """
    peaks = saliency == saliency.max()
    return float(dilate(mask, tolerance)[peaks].mean())


def relevance_mass(saliency: np.ndarray, mask: np.ndarray) -> float | None:
    """The share of positive attribution inside the mask (None when the map has none)."""
    positive = np.clip(saliency, 0, None)
    total = positive.sum()
    return float(positive[mask].sum() / total) if total > 0 else None


def relevance_rank(saliency: np.ndarray, mask: np.ndarray) -> float | None:
    """AUROC of attribution as a score for "inside the mask" (ties share ranks); None without both sides."""
    inside = mask.ravel()
    n_in, n_out = int(inside.sum()), int((~inside).sum())
    if n_in == 0 or n_out == 0:
        return None
    ranks = ranks_of(saliency.ravel()) + 1  # 1-based, ties sharing their mean rank
    return float((ranks[inside].sum() - n_in * (n_in + 1) / 2) / (n_in * n_out))


def spearman(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float | None:
    """Spearman's rank correlation of two maps, over the pixels of ``where`` if given (None when
    either is constant there)."""
    a, b = np.ravel(a), np.ravel(b)
    if where is not None:
        a, b = a[np.ravel(where)], b[np.ravel(where)]
    if len(a) < 2:
        return None
    ra, rb = ranks_of(a), ranks_of(b)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def ranks_of(values: np.ndarray) -> np.ndarray:
    """0-based ranks, ties sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(first + (counts - 1) / 2.0, counts)
    return ranks


def _resample(n: int, n_resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def bootstrap_mean(values: np.ndarray, n_resamples: int, seed: int) -> tuple[float, float, float]:
    """(mean, 2.5th, 97.5th percentile) of the mean over a bootstrap of the values (NaN left out;
    all NaN when none is left)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    means = values[_resample(len(values), n_resamples, seed)].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(values.mean()), float(lo), float(hi)


def bootstrap_ratio(numerator: np.ndarray, denominator: np.ndarray, n_resamples: int, seed: int
                    ) -> tuple[float, float, float]:
    """(ratio, 2.5th, 97.5th percentile) of mean(numerator) / mean(denominator), images resampled
    together: a ratio of means, which a few images with a tiny denominator cannot blow up."""
    num, den = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    both = ~(np.isnan(num) | np.isnan(den))
    num, den = num[both], den[both]
    if len(num) == 0:
        return float("nan"), float("nan"), float("nan")
    idx = _resample(len(num), n_resamples, seed)
    ratios = num[idx].mean(axis=1) / np.maximum(den[idx].mean(axis=1), 1e-12)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(num.mean() / max(den.mean(), 1e-12)), float(lo), float(hi)


def paired_difference(a: np.ndarray, b: np.ndarray, n_resamples: int, seed: int) -> tuple[float, float, float]:
    """(mean, 2.5th, 97.5th percentile) of mean(a − b) over a paired bootstrap of the same images."""
    return bootstrap_mean(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64), n_resamples, seed)


def paired_tied(a: np.ndarray, b: np.ndarray, n_resamples: int, seed: int) -> bool:
    """Whether the 95% interval of a paired bootstrap of mean(a − b) over the same images contains
    zero (or no image has both: nothing tells them apart)."""
    _, lo, hi = paired_difference(a, b, n_resamples, seed)
    return bool(np.isnan(lo) or lo <= 0.0 <= hi)


def interval(values: np.ndarray | list[float | None], n_resamples: int, seed: int) -> dict[str, object]:
    """``{"value", "ci95", "n"}`` of the mean of per-image values; ``n`` counts the images scored
    (None or NaN: not scored), and the value and interval are None when there are none."""
    values = np.asarray(values, dtype=np.float64)
    mean, lo, hi = bootstrap_mean(values, n_resamples, seed)
    n = int((~np.isnan(values)).sum())
    return {"value": mean if n else None, "ci95": [lo, hi] if n else [None, None], "n": n}
