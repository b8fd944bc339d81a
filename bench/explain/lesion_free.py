"""Each scored image's lesion-free twin and its finding's evidence mask (synthetic data only).

The synthetic generator draws every image from its own random stream (``bench.data.synthetic``),
so the explain stage can render a test image again together with its **lesion-free twin**: the
same anatomy, pose, bias field and noise, only the lesion painter's changes left out
(``bench.data.samples.render_with_lesion_free``). Two uses:

- the **deletion fill** (``explain.deletion_fill = "lesion_free"``): a removed pixel takes the
  twin's value. Models trained on this data read a heavy blur of a brain as white-matter
  changes or edema and a flat or black image as an arteriovenous anomaly (0.6–1.0 on trained
  checkpoints), so those fills are cues; the twin is a normal brain, read as one;
- the **evidence mask** (``explain.mask = "evidence"``): every pixel the finding changed (the
  image and its twin differ), which holds the lesion's halo and mass effect that the core mask
  of the generator leaves out (41–67% of the changed pixels for some classes).

Each twin is checked: the image rendered again must equal the loaded test image (to 1e-4 after
normalisation); otherwise (or on real data) there are no twins and the stage says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.data.datasets import LoadedDataset
from bench.data.synthetic import GENERATOR_NAME, image_index, render_item

TOLERANCE = 1e-4  # normalised units: the re-rendered image must be the loaded one


@dataclass(frozen=True)
class Twins:
    """Lesion-free twins (normalised like the test images) and evidence masks at the model's size."""

    images: torch.Tensor
    evidence: list[np.ndarray]


def _resized(pixels: np.ndarray, size: int) -> np.ndarray:
    """uint8 pixels as the loader reads them: [0, 1], resized bilinearly (square images)."""
    values = pixels.astype(np.float32) / 255.0
    if values.shape[0] != size:
        values = np.asarray(Image.fromarray(values).resize((size, size), Image.Resampling.BILINEAR))
    return values


def _mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A boolean mask at ``size`` as the stage reads the core masks: bilinear, then ≥ 0.5."""
    values = mask.astype(np.float32)
    return np.asarray(Image.fromarray(values).resize((size, size), Image.Resampling.BILINEAR)) >= 0.5


def twins(data: LoadedDataset, indices: list[int], size: int) -> tuple[Twins | None, str | None]:
    """The twins of test images ``indices``, or (None, why not)."""
    try:
        info = json.loads((Path(data.root) / "dataset.json").read_text())
    except (OSError, ValueError, TypeError):
        info = None
    if not info or (info.get("generator") or {}).get("name") != GENERATOR_NAME:
        return None, "not a dataset of the synthetic generator, so no image can be rendered without its finding"
    test = data.splits["test"]
    channels = test.images.shape[1]
    frees, evidence = [], []
    for i in indices:
        path = Path(test.paths[i])
        image, _, clean = render_item(int(info["seed"]), image_index(path), path.parent.name, int(info["size"]))
        again = (_resized(image, size) - data.mean) / data.std
        if not np.allclose(again, test.images[i, 0].numpy(), atol=TOLERANCE):
            return None, f"test image {i} ({path.name}) does not render again to the loaded pixels"
        free = (_resized(clean, size) - data.mean) / data.std
        frees.append(torch.from_numpy(np.asarray(free, dtype=np.float32)).unsqueeze(0).expand(channels, -1, -1))
        evidence.append(_mask(image != clean, size))
    if not frees:
        return None, "no images"
    return Twins(torch.stack(frees).contiguous(), evidence), None
