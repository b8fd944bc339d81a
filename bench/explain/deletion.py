"""Deletion and insertion curves with a fill that is not itself a class cue.

Deletion (Samek et al., "Evaluating the Visualization of What a Deep Neural Network Has
Learned", IEEE TNNLS 2017; Petsiuk et al., "RISE", BMVC 2018) removes the pixels a map ranks
highest, 0%, 10%, …, 100% of them, and follows the explained class's probability; insertion
starts from the fully removed image and puts the top-ranked pixels back. A faithful map makes the
deletion curve fall fast and the insertion curve rise fast.

**The fill.** On synthetic data a removed pixel takes the value of the image's **lesion-free
twin** (``bench.explain.lesion_free``): the same brain rendered without its finding, a normal
image of the kind the models were trained on. The usual fills are cues for these models:
on the trained quick checkpoints (seed 0, 180 lesion images), an all-black image is read as an
arteriovenous anomaly (dark flow voids), the highest finding probability 0.43–0.99 on average
over the images; a heavy Gaussian blur of the same image (σ = 0.05–0.2 of the side; Fong &
Vedaldi, ICCV 2017; RISE) as white-matter changes or edema, 0.48–0.91; a flat image at the
image's mean as a finding, 0.37–0.90. The twin is read as normal by every model: 0.16–0.38.
Elsewhere (real data) the fill is the blur (``gaussian_blur``), and the stage says so. Whether a
fully removed image is read as a finding is measured for every fill (``fully_removed``) on every
model, so the choice is checked, not assumed. A twin can still be read as a finding: the model's
own false positive on a normal brain (2–34 of 100 twins on the quick checkpoints). Each
checkpoint's curves are therefore scored only on the lesion images whose fully removed image it
reads as no finding above 0.5 (``bench.explain.removal``): its deletion ends, and its insertion
starts, at the absence of the finding.

**Not confidence.** The raw areas scale with how confident the model was to begin with, so each
map's curves are read against the same image's curves in a random order (seeded per image), and
the differences are divided by the model's mean starting probability of the class:

- ``deletion_vs_random`` = mean(AUC_random − AUC_map) / mean(p₀) (↑; 0 = no better than random);
- ``insertion_vs_random`` = mean(AUC_map − AUC_random) / mean(p₀) (↑);
- ``deletion_auc_normalised`` = mean(AUC_map) / mean(p₀) (↓).

Ties in a map (a flat region, a uniform baseline) are broken in a random order, seeded per image.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DELETION_FRACTIONS = tuple(i / 10 for i in range(11))
FILLS = ("blur", "mean", "black")  # computed from the image alone; "lesion_free" comes from bench.explain.lesion_free
CHUNK = 128  # images per forward pass


def order_seed(seed: int, image_id: int, what: str) -> int:
    """A 63-bit seed of one image's ordering draws (tie-breaks, the random order)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{image_id}:{what}".encode()).digest()[:8], "little") >> 1


def gaussian_blur(images: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """(B, C, H, W) images blurred by a separable Gaussian of ``sigma_px`` pixels, edges reflected."""
    b, c, h, w = images.shape
    radius = max(1, min(int(np.ceil(3 * sigma_px)), h - 1, w - 1))
    xs = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernel = torch.exp(-0.5 * (xs / max(sigma_px, 1e-6)) ** 2)
    kernel = kernel / kernel.sum()
    flat = images.reshape(b * c, 1, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return flat.reshape(b, c, h, w)


def filled(images: torch.Tensor, fill: str, sigma_share: float, black: float) -> torch.Tensor:
    """The fully removed version of each image under ``fill``."""
    if fill == "blur":
        return gaussian_blur(images, sigma_share * images.shape[-1])
    if fill == "mean":
        return images.mean(dim=(2, 3), keepdim=True).expand_as(images).clone()
    if fill == "black":
        return torch.full_like(images, black)
    raise ValueError(f"unknown deletion fill {fill!r}; valid: {', '.join(FILLS)}")


def ranking(saliency: np.ndarray, seed: int) -> np.ndarray:
    """Pixel indices, most relevant first; ties in a random order drawn from ``seed``."""
    values = np.asarray(saliency, dtype=np.float64).ravel()
    tiebreak = np.random.default_rng(seed).permutation(len(values))
    return np.lexsort((tiebreak, -values))


def random_ranking(n_pixels: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n_pixels)


def auc(probabilities: np.ndarray) -> float:
    """Area under probability vs removed fraction (trapezoids over DELETION_FRACTIONS)."""
    xs = np.asarray(DELETION_FRACTIONS)
    ys = np.asarray(probabilities, dtype=np.float64)
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2))


def curve_inputs(image: torch.Tensor, fill: torch.Tensor, order: np.ndarray) -> torch.Tensor:
    """The interior steps of both curves: deletion (top pixels → fill) then insertion (fill, top
    pixels → image), one copy per interior fraction of DELETION_FRACTIONS."""
    steps = DELETION_FRACTIONS[1:-1]
    c = image.shape[0]
    deleted = image.reshape(c, -1).unsqueeze(0).repeat(len(steps), 1, 1)
    inserted = fill.reshape(c, -1).unsqueeze(0).repeat(len(steps), 1, 1)
    image_flat, fill_flat = image.reshape(c, -1), fill.reshape(c, -1)
    for i, fraction in enumerate(steps):
        top = torch.from_numpy(order[:int(round(fraction * len(order)))])
        deleted[i][:, top] = fill_flat[:, top]
        inserted[i][:, top] = image_flat[:, top]
    return torch.cat([deleted, inserted]).view(2 * len(steps), *image.shape)


@torch.no_grad()
def probabilities(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Softmax probabilities, CHUNK images per forward pass."""
    if len(images) == 0:
        return torch.zeros((0, 0))
    return torch.cat([model(images[i:i + CHUNK]).softmax(dim=1) for i in range(0, len(images), CHUNK)])


class Curves:
    """Deletion and insertion of one model on fixed images, their fill and the explained classes."""

    def __init__(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, fills: torch.Tensor) -> None:
        self.model, self.images, self.labels, self.fills = model, images, labels, fills
        rows = torch.arange(len(images))
        self.start = probabilities(model, images)[rows, labels].numpy().astype(np.float64)
        self.end = probabilities(model, fills)[rows, labels].numpy().astype(np.float64)

    def areas(self, orders: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(deletion AUC, insertion AUC) per image for one pixel ranking per image."""
        inner = len(DELETION_FRACTIONS) - 2
        deletion, insertion = np.zeros(len(orders)), np.zeros(len(orders))
        per_chunk = max(1, CHUNK // (2 * inner))
        for lo in range(0, len(orders), per_chunk):
            ids = range(lo, min(lo + per_chunk, len(orders)))
            batch = torch.cat([curve_inputs(self.images[i], self.fills[i], orders[i]) for i in ids])
            probs = probabilities(self.model, batch).view(len(ids), 2 * inner, -1)
            for k, i in enumerate(ids):
                p = probs[k, :, int(self.labels[i])].numpy().astype(np.float64)
                deletion[i] = auc(np.concatenate([[self.start[i]], p[:inner], [self.end[i]]]))
                insertion[i] = auc(np.concatenate([[self.end[i]], p[inner:], [self.start[i]]]))
        return deletion, insertion


def finding_probabilities(model: nn.Module, removed: torch.Tensor, class_names: list[str]) -> np.ndarray:
    """Per image, the highest probability of a finding class (any class but ``normal``)."""
    findings = [i for i, name in enumerate(class_names) if name != "normal"]
    return probabilities(model, removed).numpy().astype(np.float64)[:, findings].max(axis=1)


def fully_removed(model: nn.Module, fills: dict[str, torch.Tensor], class_names: list[str],
                  threshold: float = 0.5) -> dict[str, Any]:
    """Per fill: how the fully removed images are read. A fill **passes** when no fully removed
    image gets a finding class (any class but ``normal``) above ``threshold``, image by image.
    Also recorded: the finding class with the highest mean probability, and the share of images
    whose top class is a finding. A note instead where no class is called normal."""
    if "normal" not in class_names:
        return {"note": "no class is called normal, so no finding can be told from the absence of one"}
    findings = [i for i, name in enumerate(class_names) if name != "normal"]
    out: dict[str, Any] = {"threshold": threshold}
    for fill, removed in fills.items():
        probs = probabilities(model, removed).numpy().astype(np.float64)
        class_means = probs[:, findings].mean(axis=0)
        top = probs[:, findings].max(axis=1)
        predicted = np.bincount(probs.argmax(axis=1), minlength=len(class_names))
        worst = int(np.argmax(class_means))
        out[fill] = {"max_finding_prob": float(class_means[worst]), "max_finding_class": class_names[findings[worst]],
                     "any_image_max_finding_prob": float(top.max()), "mean_max_finding_prob": float(top.mean()),
                     "images_above_threshold": int((top > threshold).sum()), "images": int(len(top)),
                     "read_as_finding": float(1 - predicted[class_names.index("normal")] / len(top)),
                     "predicted": {class_names[c]: int(n) for c, n in enumerate(predicted) if n},
                     "passed": bool(top.max() <= threshold)}
    return out
