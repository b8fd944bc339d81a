"""What a removed pixel becomes, what the maps are scored against, and which images are scored.

``prepare_removal`` builds, for the drawn lesion images, every fill's fully removed image (the
lesion-free twin where the data allows, else a blur; ``bench.explain.deletion``) and the masks
(evidence or core; ``bench.explain.lesion_free``).

``clean_references`` then keeps only the images whose fully removed image (under the fill
deletion uses) **no explained checkpoint** reads as a finding above the threshold. A twin is a
normal brain, but a model can still call it a finding (its own false positive); on such an image
deletion would end, and insertion start, at a finding, and the curve would partly measure that.
The images are drawn in a seeded order and the first ``faithfulness_images`` that pass are kept,
the same for every model, so every paired comparison stays on the same images. How many were
left out, and by which checkpoint, is recorded (``reference``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

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
    every fill, and the fill deletion uses (``fill``, with ``note`` where it is not the one asked for).
    ``reference``: how the scored images were kept (``clean_references``)."""

    checked: list[int]
    masks: dict[int, np.ndarray]
    mask: str
    fills: dict[str, torch.Tensor]
    fill: str
    note: str | None
    reference: dict[str, Any] = field(default_factory=dict)

    def restricted(self, kept: list[int], reference: dict[str, Any]) -> "Removal":
        """The same removal on the images ``kept`` (a subset of ``checked``), in that order."""
        rows = [self.checked.index(i) for i in kept]
        return replace(self, checked=list(kept), masks={i: self.masks[i] for i in kept if i in self.masks},
                       fills={name: images[rows] for name, images in self.fills.items()}, reference=reference)


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


def clean_references(removal: Removal, readers: Iterable[tuple[str, nn.Module]], class_names: list[str],
                     wanted: int) -> Removal:
    """Keep the first ``wanted`` drawn images whose fully removed image no reader (``(label,
    model)``, every explained checkpoint) reads as a finding above THRESHOLD; see the module
    docstring. Without a class called normal nothing can be told apart, and all images stay."""
    drawn = removal.checked
    if "normal" not in class_names:
        return removal.restricted(drawn[:wanted], {"rule": None, "drawn": len(drawn), "kept": min(wanted, len(drawn)),
                                                   "note": "no class is called normal"})
    clean = np.ones(len(drawn), dtype=bool)
    excluded_by: dict[str, int] = {}
    for label, model in readers:
        reads_clean = finding_probabilities(model, removal.fills[removal.fill], class_names) <= THRESHOLD
        excluded_by[label] = int((~reads_clean).sum())
        clean &= reads_clean
    kept = [i for i, ok in zip(drawn, clean) if ok][:wanted]
    reference = {
        "rule": f"no explained checkpoint reads the fully removed image ({removal.fill}) as a finding "
                f"above {THRESHOLD}",
        "threshold": THRESHOLD, "drawn": len(drawn), "clean": int(clean.sum()), "kept": len(kept),
        "excluded_by": excluded_by,
    }
    if len(kept) < wanted:
        log.warning("only %d of the %d drawn lesion images have a fully removed image no model reads as a "
                    "finding (%d wanted)", len(kept), len(drawn), wanted)
    return removal.restricted(sorted(kept), reference)
