"""One synthetic brain MRI: an axial, FLAIR-like phantom with one finding, drawn from an RNG.

The image is rendered analytically in an anatomical frame (brain-centred, anterior up), so
pose costs nothing: the sampling grid is rotated and scaled, not the image. Shared anatomy:
scalp, skull, subarachnoid CSF, a folded grey-matter rim cut by sulci, white matter, and
butterfly-shaped lateral ventricles. Each class adds one lesion that follows an anatomical
rule of location, shape and intensity (the ``_lesion_<class>`` functions). Nuisances: pose,
brain shape and size, ventricle size, bias field, blur, Rician noise, gamma and gain.
Small shapes are evaluated only in their pixel window, which keeps an image near 2 ms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# FLAIR-like tissue intensities before nuisances: CSF dark, grey matter a little above white.
_SCALP, _BONE, _CSF, _GM, _WM, _VENTRICLE = 0.55, 0.05, 0.12, 0.62, 0.50, 0.08


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
    # Long axes run front to back; the horns splay outward in front and the atria behind.
    horn = _disc(fr, (0.10 + 0.035 * s) * side * a, -0.17 * s * b, 0.17 * s * b, 0.06 * a / (0.17 * b), side * 0.45)
    body = _disc(fr, (0.10 + 0.06 * s) * side * a, 0.13 * s * b, 0.17 * s * b, 0.05 * a / (0.17 * b), -side * 0.35)
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
    img[mask] = _GM + rng.uniform(0.15, 0.35)
    return mask


def _lesion_chronic_infarct(fr: _Frame, img: np.ndarray, anat: _Anatomy, rng: np.random.Generator) -> np.ndarray:
    """CSF-dark wedge (encephalomalacia) and the ipsilateral ventricle enlarged ex vacuo."""
    side = int(rng.choice([-1, 1]))
    mask = _wedge(fr, rng, side)
    img[mask] = rng.uniform(0.1, 0.3)
    img[_ventricle(fr, side, anat.ventricle_scale * rng.uniform(1.15, 1.5)) & anat.brain] = _VENTRICLE
    return mask


def _lesion_white_matter_changes(fr: _Frame, img: np.ndarray, anat: _Anatomy, rng: np.random.Generator) -> np.ndarray:
    """Five to twelve small bright foci in the periventricular white matter."""
    near = _blur(anat.ventricles.astype(np.float32), fr.px(0.06))
    rows, cols = np.nonzero((near > 0.05) & (near < 0.45) & anat.white)
    mask = np.zeros_like(anat.brain)
    for i in rng.choice(len(rows), size=int(rng.integers(5, 13)), replace=False):
        d = _disc(fr, float(fr.X[rows[i], cols[i]]), float(fr.Y[rows[i], cols[i]]), rng.uniform(0.03, 0.055),
                  rng.uniform(1.0, 1.6), rng.uniform(0, np.pi))
        mask |= (d < 1) & anat.brain
    img[mask] = _WM + rng.uniform(0.15, 0.35)
    return mask


def _lesion_extra(fr: _Frame, img: np.ndarray, anat: _Anatomy, rng: np.random.Generator) -> np.ndarray:
    """Lens-shaped extra-axial mass against the inner table, bulging into the brain."""
    theta0 = rng.uniform(0, 2 * np.pi)
    bx, by = fr.point(1.0, theta0)
    nx, ny = bx / fr.a**2, by / fr.b**2
    nx, ny = nx / math.hypot(nx, ny), ny / math.hypot(nx, ny)
    length, thick = rng.uniform(0.18, 0.3), rng.uniform(0.06, 0.13)
    win = fr.window(bx, by, length + 0.05)
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
    d = _disc(fr, 0.0, rng.uniform(-0.05, 0.1) * fr.b, rng.uniform(0.06, 0.1), 1 / rng.uniform(1.0, 1.4),
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
    sigma = max(fr.px(rng.uniform(0.03, 0.045)), 0.6) / 2.355  # vessel width as FWHM
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
    img += rng.uniform(0.18, 0.35) * field
    return field > 0.5


def _lesion_focal_flair_hyper(fr: _Frame, img: np.ndarray, anat: _Anatomy, rng: np.random.Generator) -> np.ndarray:
    """One small bright subcortical focus, just under the cortex."""
    x0, y0 = fr.point(rng.uniform(0.7, 0.8), rng.uniform(0, 2 * np.pi))
    mask = _disc(fr, x0, y0, rng.uniform(0.05, 0.07), rng.uniform(1.0, 1.4), rng.uniform(0, np.pi)) < 1
    img[mask] = _WM + rng.uniform(0.2, 0.35)
    return mask


def _lesion_normal(fr: _Frame, img: np.ndarray, anat: _Anatomy, rng: np.random.Generator) -> np.ndarray:
    return np.zeros_like(anat.brain)


# The class names are the suffixes of the ``_lesion_*`` painters above.
LESIONS: dict[str, Lesion] = {name[len("_lesion_"):]: fn for name, fn in sorted(globals().items())
                              if name.startswith("_lesion_")}


def render(label: str, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One image of class ``label``: (uint8 H×W image, bool H×W lesion mask), all drawn from ``rng``."""
    image, mask, _ = render_with_lesion_free(label, size, rng, lesion_free=False)
    return image, mask


def render_with_lesion_free(label: str, size: int, rng: np.random.Generator, lesion_free: bool = True
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(image, lesion mask, the same image without its finding): the lesion-free twin has the same
    anatomy, pose and nuisances (the same draws from ``rng``, applied to both), only the lesion
    painter's changes left out. ``render`` is this without the twin; the image's bytes are the same."""
    if label not in LESIONS:
        raise KeyError(f"unknown synthetic class {label!r}; valid: {', '.join(LESIONS)}")
    fr = _frame(size, rng)
    img, anat = _anatomy(fr, rng)
    clean = img.copy() if lesion_free else None
    mask = LESIONS[label](fr, img, anat, rng)
    sigma = rng.uniform(0.4, 0.8) * size / 128  # scanner point-spread function
    grid = (np.arange(size, dtype=np.float32) + 0.5) * (2 / size) - 1
    x, y = grid[None, :], grid[:, None]
    c = rng.uniform(-0.2, 0.2, 4).astype(np.float32)
    bias = np.exp(c[0] * x + c[1] * y + c[2] * x * y + c[3] * (x * x - y * y))  # coil bias field
    noise = rng.standard_normal((2, size, size), dtype=np.float32) * np.float32(rng.uniform(0.01, 0.04))
    gamma, gain = np.float32(rng.uniform(0.75, 1.35)), np.float32(255 * rng.uniform(0.85, 1.15))

    def finish(pixels: np.ndarray) -> np.ndarray:
        pixels = _blur(pixels, sigma)
        pixels *= bias
        pixels = np.sqrt((pixels + noise[0]) ** 2 + noise[1] ** 2)  # magnitude image: Rician noise
        return np.clip(np.round(pixels ** gamma * gain), 0, 255).astype(np.uint8)

    return finish(img), mask, finish(clean) if clean is not None else None
