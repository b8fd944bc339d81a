"""Faithfulness scores and bootstrap statistics: hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest

from bench.explain.scores import (
    bootstrap_ratio, dilate, interval, paired_difference, paired_tied, pointing_hit, relevance_mass, relevance_rank,
    spearman,
)


def _mask() -> np.ndarray:
    mask = np.zeros((8, 8), dtype=bool)
    mask[2:4, 2:4] = True
    return mask


def test_pointing_game_with_and_without_tolerance():
    saliency = np.zeros((8, 8))
    saliency[3, 3] = 1.0
    assert pointing_hit(saliency, _mask(), tolerance=0) == 1.0
    saliency = np.zeros((8, 8))
    saliency[5, 5] = 1.0  # two pixels from the mask's corner
    assert pointing_hit(saliency, _mask(), tolerance=1) == 0.0
    assert pointing_hit(saliency, _mask(), tolerance=2) == 1.0
    assert dilate(_mask(), 1).sum() == 16


def test_pointing_game_shares_a_tied_maximum():
    flat = np.zeros((8, 8))
    assert pointing_hit(flat, _mask(), tolerance=0) == 4 / 64  # the random baseline, not pixel (0, 0)
    plateau = np.zeros((8, 8))
    plateau[3, 2:6] = 1.0  # four tied peaks, two of them in the mask
    assert pointing_hit(plateau, _mask(), tolerance=0) == 0.5
    plateau[0, 0] = 1.0
    assert pointing_hit(plateau, _mask(), tolerance=0) == 0.4


def test_relevance_mass_and_rank():
    saliency = np.where(_mask(), 3.0, 0.0)
    saliency[0, 0] = 1.0
    saliency[7, 7] = -5.0  # negative attribution is not relevance
    assert relevance_mass(saliency, _mask()) == pytest.approx(12 / 13)
    assert relevance_mass(np.zeros((8, 8)), _mask()) is None
    assert relevance_rank(np.where(_mask(), 1.0, 0.0), _mask()) == 1.0
    assert relevance_rank(np.where(_mask(), 0.0, 1.0), _mask()) == 0.0
    assert relevance_rank(np.ones((8, 8)), _mask()) == 0.5  # ties share ranks
    assert relevance_rank(np.ones((8, 8)), np.zeros((8, 8), dtype=bool)) is None


def test_spearman_of_maps_whole_and_inside_a_region():
    a = np.arange(16, dtype=float).reshape(4, 4)
    assert spearman(a, a * 2 + 1) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, np.ones((4, 4))) is None
    b = a.copy()
    b[2:] = -b[2:]  # agrees on the top half only
    top = np.zeros((4, 4), dtype=bool)
    top[:2] = True
    assert spearman(a, b, top) == pytest.approx(1.0) and spearman(a, b) < 0.5


def test_intervals_ratios_and_paired_differences():
    values = np.array([0.0, 1.0] * 50)
    stats = interval(values, 500, 0)
    assert stats["value"] == 0.5 and stats["n"] == 100 and stats["ci95"][0] < 0.5 < stats["ci95"][1]
    ratio, lo, hi = bootstrap_ratio(np.full(10, 0.2), np.full(10, 0.4), 200, 0)
    assert ratio == pytest.approx(0.5) and lo == pytest.approx(0.5) and hi == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    a = rng.random(200)
    mean, lo, hi = paired_difference(a + 0.1, a, 500, 0)
    assert mean == pytest.approx(0.1) and lo > 0  # a constant gain on every image is certain
    assert paired_tied(a, a[::-1], 500, 0) and not paired_tied(a + 0.1, a, 500, 0)
