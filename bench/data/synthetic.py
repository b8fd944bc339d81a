"""Synthetic brain MRI: ten findings on one axial, FLAIR-like anatomy, as a RadImageNet folder.

Each image is rendered analytically in an anatomical frame (brain-centred, anterior up),
so pose costs nothing: the sampling grid is rotated and scaled, not the image. Shared
anatomy: scalp, skull, subarachnoid CSF, a folded grey-matter rim with sulci, white
matter, and butterfly-shaped lateral ventricles. Each class adds one lesion that follows
an anatomical rule of location, shape and intensity (see the ``_lesion_*`` functions).
Nuisances: pose, brain shape and size, ventricle size, bias field, blur, Rician noise,
gamma and gain. Every image draws from its own RNG, seeded by (seed, index), so a dataset
is a pure function of (num_images, size, seed), down to the PNG bytes.
"""

from __future__ import annotations

import csv
import fcntl
import json
import logging
import math
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
from PIL import Image
from tqdm import tqdm

from bench.data.samples import write_sample_grid  # noqa: F401 - re-exported
from bench.data.splits import SPLITS, stratified_split

if TYPE_CHECKING:
    from bench.config import DataConfig

log = logging.getLogger(__name__)

GENERATOR_NAME = "medvit-synthetic-brain"
GENERATOR_VERSION = 1

CLASS_NAMES = (
    "acute_infarct", "arteriovenous_anomaly", "chronic_infarct", "edema", "extra",
    "focal_flair_hyper", "intra", "normal", "pituitary_lesion", "white_matter_changes",
)
# Brain-MR class shares in RadImageNet, which the synthetic set imitates.
RADIMAGENET_PROPORTIONS = {
    "normal": 0.61, "white_matter_changes": 0.08, "chronic_infarct": 0.07, "intra": 0.06,
    "extra": 0.05, "focal_flair_hyper": 0.045, "acute_infarct": 0.035,
    "arteriovenous_anomaly": 0.02, "edema": 0.015, "pituitary_lesion": 0.015,
}
# Rare classes are raised to this share so that val and test hold enough of them.
MIN_FRACTION = 0.03

# FLAIR-like tissue intensities before nuisances: CSF dark, grey matter a little above white.
_SCALP, _BONE, _CSF, _GM, _WM, _VENTRICLE = 0.55, 0.05, 0.12, 0.62, 0.50, 0.08


def effective_proportions() -> dict[str, float]:
    """RadImageNet shares with every class raised to ``MIN_FRACTION``, the rest rescaled."""
    floored: set[str] = set()
    while True:
        free = 1.0 - MIN_FRACTION * len(floored)
        rest = sum(p for c, p in RADIMAGENET_PROPORTIONS.items() if c not in floored)
        shares = {c: MIN_FRACTION if c in floored else RADIMAGENET_PROPORTIONS[c] * free / rest
                  for c in CLASS_NAMES}
        low = {c for c, p in shares.items() if p < MIN_FRACTION - 1e-12}
        if not low:
            return shares
        floored |= low


def class_counts(num_images: int) -> dict[str, int]:
    """Exact images per class for ``num_images`` (largest-remainder rounding, ties by name)."""
    shares = effective_proportions()
    raw = {c: shares[c] * num_images for c in CLASS_NAMES}
    counts = {c: int(np.floor(v)) for c, v in raw.items()}
    order = sorted(CLASS_NAMES, key=lambda c: (-(raw[c] - counts[c]), c))
    for c in order[: num_images - sum(counts.values())]:
        counts[c] += 1
    return counts


# --------------------------------------------------------------------------- geometry


@dataclass
class _Frame:
    """Per-pixel coordinates of one image in the anatomical frame, plus the pose back."""

    size: int
    scale: float  # image units per anatomical unit
    cos: float
    sin: float
    shift: tuple[float, float]
    X: np.ndarray  # anatomical coordinates (image half-width = 1; anterior is -Y)
    Y: np.ndarray
    a: float  # brain semi-axes along X and Y
    b: float
    wobble: list[list[float]]  # brain outline: amplitudes and phases of cos(kθ), k = 2, 3, 4
    u: np.ndarray = field(init=False)  # brain-normalised radius: 1 at the brain surface
    theta: np.ndarray = field(init=False)  # angle in the brain-normalised frame

    def __post_init__(self) -> None:
        # Egg shape: the occipital end is a little wider than the frontal one.
        xn, yn = self.X / (self.a * (1 + 0.08 * self.Y)), self.Y / self.b
        self.theta = np.arctan2(yn, xn)
        self.u = np.sqrt(xn * xn + yn * yn) / self.surface(self.theta)

    def surface(self, theta: float | np.ndarray) -> float | np.ndarray:
        """Radius of the brain outline (in units of the ellipse) at angle ``theta``."""
        amps, phases = self.wobble
        return 1.0 + sum(amp * np.cos(k * theta + ph) for k, amp, ph in zip((2, 3, 4), amps, phases))

    def point(self, u: float, theta: float) -> tuple[float, float]:
        """Anatomical (X, Y) of the point at normalised radius ``u`` and angle ``theta``."""
        r = u * float(self.surface(theta))
        return r * self.a * math.cos(theta), r * self.b * math.sin(theta)

    def to_pixels(self, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of anatomical points: the inverse of the sampling-grid transform."""
        x = self.scale * (self.cos * X - self.sin * Y) + self.shift[0]
        y = self.scale * (self.sin * X + self.cos * Y) + self.shift[1]
        return (y + 1) * self.size / 2 - 0.5, (x + 1) * self.size / 2 - 0.5

    def px(self, length: float) -> float:
        """An anatomical length in pixels."""
        return length * self.scale * self.size / 2

    def window(self, x0: float, y0: float, radius: float) -> tuple[slice, slice]:
        """The pixel rows and columns that cover an anatomical disc (small shapes stay cheap)."""
        row, col = self.to_pixels(np.float32(x0), np.float32(y0))
        half = self.px(radius) + 1.5
        rows = slice(int(np.clip(row - half, 0, self.size)), int(np.clip(row + half + 1, 0, self.size)))
        cols = slice(int(np.clip(col - half, 0, self.size)), int(np.clip(col + half + 1, 0, self.size)))
        return rows, cols


def _frame(size: int, rng: np.random.Generator) -> _Frame:
    angle = math.radians(rng.uniform(-15, 15))
    scale = rng.uniform(0.85, 1.02)
    shift = tuple(float(v) for v in rng.uniform(-0.04, 0.04, 2))
    c, s = math.cos(angle), math.sin(angle)
    grid = (np.arange(size, dtype=np.float32) + 0.5) * (2 / size) - 1
    x, y = grid[None, :] - shift[0], grid[:, None] - shift[1]
    X, Y = (c * x + s * y) / scale, (-s * x + c * y) / scale
    a, b = 0.63 * rng.uniform(0.92, 1.06), 0.76 * rng.uniform(0.94, 1.05)
    wobble = np.stack([rng.uniform(0, 0.025, 3), rng.uniform(0, 2 * np.pi, 3)]).tolist()
    return _Frame(size, scale, c, s, shift, X, Y, a, b, wobble)


def _blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur through the FFT (the background is zero, so wrap-around is harmless)."""
    fy = np.fft.fftfreq(image.shape[0]).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(image.shape[1]).astype(np.float32)[None, :]
    k = np.float32(-2 * np.pi**2 * sigma_px**2)
    return np.fft.irfft2(np.fft.rfft2(image) * (np.exp(k * fy**2) * np.exp(k * fx**2)), s=image.shape)


def _disc(fr: _Frame, x0: float, y0: float, r: float, stretch: float = 1.0, tilt: float = 0.0,
          reach: float = 1.0, lobes: float = 0.0, lobe_phase: float = 0.0) -> np.ndarray:
    """Elliptical distance from (x0, y0), 1 on the outline (semi-axes ``r*stretch`` along
    ``tilt`` and ``r`` across; ``lobes`` makes it three-lobed); inf beyond ``reach``."""
    out = np.full(fr.X.shape, np.inf, dtype=np.float32)
    win = fr.window(x0, y0, r * max(stretch, 1.0) * reach / (1 - lobes))
    dx, dy = fr.X[win] - x0, fr.Y[win] - y0
    c, s = math.cos(tilt), math.sin(tilt)
    d = np.sqrt(((c * dx + s * dy) / (r * stretch)) ** 2 + ((c * dy - s * dx) / r) ** 2)
    if lobes:
        d /= 1 + lobes * np.cos(3 * np.arctan2(dy, dx) + lobe_phase)
    out[win] = d
    return out


def _ventricle(fr: _Frame, side: int, scale: float) -> np.ndarray:
    """One lateral ventricle: frontal horn and body/atrium flaring apart (the butterfly)."""
    a, b, s = fr.a, fr.b, scale
    horn = _disc(fr, (0.10 + 0.035 * s) * side * a, -0.17 * s * b, 0.17 * s * b, 0.06 * a / (0.17 * b),
                 np.pi / 2 + side * 0.45)
    body = _disc(fr, (0.10 + 0.06 * s) * side * a, 0.13 * s * b, 0.17 * s * b, 0.05 * a / (0.17 * b),
                 np.pi / 2 - side * 0.35)
    return (horn < 1) | (body < 1)


# --------------------------------------------------------------------------- anatomy


@dataclass
class _Anatomy:
    brain: np.ndarray
    white: np.ndarray  # white matter proper: no cortex, sulci or ventricles
    ventricles: np.ndarray
    ventricle_scale: float


_SHELLS = np.array([1.0, 1.04, 1.10, 1.17], dtype=np.float32)  # brain | CSF | bone | scalp | air
_SHELL_VALUES = np.array([_WM, _CSF, _BONE, _SCALP, 0.0], dtype=np.float32)


def _anatomy(fr: _Frame, rng: np.random.Generator) -> tuple[np.ndarray, _Anatomy]:
    u, theta = fr.u, fr.theta
    img = _SHELL_VALUES[np.searchsorted(_SHELLS, u, side="right")]
    brain = u < 1.0
    # Gyral folding moves the grey/white border; sulci cut clefts of varied depth through it.
    inner = 0.86 + 0.03 * np.cos(int(rng.integers(9, 14)) * theta + rng.uniform(0, 2 * np.pi))
    cortex = brain & (u >= inner)
    phase = (int(rng.integers(18, 26)) * theta + 2.5 * np.sin(2 * theta + rng.uniform(0, 2 * np.pi))
             + 1.2 * np.sin(5 * theta + rng.uniform(0, 2 * np.pi)) + float(rng.choice([-6, 6])) * u)
    turn = np.floor(phase * (0.618 / (2 * np.pi)))
    depth = inner - 0.12 * (phase * (0.618 / (2 * np.pi)) - turn)
    sulci = brain & (np.cos(phase) > 0.8) & (u >= depth)
    sulci |= brain & (np.abs(fr.X) < 0.012) & ((fr.Y < -0.3 * fr.b) | (fr.Y > 0.45 * fr.b))  # fissure
    scale = rng.uniform(0.8, 1.25)
    ventricles = _ventricle(fr, -1, scale * rng.uniform(0.95, 1.05)) | _ventricle(fr, 1, scale)
    ventricles |= _disc(fr, 0.0, 0.06 * fr.b, 0.07 * fr.b, 0.2) < 1  # third ventricle
    img = np.where(cortex, _GM, img)
    img = np.where(sulci, _CSF, img)
    img = np.where(ventricles, _VENTRICLE, img)
    texture = _blur(rng.standard_normal(u.shape, dtype=np.float32), 2.0 * fr.size / 128)
    img += (0.025 / (texture.std() + 1e-6)) * texture * brain
    return img, _Anatomy(brain, brain & ~cortex & ~sulci & ~ventricles, ventricles, scale)


# --------------------------------------------------------------------------- lesions
# Each lesion paints into ``img`` in place and returns its boolean mask.

Lesion = Callable[[_Frame, np.ndarray, _Anatomy, np.random.Generator], np.ndarray]


def _wedge(fr: _Frame, rng: np.random.Generator, side: int) -> np.ndarray:
    """A cortical wedge in one vascular territory: base on the surface, apex inward."""
    theta0 = rng.uniform(-1.2, 1.2) + (0 if side > 0 else np.pi)
    half, depth = rng.uniform(0.2, 0.45), rng.uniform(0.45, 0.7)
    dtheta = fr.theta - theta0
    dtheta = np.abs(dtheta - (2 * np.pi) * np.round(dtheta / (2 * np.pi)))
    reach = np.clip((fr.u - depth) / (1 - depth), 0, 1) ** 0.6
    return (fr.u < 1.0) & (fr.u > depth) & (dtheta < half * reach)


def _lesion_acute_infarct(fr: _Frame, img: np.ndarray, anat: _Anatomy, rng: np.random.Generator) -> np.ndarray:
    """Bright (restricted diffusion / FLAIR) cortical wedge, sulci effaced, one hemisphere."""
    mask = _wedge(fr, rng, int(rng.choice([-1, 1])))
    img[mask] = _GM + rng.uniform(0.05, 0.25)
    return mask


def _lesion_chronic_infarct(fr: _Frame, img: np.ndarray, anat: _Anatomy, rng: np.random.Generator) -> np.ndarray:
    """CSF-dark wedge (encephalomalacia) and the ipsilateral ventricle enlarged ex vacuo."""
    side = int(rng.choice([-1, 1]))
    mask = _wedge(fr, rng, side)
    img[mask] = rng.uniform(0.12, 0.4)
    img[_ventricle(fr, side, anat.ventricle_scale * rng.uniform(1.15, 1.5)) & anat.brain] = _VENTRICLE
    return mask


def _lesion_white_matter_changes(fr: _Frame, img: np.ndarray, anat: _Anatomy, rng: np.random.Generator) -> np.ndarray:
    """Five to twelve small bright foci in the periventricular white matter."""
    near = _blur(anat.ventricles.astype(np.float32), fr.px(0.06))
    rows, cols = np.nonzero((near > 0.05) & (near < 0.45) & anat.white)
    mask = np.zeros_like(anat.brain)
    for i in rng.choice(len(rows), size=int(rng.integers(5, 13)), replace=False):
        d = _disc(fr, float(fr.X[rows[i], cols[i]]), float(fr.Y[rows[i], cols[i]]), rng.uniform(0.025, 0.045),
                  rng.uniform(1.0, 1.6), rng.uniform(0, np.pi))
        mask |= (d < 1) & anat.brain
    img[mask] = _WM + rng.uniform(0.1, 0.3)
    return mask


def _lesion_extra(fr: _Frame, img: np.ndarray, anat: _Anatomy, rng: np.random.Generator) -> np.ndarray:
    """Lens-shaped extra-axial mass against the inner table, bulging into the brain."""
    theta0 = rng.uniform(0, 2 * np.pi)
    bx, by = fr.point(1.0, theta0)
    nx, ny = bx / fr.a**2, by / fr.b**2
    nx, ny = nx / math.hypot(nx, ny), ny / math.hypot(nx, ny)
    length, thick = rng.uniform(0.15, 0.28), rng.uniform(0.045, 0.11)
    rows, cols = win = fr.window(bx, by, length + 0.05)
    t = (fr.X[win] - bx) * -ny + (fr.Y[win] - by) * nx  # along the inner table
    r = (fr.X[win] - bx) * nx + (fr.Y[win] - by) * ny  # outward
    bulge = thick * np.clip(1 - (t / length) ** 2, 0, None)
    mask, cleft = np.zeros_like(anat.brain), np.zeros_like(anat.brain)
    mask[win] = (np.abs(t) < length) & (r > -bulge) & (r < 0.04) & (fr.u[win] < 1.05)
    cleft[win] = (np.abs(t) < length) & (r <= -bulge) & (r > -bulge - 0.015) & anat.brain[win]
    img[cleft] = _CSF
    img[mask] = rng.uniform(0.66, 0.86)
    return mask


def _lesion_intra(fr: _Frame, img: np.ndarray, anat: _Anatomy, rng: np.random.Generator) -> np.ndarray:
    """Ring-enhancing intra-axial mass: bright rim, necrotic dark core, faint oedema halo."""
    x0, y0 = fr.point(rng.uniform(0.2, 0.6), rng.uniform(0, 2 * np.pi))
    d = _disc(fr, x0, y0, rng.uniform(0.07, 0.14), reach=1.8, lobes=0.12, lobe_phase=rng.uniform(0, 2 * np.pi))
    img += rng.uniform(0.04, 0.12) * np.clip((1.8 - d) / 0.8, 0, 1) * anat.white
    rim = 1 - rng.uniform(0.25, 0.4)
    img[(d < 1) & (d >= rim)] = rng.uniform(0.72, 0.92)
    img[d < rim] = rng.uniform(0.2, 0.4)
    return d < 1


def _lesion_pituitary_lesion(fr: _Frame, img: np.ndarray, anat: _Anatomy, rng: np.random.Generator) -> np.ndarray:
    """Homogeneous midline blob at the skull base, rimmed by suprasellar CSF."""
    d = _disc(fr, 0.0, rng.uniform(-0.05, 0.1) * fr.b, rng.uniform(0.045, 0.085), 1 / rng.uniform(1.0, 1.4),
              reach=1.3)
    img[(d >= 1) & (d < 1.3)] = _CSF
    img[d < 1] = rng.uniform(0.66, 0.86)
    return d < 1


def _lesion_arteriovenous_anomaly(fr: _Frame, img: np.ndarray, anat: _Anatomy, rng: np.random.Generator) -> np.ndarray:
    """A tangle of dark serpentine flow voids (nidus) with a draining vein to the cortex."""
    theta0 = rng.uniform(0, 2 * np.pi)
    x0, y0 = fr.point(rng.uniform(0.3, 0.6), theta0)
    nidus = rng.uniform(0.14, 0.22)
    t = np.linspace(0, 2 * np.pi, 2000)
    k = np.arange(1, 4)[:, None]
    xs, ys = [], []
    for _ in range(rng.integers(3, 6)):  # closed random Fourier curves wind through the nidus
        curve = np.sum(rng.uniform(0.3, 1.0, (2, 3, 1)) / k * np.cos(k * t + rng.uniform(0, 2 * np.pi, (2, 3, 1))),
                       axis=1)
        curve *= nidus / np.abs(curve).max(axis=1, keepdims=True)
        xs.append(x0 + curve[0])
        ys.append(y0 + curve[1])
    ex, ey = fr.point(0.95, theta0 + rng.uniform(-0.3, 0.3))
    s = np.linspace(0, 1, 800)
    wiggle = 0.02 * np.sin(2 * np.pi * rng.uniform(2, 4) * s + rng.uniform(0, 2 * np.pi))
    xs.append(x0 + (ex - x0) * s - (ey - y0) * wiggle)
    ys.append(y0 + (ey - y0) * s + (ex - x0) * wiggle)
    rows, cols = fr.to_pixels(np.concatenate(xs), np.concatenate(ys))
    rows, cols = np.round(rows).astype(int), np.round(cols).astype(int)
    keep = (rows >= 0) & (rows < fr.size) & (cols >= 0) & (cols < fr.size)
    canvas = np.zeros_like(img)
    canvas[rows[keep], cols[keep]] = 1.0
    sigma = max(fr.px(rng.uniform(0.025, 0.035)), 0.6) / 2.355  # vessel width as FWHM
    mask = (_blur(canvas, sigma) > 0.4 / (np.sqrt(2 * np.pi) * sigma)) & (fr.u < 0.98)
    img[mask] = rng.uniform(0.03, 0.1)
    return mask


def _lesion_edema(fr: _Frame, img: np.ndarray, anat: _Anatomy, rng: np.random.Generator) -> np.ndarray:
    """Large, blurred bright region confined to white matter (fingers between gyri)."""
    x0, y0 = fr.point(rng.uniform(0.45, 0.65), rng.uniform(0, 2 * np.pi))
    radius = rng.uniform(0.2, 0.32)
    blob = np.zeros_like(anat.brain)
    for _ in range(rng.integers(3, 6)):
        dx, dy = rng.uniform(-0.5, 0.5, 2) * radius
        blob |= _disc(fr, x0 + dx, y0 + dy, radius * rng.uniform(0.4, 0.8)) < 1
    field = _blur(blob.astype(np.float32), fr.px(0.05)) * _blur(anat.white.astype(np.float32), 1.0)
    img += rng.uniform(0.1, 0.3) * field
    return field > 0.5


def _lesion_focal_flair_hyper(fr: _Frame, img: np.ndarray, anat: _Anatomy, rng: np.random.Generator) -> np.ndarray:
    """One small bright subcortical focus, just under the cortex."""
    x0, y0 = fr.point(rng.uniform(0.7, 0.8), rng.uniform(0, 2 * np.pi))
    mask = _disc(fr, x0, y0, rng.uniform(0.038, 0.055), rng.uniform(1.0, 1.4), rng.uniform(0, np.pi)) < 1
    img[mask] = _WM + rng.uniform(0.12, 0.3)
    return mask


def _lesion_normal(fr: _Frame, img: np.ndarray, anat: _Anatomy, rng: np.random.Generator) -> np.ndarray:
    return np.zeros_like(anat.brain)


_LESIONS: dict[str, Lesion] = {name: globals()[f"_lesion_{name}"] for name in CLASS_NAMES}


def render(label: str, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One image of class ``label``: (uint8 H×W image, bool H×W lesion mask)."""
    fr = _frame(size, rng)
    img, anat = _anatomy(fr, rng)
    mask = _LESIONS[label](fr, img, anat, rng)
    img = _blur(img, rng.uniform(0.4, 0.8) * size / 128)  # scanner point-spread function
    grid = (np.arange(size, dtype=np.float32) + 0.5) * (2 / size) - 1
    x, y = grid[None, :], grid[:, None]
    c = rng.uniform(-0.2, 0.2, 4).astype(np.float32)
    img *= np.exp(c[0] * x + c[1] * y + c[2] * x * y + c[3] * (x * x - y * y))  # coil bias field
    noise = rng.standard_normal((2, size, size), dtype=np.float32) * np.float32(rng.uniform(0.015, 0.06))
    img = np.sqrt((img + noise[0]) ** 2 + noise[1] ** 2)  # magnitude image: Rician noise
    img = img ** np.float32(rng.uniform(0.75, 1.35)) * np.float32(255 * rng.uniform(0.85, 1.15))
    return np.clip(np.round(img), 0, 255).astype(np.uint8), mask


# --------------------------------------------------------------------------- dataset


def _params(num_images: int, size: int, seed: int) -> dict[str, object]:
    return {"generator": {"name": GENERATOR_NAME, "version": GENERATOR_VERSION},
            "num_images": num_images, "size": size, "seed": seed}


def _image_id(index: int) -> str:
    return f"{index:05d}"


def _write_chunk(root: Path, size: int, seed: int, items: list[tuple[int, str]]) -> int:
    """Render and write the images ``items`` (index, label); runs in a worker process."""
    for index, label in items:
        # Image ``index`` draws from its own stream, so workers and order cannot change a pixel.
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, index)))
        image, mask = render(label, size, rng)
        for kind, pixels in (("images", image), ("masks", mask.astype(np.uint8) * 255)):
            Image.fromarray(pixels).save(root / kind / label / f"{_image_id(index)}.png", compress_level=1)
    return len(items)


def _default_workers(num_images: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 1 if num_images < 1000 else min(cores, 8)  # a pool costs ~1 s to start


def generate(root: Path, num_images: int, size: int = 128, seed: int = 0, progress: bool = True,
             workers: int | None = None) -> Path:
    """Write ``num_images`` phantoms under ``root`` (absent or empty) and return ``root``.

    Layout: ``images/<class>/<id>.png`` (8-bit grey), ``masks/<class>/<id>.png`` (lesion,
    0/255; all zero for normal), ``manifest.csv`` (path,label,split,mask_path; paths relative
    to root; stratified 70/15/15) and ``dataset.json`` (parameters and counts). The files
    are byte-identical for equal arguments, whatever ``workers`` (default: one per core).
    """
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root}: not empty; generate() writes into a fresh folder")
    counts = class_counts(num_images)
    label_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    labels = [CLASS_NAMES[i] for i in label_rng.permutation(np.repeat(np.arange(len(CLASS_NAMES)),
                                                                        list(counts.values())))]
    splits = stratified_split(labels, seed=seed)
    for kind in ("images", "masks"):
        for name in CLASS_NAMES:
            (root / kind / name).mkdir(parents=True, exist_ok=True)
    workers = workers or _default_workers(num_images)
    log.info("generating %d synthetic brain images at %d px (seed %d, %d worker(s)) in %s",
             num_images, size, seed, workers, root)
    items = list(enumerate(labels))
    chunks = [items[i:i + 64] for i in range(0, num_images, 64)]
    with tqdm(total=num_images, desc="synthetic images", disable=None if progress else True) as bar:
        if workers == 1:
            for chunk in chunks:
                bar.update(_write_chunk(root, size, seed, chunk))
        else:  # spawn, not fork: the caller may hold torch threads
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                for done in as_completed([pool.submit(_write_chunk, root, size, seed, c) for c in chunks]):
                    bar.update(done.result())

    rows = [(f"images/{label}/{_image_id(i)}.png", label, split, f"masks/{label}/{_image_id(i)}.png")
            for i, (label, split) in enumerate(zip(labels, splits))]
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("path", "label", "split", "mask_path"))
        writer.writerows(rows)
    per_split = {c: dict.fromkeys(SPLITS, 0) for c in CLASS_NAMES}
    for label, split in zip(labels, splits):
        per_split[label][split] += 1
    info = {**_params(num_images, size, seed), "synthetic": True, "class_names": list(CLASS_NAMES),
            "proportions": {c: round(p, 6) for c, p in effective_proportions().items()},
            "counts": {c: {**per_split[c], "total": counts[c]} for c in CLASS_NAMES}}
    (root / "dataset.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return root


def _read_info(root: Path) -> dict | None:
    try:
        return json.loads((root / "dataset.json").read_text())
    except (OSError, ValueError):
        return None


@contextmanager
def _lock(root: Path) -> Iterator[None]:
    """Serialise generation of one root across processes (e.g. several DDP ranks)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_dataset(cfg: DataConfig, progress: bool = True) -> Path:
    """Return the synthetic dataset root for ``cfg``, generating it when absent or stale.

    A new dataset is written to a temporary sibling folder and renamed into place, so a
    killed generation never leaves a half-written dataset behind.
    """
    if cfg.kind != "synthetic":
        raise ValueError(f"ensure_dataset needs data.kind 'synthetic', got {cfg.kind!r}")
    root = cfg.root_path
    wanted = _params(cfg.num_images, cfg.generator_size, cfg.seed)
    with _lock(root):
        info = _read_info(root)
        if info is not None and all(info.get(k) == v for k, v in wanted.items()) \
                and (root / "manifest.csv").is_file():
            return root
        if root.exists() and any(root.iterdir()) and not (info and info.get("synthetic") is True):
            raise FileExistsError(f"{root}: exists and is not a synthetic dataset (no dataset.json with "
                                  '"synthetic": true); refusing to overwrite it')
        for stale in root.parent.glob(f".{root.name}.partial-*"):  # left by a killed run
            shutil.rmtree(stale, ignore_errors=True)
        partial = root.parent / f".{root.name}.partial-{os.getpid()}"
        try:
            generate(partial, cfg.num_images, cfg.generator_size, cfg.seed, progress)
            if root.exists():
                old = root.parent / f".{root.name}.partial-old-{os.getpid()}"
                root.rename(old)
                partial.rename(root)
                shutil.rmtree(old)
            else:
                partial.rename(root)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return root
