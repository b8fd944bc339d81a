"""Deterministic stratified train/val/test splits."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence

import numpy as np

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)


def _allocate(n: int, fractions: Sequence[float]) -> list[int]:
    """Split ``n`` items by ``fractions`` (largest remainder), at least one per split."""
    raw = np.asarray(fractions, dtype=float) * n
    counts = np.maximum(np.floor(raw).astype(int), 1)
    while counts.sum() < n:  # hand out what flooring left over, biggest remainder first
        counts[int(np.argmax(raw - counts))] += 1
    while counts.sum() > n:  # the minimum of one per split overshot: take from the biggest
        counts[int(np.argmax(counts))] -= 1
    return counts.tolist()


def stratified_split(
    labels: Sequence[Hashable],
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> list[str]:
    """Assign each item to "train", "val" or "test", class by class.

    Deterministic for a given ``seed``. Every class with at least three items gets at
    least one item in each split; smaller classes go to train only (with a warning).
    """
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    result = [""] * len(labels)
    by_class: dict[Hashable, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    for label in sorted(by_class, key=str):
        indices = rng.permutation(by_class[label])
        if len(indices) < 3:
            log.warning("class %r has only %d item(s); all go to the train split", label, len(indices))
            counts = [len(indices), 0, 0]
        else:
            counts = _allocate(len(indices), fractions)
        bounds = np.cumsum([0, *counts])
        for split, lo, hi in zip(SPLITS, bounds[:-1], bounds[1:]):
            for index in indices[lo:hi]:
                result[int(index)] = split
    return result
