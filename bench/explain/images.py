"""Gallery images of the explain stage: input | map | overlay, as one small WebP strip.

An attribution map is scaled per image to [0, 1] (its positive part for signed methods) and
coloured with a perceptually ordered palette (dark → bright), so that a reader compares where a
map points, not its absolute scale, which differs between methods. A native attention map is a
distribution over the image, so it is drawn on an **absolute** scale instead, in multiples of the
uniform map (``absolute_strip``: 0 to ``NATIVE_SCALE_MAX``× uniform) with a colour bar: a flat
map is one even colour, not a bright field.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PANEL_PX = 96
BAR_PX = 34  # the colour bar panel of absolute strips, labels included
NATIVE_SCALE_MAX = 4.0  # native maps: the colour scale ends at 4x the uniform map
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


def strip(image: np.ndarray, saliency: np.ndarray, heat: np.ndarray | None = None) -> Image.Image:
    """Input (grey, [0, 1]), map and overlay side by side, each PANEL_PX square (``heat``: the map
    already on [0, 1]; by default ``unit_map(saliency)``)."""
    grey = np.clip(image, 0, 1)
    grey_rgb = np.repeat((grey * 255).round().astype(np.uint8)[..., None], 3, axis=2)
    heat = unit_map(saliency) if heat is None else np.clip(heat, 0, 1)
    heat_rgb = colormap(heat)
    alpha = (0.25 + 0.6 * heat)[..., None]
    overlay = (grey_rgb * (1 - alpha) + heat_rgb * alpha).round().astype(np.uint8)
    panels = [Image.fromarray(p).resize((PANEL_PX, PANEL_PX), Image.Resampling.BILINEAR)
              for p in (grey_rgb, heat_rgb, overlay)]
    out = Image.new("RGB", (3 * PANEL_PX + 4, PANEL_PX), (255, 255, 255))
    for i, panel in enumerate(panels):
        out.paste(panel, (i * (PANEL_PX + 2), 0))
    return out


def absolute_strip(image: np.ndarray, weights: np.ndarray, top: float = NATIVE_SCALE_MAX) -> Image.Image:
    """The strip of a map read as a distribution: each pixel as a multiple of the uniform map
    (its value over the map's mean), coloured from 0 to ``top`` times uniform, with a colour bar."""
    values = np.clip(np.asarray(weights, dtype=np.float64), 0, None)
    mean = values.mean()
    relative = values / mean if mean > 0 else values
    base = strip(image, weights, heat=relative / top)
    out = Image.new("RGB", (base.width + 2 + BAR_PX, PANEL_PX), (255, 255, 255))
    out.paste(base, (0, 0))
    ramp = colormap(np.linspace(1, 0, PANEL_PX - 12)[:, None].repeat(8, axis=1))
    out.paste(Image.fromarray(ramp), (base.width + 2, 6))
    draw, font = ImageDraw.Draw(out), ImageFont.load_default()
    for value, label in ((top, f"{top:g}x"), (1.0, "1x"), (0.0, "0")):
        y = 6 + round((1 - value / top) * (PANEL_PX - 13))
        draw.text((base.width + 12, max(0, min(PANEL_PX - 11, y - 5))), label, fill=(0, 0, 0), font=font)
    return out


def write_strip(path: Path, image: np.ndarray, saliency: np.ndarray, absolute: bool = False) -> Path:
    """Write the strip (``absolute``: on the uniform-relative scale, with a colour bar) as lossy
    WebP (a few KB); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    picture = absolute_strip(image, saliency) if absolute else strip(image, saliency)
    picture.save(tmp, format="WEBP", quality=QUALITY, method=6)
    tmp.replace(path)
    return path
