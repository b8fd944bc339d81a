"""Baselines that every faithfulness score is read against, on the same images.

A score means something only beside what no model could fail to reach. Pointing at the
brightest pixel of the input, with no model at all, already finds many lesions of a synthetic
brain: so every model–method pair is compared with **model-free maps** of each image
(Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018, show that edge detectors
alone resemble many saliency maps):

- ``intensity``: the input itself (grey, in [0, 1]);
- ``uniform_foreground``: 1 on the head's foreground, 0 outside (``foreground``);
- ``edges``: the Sobel gradient magnitude of the input;

and the **random point**, whose pointing game is exact: the share of the dilated mask in the
whole image, and the share of the foreground inside the dilated mask (a point dropped inside
the head, where every lesion is). The randomised-weights model's maps are the other baseline
(``bench.explain.sanity``). ``grid_ceiling_map`` is the best map a grid of a given size can draw:
the mask averaged into its cells and upsampled the way Grad-CAM's map is.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bench.explain.scores import dilate

MODEL_FREE = ("intensity", "uniform_foreground", "edges")
FOREGROUND_SHARE = 0.1  # a pixel is foreground above this share of the (lightly smoothed) image's maximum
MODEL_FREE_LABELS = {"intensity": "input intensity", "uniform_foreground": "uniform over the head",
                     "edges": "edge map (Sobel)"}


def _shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The image moved by (dy, dx), edges replicated."""
    h, w = image.shape
    padded = np.pad(image, 1, mode="edge")
    return padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every region it encloses (not 4-connected to the border) filled."""
    free = ~mask
    outside = np.zeros_like(mask)
    outside[0, :], outside[-1, :], outside[:, 0], outside[:, -1] = free[0, :], free[-1, :], free[:, 0], free[:, -1]
    while True:
        grown = outside.copy()
        grown[1:, :] |= outside[:-1, :]
        grown[:-1, :] |= outside[1:, :]
        grown[:, 1:] |= outside[:, :-1]
        grown[:, :-1] |= outside[:, 1:]
        grown &= free
        if np.array_equal(grown, outside):
            return ~outside
        outside = grown


def foreground(image: np.ndarray) -> np.ndarray:
    """The head: pixels of the 3×3-smoothed image above FOREGROUND_SHARE of its maximum, holes
    (the dark skull, ventricles and dark lesions it encloses) filled. All True for a blank image."""
    smooth = sum(_shifted(image, dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9.0
    top = smooth.max()
    if top <= 0:
        return np.ones_like(image, dtype=bool)
    mask = fill_holes(smooth > FOREGROUND_SHARE * top)
    return mask if mask.any() else np.ones_like(image, dtype=bool)


def sobel(image: np.ndarray) -> np.ndarray:
    """Gradient magnitude of the image with Sobel's 3×3 kernels (edges replicated)."""
    gx = (_shifted(image, -1, 1) + 2 * _shifted(image, 0, 1) + _shifted(image, 1, 1)
          - _shifted(image, -1, -1) - 2 * _shifted(image, 0, -1) - _shifted(image, 1, -1))
    gy = (_shifted(image, 1, -1) + 2 * _shifted(image, 1, 0) + _shifted(image, 1, 1)
          - _shifted(image, -1, -1) - 2 * _shifted(image, -1, 0) - _shifted(image, -1, 1))
    return np.hypot(gx, gy)


def model_free_maps(image: np.ndarray, head: np.ndarray) -> dict[str, np.ndarray]:
    """The model-free maps of one grey image in [0, 1] and its foreground."""
    image = np.asarray(image, dtype=np.float64)
    return {"intensity": image, "uniform_foreground": head.astype(np.float64), "edges": sobel(image)}


def random_point_hits(mask: np.ndarray, head: np.ndarray, tolerance: int) -> tuple[float, float]:
    """Expected pointing hit of a uniformly random point: (in the whole image, inside the foreground),
    both against the mask dilated by ``tolerance``, the one the pointing game scores."""
    target = dilate(mask, tolerance)
    return float(target.mean()), float(target[head].mean()) if head.any() else float(target.mean())


def grid_ceiling_map(mask: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The best map at ``grid`` resolution: the mask's share of each cell, upsampled bilinearly to
    the mask's size as Grad-CAM's map is (its pointing game is the ceiling of any map at that grid)."""
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    cells = F.adaptive_avg_pool2d(t, grid)
    return F.interpolate(cells, size=mask.shape, mode="bilinear", align_corners=False)[0, 0].numpy()
