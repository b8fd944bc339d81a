"""Gallery images of the explain stage: input | map | overlay, as one small WebP strip.

The map is scaled per image to [0, 1] (its positive part for signed methods) and coloured
with a perceptually ordered palette (dark → bright), so that a reader compares where a
map points, not its absolute scale, which differs between methods.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PANEL_PX = 96
QUALITY = 82
# anchors of an inferno-like palette (black, purple, red, orange, pale yellow)
_ANCHORS = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float64)


def colormap(values: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] → (H, W, 3) uint8 colours."""
    pos = np.clip(values, 0, 1) * (len(_ANCHORS) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(_ANCHORS) - 2)
    frac = (pos - lo)[..., None]
    return (_ANCHORS[lo] * (1 - frac) + _ANCHORS[lo + 1] * frac).round().astype(np.uint8)


def unit_map(saliency: np.ndarray) -> np.ndarray:
    """The positive part of a map scaled to [0, 1] (all zeros when it has none)."""
    positive = np.clip(np.asarray(saliency, dtype=np.float64), 0, None)
    top = positive.max()
    return positive / top if top > 0 else positive


def strip(image: np.ndarray, saliency: np.ndarray) -> Image.Image:
    """Input (grey, [0, 1]), map and overlay side by side, each PANEL_PX square."""
    grey = np.clip(image, 0, 1)
    grey_rgb = np.repeat((grey * 255).round().astype(np.uint8)[..., None], 3, axis=2)
    heat = unit_map(saliency)
    heat_rgb = colormap(heat)
    alpha = (0.25 + 0.6 * heat)[..., None]
    overlay = (grey_rgb * (1 - alpha) + heat_rgb * alpha).round().astype(np.uint8)
    panels = [Image.fromarray(p).resize((PANEL_PX, PANEL_PX), Image.Resampling.BILINEAR)
              for p in (grey_rgb, heat_rgb, overlay)]
    out = Image.new("RGB", (3 * PANEL_PX + 4, PANEL_PX), (255, 255, 255))
    for i, panel in enumerate(panels):
        out.paste(panel, (i * (PANEL_PX + 2), 0))
    return out


def write_strip(path: Path, image: np.ndarray, saliency: np.ndarray) -> Path:
    """Write the strip as lossy WebP (a few KB); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    strip(image, saliency).save(tmp, format="WEBP", quality=QUALITY, method=6)
    tmp.replace(path)
    return path
