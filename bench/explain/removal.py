"""What a removed pixel becomes, what the maps are scored against, and which images each model's
deletion and insertion curves are scored on.

``prepare_removal`` builds, for the scored lesion images, every fill's fully removed image (the
lesion-free twin where the data allows, else a blur; ``bench.explain.deletion``) and the masks
(evidence or core; ``bench.explain.lesion_free``).

``clean_references`` says, per image, whether a model reads its fully removed image (under the
fill deletion uses) as no finding: no class but ``normal`` above THRESHOLD. A twin is a normal
brain, but a model can still call it a finding (its own false positive on a normal brain); on
such an image the deletion curve would end, and the insertion curve start, at a finding, and
would partly measure that. So each checkpoint's curves are scored only on the images it reads
clean (the others are NaN in the per-image values, ``None`` in the results), and comparisons
between checkpoints pair the images both read clean. The location scores use every image.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bench.core.config import SuiteConfig
from bench.data.datasets import LoadedDataset
from bench.explain.deletion import FILLS, filled, finding_probabilities
from bench.explain.lesion_free import twins

log = logging.getLogger(__name__)

THRESHOLD = 0.5  # a finding class above this on a fully removed image: the image has no clean reference


@dataclass(frozen=True)
class Removal:
    """What the stage scores against and removes with, the same for every model: the masks of the
    lesion images (``mask``: evidence or core), the fully removed images of the checked images for
    every fill, and the fill deletion uses (``fill``, with ``note`` where it is not the one asked for)."""

    checked: list[int]
    masks: dict[int, np.ndarray]
    mask: str
    fills: dict[str, torch.Tensor]
    fill: str
    note: str | None


def prepare_removal(data: LoadedDataset, suite: SuiteConfig, chosen: dict[str, list[int]],
                    core: dict[int, np.ndarray]) -> Removal:
    """Lesion-free twins and evidence masks where the data allows (``bench.explain.lesion_free``)."""
    cfg, test = suite.explain, data.splits["test"]
    checked = chosen["lesion"] or chosen["samples"] + chosen["misclassified"]
    baseline = (0.0 - data.mean) / data.std
    images = test.images[checked]
    fills = {fill: filled(images, fill, cfg.deletion_blur_sigma, black=baseline) for fill in FILLS}
    pairs, why = twins(data, checked, suite.data.image_size) if checked else (None, "no images")
    if pairs is not None:
        fills = {"lesion_free": pairs.images, **fills}
    fill, note = cfg.deletion_fill, None
    if fill not in fills:
        fill, note = "blur", f"no lesion-free images ({why}): deletion fills with a blur of the image instead"
    masks, mask = core, "core"
    if cfg.mask == "evidence" and pairs is not None and chosen["lesion"]:
        evidence = dict(zip(checked, pairs.evidence))
        masks, mask = {i: evidence[i] if evidence[i].any() else core[i] for i in chosen["lesion"]}, "evidence"
    elif cfg.mask == "evidence" and chosen["lesion"]:
        note = (note + "; " if note else "") + f"scored against the core lesion masks: no evidence masks ({why})"
    if note:
        log.warning("%s", note)
    return Removal(checked, masks, mask, fills, fill, note)


def clean_references(model: nn.Module, removal: Removal, class_names: list[str]) -> np.ndarray:
    """Per checked image, whether ``model`` reads its fully removed image as no finding (every
    class but ``normal`` at most THRESHOLD). All True where no class is called normal: nothing
    can then be told from the absence of a finding."""
    if "normal" not in class_names:
        return np.ones(len(removal.checked), dtype=bool)
    return finding_probabilities(model, removal.fills[removal.fill], class_names) <= THRESHOLD
