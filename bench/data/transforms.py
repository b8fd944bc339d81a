"""Batch augmentation on tensors: one affine resample per batch, drawn per image."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from bench.core.config import TrainConfig


def _uniform(n: int, bounds: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    lo, hi = bounds
    return lo + (hi - lo) * torch.rand(n, generator=generator, device=generator.device)


def augment_batch(x: torch.Tensor, cfg: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """Randomly rotate (±``cfg.rotate_deg``), scale (``cfg.scale_range``), change contrast about
    each image's mean (``cfg.contrast_range``) and, only if ``cfg.hflip``, mirror left-right.

    ``x`` is a (B, C, H, W) float batch; the draws come from ``generator`` alone, so equal
    generator states give equal outputs. Returns ``x`` unchanged when ``cfg.augment`` is off.
    """
    if not cfg.augment:
        return x
    if x.ndim != 4:
        raise ValueError(f"augment_batch wants a (B, C, H, W) batch, got shape {tuple(x.shape)}")
    n = x.shape[0]
    angle = _uniform(n, (-cfg.rotate_deg, cfg.rotate_deg), generator) * (math.pi / 180)
    scale = _uniform(n, cfg.scale_range, generator)
    contrast = _uniform(n, cfg.contrast_range, generator)
    flip = torch.rand(n, generator=generator, device=generator.device) < 0.5
    mirror = torch.where(flip, -1.0, 1.0) if cfg.hflip else torch.ones(n, device=generator.device)
    # affine_grid maps output to input coordinates, so zooming in by s samples at 1/s.
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos * mirror, -sin, zero], -1),
                         torch.stack([sin * mirror, cos, zero], -1)], 1)
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # "border" repeats the edge (background), where zero padding would paint the mean intensity.
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    return (out - mean) * contrast.to(device=x.device, dtype=x.dtype).view(n, 1, 1, 1) + mean
