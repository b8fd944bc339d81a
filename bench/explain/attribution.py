"""Attribution maps (captum), applied the same way to every model, one map per image.

Four methods, each explaining one target class per image and reduced to one (H, W) map at
the input size:

- ``saliency``: |∂ logit / ∂ input| (Simonyan et al., "Deep Inside Convolutional Networks",
  ICLR 2014 workshop; captum ``Saliency``);
- ``integrated_gradients``: captum ``IntegratedGradients`` (Sundararajan et al., "Axiomatic
  Attribution for Deep Networks", ICML 2017) from a black image (the normalised value of
  pixel 0, the background of every slice), signed;
- ``smoothgrad`` (Smilkov et al., "SmoothGrad: removing noise by adding noise", 2017): the
  mean |gradient| over noisy copies of the input. The noise is **per image**: its standard
  deviation is a set share of that image's own range, and it is drawn from a generator seeded
  by (config seed, the image's identity), each image's copies in a batch of their own. So an
  image's map is the same alone or in any batch, whatever else the batch holds;
- ``gradcam`` (Selvaraju et al., ICCV 2017): captum ``LayerGradCam`` on the feature map chosen
  by ``bench.explain.taps`` (at least 8×8 cells), ReLU, upsampled bilinearly.

Saliency, Integrated Gradients and Grad-CAM have no randomness: an image's map does not depend
on its batch either (the models are in eval mode and mix nothing across a batch).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.core.config import ExplainConfig
from bench.explain.taps import feature_tap

METHODS = ("saliency", "integrated_gradients", "smoothgrad", "gradcam")
SIGNED = frozenset({"integrated_gradients"})  # the others are non-negative by construction


def image_seed(seed: int, image: torch.Tensor, image_id: int | None = None) -> int:
    """A 63-bit seed from the config seed and the image's identity: its index where the caller
    knows it, else a digest of its pixels (so the same image always draws the same noise)."""
    ident = str(image_id) if image_id is not None else \
        hashlib.sha256(image.detach().cpu().float().contiguous().numpy().tobytes()).hexdigest()
    return int.from_bytes(hashlib.sha256(f"{seed}:{ident}".encode()).digest()[:8], "little") >> 1


def smoothgrad_map(model: nn.Module, image: torch.Tensor, target: int, *, samples: int, noise: float,
                   seed: int) -> torch.Tensor:
    """(H, W): mean over ``samples`` noisy copies of Σ_channels |∂ logit_target / ∂ input|, the
    noise N(0, (noise · (max − min))²) of this image, drawn from a generator seeded by ``seed``."""
    image = image.detach()
    spread = float(image.max() - image.min())
    generator = torch.Generator().manual_seed(seed)
    draws = torch.randn((samples,) + tuple(image.shape), generator=generator, dtype=image.dtype)
    noisy = (image.unsqueeze(0) + draws.to(image.device) * (noise * spread)).requires_grad_(True)
    (grad,) = torch.autograd.grad(model(noisy)[:, target].sum(), noisy)
    return grad.detach().float().abs().sum(dim=1).mean(dim=0)


def _reduce(attr: torch.Tensor, absolute: bool) -> torch.Tensor:
    """(B, C, H, W) attributions → (B, H, W): summed over channels (absolute first where asked)."""
    attr = attr.detach().float()
    return (attr.abs() if absolute else attr).sum(dim=1)


def attribute(model: nn.Module, method: str, images: torch.Tensor, targets: torch.Tensor, *, baseline: float,
              ig_steps: int = 32, internal_batch_size: int = 32, smoothgrad_samples: int = 16,
              smoothgrad_noise: float = 0.15, seed: int = 0, image_ids: Sequence[int] | None = None) -> torch.Tensor:
    """(B, H, W) maps of ``method`` for ``targets``; the model must be in eval mode. ``image_ids``
    name the images for SmoothGrad's noise (a digest of each image's pixels where not given)."""
    from captum.attr import IntegratedGradients, LayerGradCam, Saliency

    if image_ids is not None and len(image_ids) != len(images):
        raise ValueError(f"{len(image_ids)} image ids for {len(images)} images")
    if method == "smoothgrad":
        maps = [smoothgrad_map(model, images[i], int(targets[i]), samples=smoothgrad_samples, noise=smoothgrad_noise,
                               seed=image_seed(seed, images[i], None if image_ids is None else int(image_ids[i])))
                for i in range(len(images))]
        return torch.stack(maps) if maps else torch.zeros((0,) + tuple(images.shape[-2:]))
    images = images.detach().clone().requires_grad_(True)
    if method == "saliency":
        return _reduce(Saliency(model).attribute(images, target=targets, abs=True), absolute=True)
    if method == "integrated_gradients":
        ig = IntegratedGradients(model)
        attr = ig.attribute(images, baselines=torch.full_like(images, baseline), target=targets, n_steps=ig_steps,
                            internal_batch_size=internal_batch_size)
        return _reduce(attr, absolute=False)
    if method == "gradcam":
        tapped = feature_tap(model, images.shape[-1])
        cam = LayerGradCam(tapped, tapped.tap).attribute(images, target=targets, relu_attributions=True)
        cam = F.interpolate(cam.detach().float(), size=images.shape[-2:], mode="bilinear", align_corners=False)
        return cam[:, 0]
    raise ValueError(f"unknown attribution method {method!r}; valid: {', '.join(METHODS)}")


def attribute_all(model: nn.Module, method: str, images: torch.Tensor, targets: torch.Tensor, image_ids: Sequence[int],
                  cfg: ExplainConfig, baseline: float) -> np.ndarray:
    """(N, H, W) maps of ``method``, in chunks of ``cfg.internal_batch_size`` images."""
    out = []
    step = cfg.internal_batch_size
    for start in range(0, len(images), step):
        part = slice(start, start + step)
        out.append(attribute(model, method, images[part], targets[part], baseline=baseline, ig_steps=cfg.ig_steps,
                             internal_batch_size=step, smoothgrad_samples=cfg.smoothgrad_samples,
                             smoothgrad_noise=cfg.smoothgrad_noise, seed=cfg.seed,
                             image_ids=list(image_ids[start:start + step])).numpy())
    return np.concatenate(out) if out else np.zeros((0,) + tuple(images.shape[-2:]), dtype=np.float32)
