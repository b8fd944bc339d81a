"""Model-free baselines: the head's foreground, the edge map, the random point, Grad-CAM's ceiling."""

from __future__ import annotations

import numpy as np
import pytest

from bench.explain.baselines import fill_holes, foreground, grid_ceiling_map, model_free_maps, random_point_hits, sobel
from bench.explain.scores import pointing_hit


def _head() -> np.ndarray:
    """A bright ring (scalp) around a dark band (skull) and a grey disc (brain) on black."""
    yy, xx = np.mgrid[:32, :32]
    r = np.hypot(yy - 15.5, xx - 15.5)
    image = np.where(r < 14, 0.6, 0.0)
    image[(r >= 11) & (r < 12)] = 0.03  # the skull: dark, enclosed
    return image


def test_foreground_is_the_head_with_its_dark_parts_filled():
    head = foreground(_head())
    r = np.hypot(*(np.mgrid[:32, :32] - 15.5))
    assert head[r < 12.5].all() and not head[r > 16].any()  # the 3×3 smoothing adds a pixel at most
    ring = np.zeros((5, 5), dtype=bool)
    ring[1:4, 1:4] = True
    ring[2, 2] = False
    assert fill_holes(ring)[2, 2] and not fill_holes(ring)[0, 0]
    assert foreground(np.zeros((4, 4))).all()  # a blank image: everything, not nothing


def test_model_free_maps_and_edges():
    image = np.zeros((8, 8))
    image[:, 4:] = 1.0
    edges = sobel(image)
    assert edges[:, 3:5].min() > 0 and edges[:, :2].max() == 0 and edges[:, 6:].max() == 0
    maps = model_free_maps(image, image > 0)
    assert set(maps) == {"intensity", "uniform_foreground", "edges"}
    assert np.array_equal(maps["uniform_foreground"], (image > 0).astype(float))


def test_random_point_inside_the_head_beats_the_whole_image_and_matches_a_uniform_head_map():
    head = np.zeros((10, 10), dtype=bool)
    head[:5] = True
    mask = np.zeros((10, 10), dtype=bool)
    mask[1, 1] = True
    whole, inside = random_point_hits(mask, head, tolerance=1)
    assert whole == pytest.approx(9 / 100) and inside == pytest.approx(9 / 50)
    assert pointing_hit(head.astype(float), mask, 1) == pytest.approx(inside)


def test_grid_ceiling_of_a_small_lesion_is_low_at_4x4_and_high_at_8x8():
    rng = np.random.default_rng(0)
    hits = {4: [], 8: []}
    for _ in range(40):
        mask = np.zeros((64, 64), dtype=bool)
        y, x = rng.integers(4, 57, size=2)
        mask[y - 3:y + 4, x - 3:x + 4] = True  # about 1.2% of the image
        for grid in hits:
            hits[grid].append(pointing_hit(grid_ceiling_map(mask, (grid, grid)), mask, 2))
    assert np.mean(hits[8]) > 0.9 > np.mean(hits[4])
