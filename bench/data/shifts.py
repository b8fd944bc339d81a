"""Acquisition shifts: deterministic image distortions for a robustness study.

A model is trained on one scanner and protocol and later meets others. Each shift here imitates
one such change (contrast, coil bias, noise, resolution, gain, positioning) at three severities,
so a study can report how accuracy falls as the test images move away from the training ones.

Every shift is a pure function of (image, kind, severity, seed, image index): randomness is drawn
per image from its own CPU generator, so a shifted test set is the same whatever the batch size
or order (the draws are the same on any device), and two runs of a study compare models on
identical pixels.
"""

from __future__ import annotations

import logging
import math
import zlib

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

SHIFT_KINDS = (
    "contrast_gamma", "bias_field", "rician_noise", "blur", "low_resolution", "intensity_scale", "rotation",
)
SEVERITIES = (1, 2, 3)
REFERENCE_SIZE = 64  # blur sigmas are stated in pixels of an image this wide and scale with the width

# The parameter of each kind at severities 1, 2, 3: severity 1 is barely visible next to the clean
# image, severity 3 clearly degraded but still readable by eye (checked on 64 px synthetic images).
# The synthetic renderer already varies each nuisance a little (gamma 0.75-1.35, gain 0.85-1.15,
# bias coefficients within ±0.2, noise sigma 0.01-0.04, blur 0.2-0.4 px at 64 px, pose ±15°):
# severity 1 may fall inside those ranges, severity 3 lies beyond them.
SHIFT_PARAMETERS: dict[str, tuple[float, float, float]] = {
    "contrast_gamma": (0.85, 0.7, 0.5),  # exponent on [0, 1] intensities: < 1 lifts the dark tissue
    "bias_field": (0.15, 0.3, 0.5),  # the field departs from 1 by at most this
    "rician_noise": (0.04, 0.08, 0.15),  # noise sigma as a fraction of the foreground's mean intensity
    "blur": (0.5, 0.8, 1.2),  # Gaussian sigma in pixels at 64 px
    "low_resolution": (1.25, 1.75, 2.5),  # downsampling factor per side
    "intensity_scale": (0.85, 0.7, 0.55),  # global gain
    # Degrees, all above the training augmentation's default of ±10° (TrainConfig.rotate_deg); on top of
    # the renderer's pose of ±15°, severity 3 turns every brain past the ±25° that training covers.
    # The sign is drawn per image.
    "rotation": (15.0, 25.0, 40.0),
}

_BIAS_MODES = ((1, 0), (0, 1), (1, 1), (1, -1), (2, 0), (0, 2))  # cosine frequencies: low-order only


def _check_kind_and_severity(kind: str, severity: int) -> None:
    if kind not in SHIFT_KINDS:
        raise ValueError(f"unknown shift kind {kind!r}; valid: {', '.join(SHIFT_KINDS)}")
    if isinstance(severity, bool) or severity not in SEVERITIES:
        raise ValueError(f"shift severity must be one of {', '.join(map(str, SEVERITIES))}, got {severity!r}")


def parameter(kind: str, severity: int) -> float:
    """The value of ``kind``'s parameter at ``severity`` (see ``SHIFT_PARAMETERS``)."""
    _check_kind_and_severity(kind, severity)
    return SHIFT_PARAMETERS[kind][int(severity) - 1]


def describe(kind: str, severity: int) -> str:
    """``kind`` at ``severity`` in words, e.g. "Gaussian blur, sigma 1.0 px at 64 px"."""
    value = parameter(kind, severity)
    return {
        "contrast_gamma": f"gamma {value:g} on [0, 1] intensities",
        "bias_field": f"smooth multiplicative bias field, 1 ± {value:g}",
        "rician_noise": f"Rician noise, sigma {value:g} × foreground mean intensity",
        "blur": f"Gaussian blur, sigma {value:g} px at {REFERENCE_SIZE} px",
        "low_resolution": f"downsampled {value:g}× per side and upsampled back",
        "intensity_scale": f"intensities × {value:g}",
        "rotation": f"in-plane rotation by {value:g}° (either sign)",
    }[kind]


def _image_generator(seed: int, kind: str, severity: int, index: int) -> torch.Generator:
    """One image's own stream: the kind enters through a fixed checksum of its name, not ``hash``,
    which Python salts per process. The seed is 32 bits: torch's CPU generator keeps no more."""
    key = (zlib.crc32(kind.encode()), int(severity), int(index))
    state = np.random.SeedSequence(seed, spawn_key=key).generate_state(1, dtype=np.uint32)[0]
    return torch.Generator().manual_seed(int(state))


# --------------------------------------------------------------------------- the shifts
# Each takes one (C, H, W) float image in [0, 1], the parameter and the image's generator.


def _gamma(x: torch.Tensor, gamma: float, gen: torch.Generator) -> torch.Tensor:
    return x.clamp(0, 1) ** gamma


def _bias_field(x: torch.Tensor, amplitude: float, gen: torch.Generator) -> torch.Tensor:
    _, h, w = x.shape
    weights = torch.rand(len(_BIAS_MODES), generator=gen, dtype=torch.float64) + 0.25
    phases = torch.rand(len(_BIAS_MODES), generator=gen, dtype=torch.float64) * (2 * math.pi)
    # Pixel centres on [-1, 1]: a cosine of whole frequency averages to zero there, so the mean stays near 1.
    ys = ((torch.arange(h, dtype=torch.float64) + 0.5) * (2 / h) - 1)[:, None]
    xs = ((torch.arange(w, dtype=torch.float64) + 0.5) * (2 / w) - 1)[None, :]
    shape = sum(wt * torch.cos(math.pi * (fx * xs + fy * ys) + ph)
                for (fx, fy), wt, ph in zip(_BIAS_MODES, weights.tolist(), phases.tolist()))
    shape = shape / shape.abs().max().clamp_min(1e-12)
    field = (1 + amplitude * shape).to(dtype=x.dtype, device=x.device)
    return x * field


def _rician_noise(x: torch.Tensor, relative_sigma: float, gen: torch.Generator) -> torch.Tensor:
    # Foreground: the pixels at or above the image mean, which on a scan with a dark background is the tissue.
    foreground_mean = x[x >= x.mean()].mean()
    sigma = relative_sigma * foreground_mean
    noise = torch.randn((2, *x.shape), generator=gen, dtype=torch.float32).to(dtype=x.dtype, device=x.device)
    real, imaginary = x + sigma * noise[0], sigma * noise[1]
    return torch.sqrt(real * real + imaginary * imaginary)  # a magnitude image of complex noisy data


def _gaussian_kernel(sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return (kernel / kernel.sum()).to(dtype=dtype, device=device)


def _blur(x: torch.Tensor, sigma_at_reference: float, gen: torch.Generator) -> torch.Tensor:
    c, h, w = x.shape
    sigma = sigma_at_reference * w / REFERENCE_SIZE
    kernel = _gaussian_kernel(sigma, x.dtype, x.device)
    radius = kernel.numel() // 2
    out = x[None]
    # Separable: rows then columns; edge pixels are repeated, so the border does not darken.
    for weight, pad in ((kernel.view(1, 1, 1, -1), (radius, radius, 0, 0)),
                        (kernel.view(1, 1, -1, 1), (0, 0, radius, radius))):
        out = F.conv2d(F.pad(out, pad, mode="replicate"), weight.expand(c, 1, *weight.shape[2:]), groups=c)
    return out[0]


def _low_resolution(x: torch.Tensor, factor: float, gen: torch.Generator) -> torch.Tensor:
    _, h, w = x.shape
    small = (max(1, round(h / factor)), max(1, round(w / factor)))
    # Area averaging is what a coarser acquisition matrix records; bilinear is the usual display upsampling.
    low = F.interpolate(x[None], size=small, mode="area")
    return F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)[0]


def _intensity_scale(x: torch.Tensor, scale: float, gen: torch.Generator) -> torch.Tensor:
    return x * scale


def _rotation(x: torch.Tensor, degrees: float, gen: torch.Generator) -> torch.Tensor:
    _, h, w = x.shape
    sign = 1.0 if torch.rand(1, generator=gen).item() < 0.5 else -1.0
    angle = math.radians(sign * degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    # affine_grid works in coordinates normalised per axis; the aspect factors keep a non-square
    # image rotating rigidly in pixel space.
    theta = torch.tensor([[cos, -sin * h / w, 0.0], [sin * w / h, cos, 0.0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta[None], [1, *x.shape], align_corners=False)
    return F.grid_sample(x[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]


_SHIFTS = {
    "contrast_gamma": _gamma, "bias_field": _bias_field, "rician_noise": _rician_noise, "blur": _blur,
    "low_resolution": _low_resolution, "intensity_scale": _intensity_scale, "rotation": _rotation,
}
assert tuple(_SHIFTS) == SHIFT_KINDS


def apply_shift(images: torch.Tensor, kind: str, severity: int, seed: int = 0,
                indices: torch.Tensor | None = None) -> torch.Tensor:
    """``images`` (N, C, H, W), float in [0, 1], under shift ``kind`` at ``severity``.

    Returns a new tensor of the same shape and dtype with values in [0, 1]; ``images`` is not
    modified. Image i draws its randomness from a generator seeded by (``seed``, ``kind``,
    ``severity``, ``indices[i]`` or i), so its result does not depend on the rest of the batch.
    """
    _check_kind_and_severity(kind, severity)
    if images.ndim != 4:
        raise ValueError(f"apply_shift wants an (N, C, H, W) batch, got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"apply_shift wants float images in [0, 1], got dtype {images.dtype}")
    if seed < 0:
        raise ValueError(f"shift seed must be >= 0, got {seed}")
    n = images.shape[0]
    if indices is None:
        index_list = list(range(n))
    else:
        if indices.ndim != 1 or indices.numel() != n:
            raise ValueError(f"indices must hold one index per image ({n}), got shape {tuple(indices.shape)}")
        index_list = [int(i) for i in indices.tolist()]
        if min(index_list, default=0) < 0:
            raise ValueError(f"indices must be >= 0, got {min(index_list)}")
    # Half precision lacks some CPU kernels (grid_sample, conv2d); work in float32 and cast back.
    work = images if images.dtype in (torch.float32, torch.float64) else images.float()
    value, shift = parameter(kind, severity), _SHIFTS[kind]
    log.debug("applying %s to %d image(s), seed %d", describe(kind, severity), n, seed)
    out = torch.stack([shift(work[i], value, _image_generator(seed, kind, severity, index))
                       for i, index in enumerate(index_list)]) if n else work.clone()
    return out.clamp_(0, 1).to(images.dtype)


def example_grid(image: torch.Tensor, seed: int = 0, index: int = 0, gap: int = 2) -> torch.Tensor:
    """One image under every shift, as a uint8 (rows, cols) grey grid for the report: a row per
    kind in ``SHIFT_KINDS`` order, columns clean then severities 1, 2, 3, ``gap`` black pixels
    between tiles. ``image`` is (C, H, W) float in [0, 1]; channels are averaged for display."""
    if image.ndim != 3:
        raise ValueError(f"example_grid wants one (C, H, W) image, got shape {tuple(image.shape)}")
    _, h, w = image.shape
    batch, where = image[None], torch.tensor([index])
    columns = len(SEVERITIES) + 1
    grid = torch.zeros(len(SHIFT_KINDS) * (h + gap) - gap, columns * (w + gap) - gap, dtype=torch.uint8)
    for row, kind in enumerate(SHIFT_KINDS):
        tiles = [batch] + [apply_shift(batch, kind, s, seed=seed, indices=where) for s in SEVERITIES]
        for col, tile in enumerate(tiles):
            grey = (tile[0].float().mean(0) * 255).round().clamp(0, 255).to(torch.uint8).cpu()
            top, left = row * (h + gap), col * (w + gap)
            grid[top:top + h, left:left + w] = grey
    return grid
