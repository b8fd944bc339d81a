"""Attribution maps (captum) and how faithful they are to the lesion masks.

Four methods, applied the same way to every model, each explaining one target class per
image and reduced to one (H, W) map at the input size:

- ``saliency``: |∂ logit / ∂ input| (captum ``Saliency``);
- ``integrated_gradients``: captum ``IntegratedGradients`` from a black image (the
  normalised value of pixel 0, the background of every slice), signed;
- ``smoothgrad``: ``NoiseTunnel`` over ``Saliency``, Gaussian noise of a set share of the
  input's range, seeded so that the same input always gives the same map;
- ``gradcam``: ``LayerGradCam`` on the feature map (B, C, H, W) whose stride is nearest
  ``CAM_STRIDE``, ReLU, upsampled bilinearly. Every built-in model has one at or near stride
  16 (the ViT's patch grid, ResNet-50's layer3, the pyramids' third stage at the quick scale
  and second at the paper scale, whose patch is 7), so the maps have the same resolution and
  the scores compare the models, not their grids. Another ``timm:`` model falls back to its
  last-stage map; each result records its grid.

Faithfulness scores compare a map with a lesion mask: the pointing game (is the map's
maximum inside the mask, dilated by a tolerance?), relevance mass (the share of positive
attribution inside the mask), relevance rank (the AUROC of attribution against the mask)
and a deletion curve (the target's probability as the top-ranked pixels are blacked out,
summarised as the area under the curve; lower is better).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

METHODS = ("saliency", "integrated_gradients", "smoothgrad", "gradcam")
CAM_STRIDE = 16  # input pixels per Grad-CAM cell
DELETION_FRACTIONS = tuple(i / 10 for i in range(11))


class _FeatureTap(nn.Module):
    """``head(tap(features(x)))``: the model's forward with an identity layer on its last-stage
    feature map (B, C, H, W), so that LayerGradCam has a layer to hook."""

    def __init__(self, features: Callable[[torch.Tensor], torch.Tensor],
                 head: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.features, self.head, self.tap = features, head, nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.tap(self.features(x)))


def _vit_tap(vit: nn.Module) -> _FeatureTap:
    """A columnar ViT's logit depends on the patch tokens only through the last block, so the
    map is taken at that block's input: the patch tokens laid on their grid."""
    prefix = getattr(vit, "num_prefix_tokens", 1)

    def features(x: torch.Tensor) -> torch.Tensor:
        tokens = vit.norm_pre(vit._pos_embed(vit.patch_embed(x)))
        for block in vit.blocks[:-1]:
            tokens = block(tokens)
        patches = tokens[:, prefix:]
        side = math.isqrt(patches.shape[1])
        features.prefix = tokens[:, :prefix]  # type: ignore[attr-defined]
        return patches.transpose(1, 2).reshape(tokens.shape[0], -1, side, side)

    def head(grid: torch.Tensor) -> torch.Tensor:
        patches = grid.flatten(2).transpose(1, 2)
        tokens = vit.blocks[-1](torch.cat([features.prefix, patches], dim=1))  # type: ignore[attr-defined]
        return vit.forward_head(vit.norm(tokens))

    return _FeatureTap(features, head)


def _closest_stride(strides: list[int], stride: int) -> int:
    """Index of the stride nearest ``stride`` by ratio; a tie goes to the coarser map."""
    return min(range(len(strides)), key=lambda i: (abs(math.log(strides[i] / stride)), -i))


def _resnet_tap(net: nn.Module, stride: int) -> _FeatureTap:
    """A timm ResNet split after the layer whose stride is nearest ``stride``."""
    layers = [f"layer{i}" for i in range(1, 5)]
    reduction = {info["module"]: info["reduction"] for info in net.feature_info}
    cut = _closest_stride([reduction[name] for name in layers], stride)

    def features(x: torch.Tensor) -> torch.Tensor:
        x = net.maxpool(net.act1(net.bn1(net.conv1(x))))
        for name in layers[:cut + 1]:
            x = getattr(net, name)(x)
        return x

    def head(fmap: torch.Tensor) -> torch.Tensor:
        for name in layers[cut + 1:]:
            fmap = getattr(net, name)(fmap)
        return net.forward_head(fmap)

    return _FeatureTap(features, head)


def _pyramid_tap(model: nn.Module, stride: int) -> _FeatureTap:
    """The pyramid split after the stage whose stride is nearest ``stride``."""
    strides = [model.cfg.image_size // stage.grid_size[0] for stage in model.stages]
    stages = _closest_stride(strides, stride) + 1
    return _FeatureTap(lambda x: model.stage_map(x, stages), lambda f: model.forward_from_stage_map(f, stages))


def feature_tap(model: nn.Module, stride: int = CAM_STRIDE) -> _FeatureTap:
    """The model with a hookable feature map at ``stride`` where it has one (its last-stage map
    otherwise), computing the same logits."""
    inner = getattr(model, "model", None)  # timm adapters keep the timm model here
    if inner is not None and hasattr(inner, "blocks") and hasattr(inner, "cls_token"):
        return _vit_tap(inner)  # one grid throughout: its patch size is its stride
    if inner is not None and all(hasattr(inner, n) for n in ("layer4", "feature_info", "conv1")):
        return _resnet_tap(inner, stride)
    if inner is not None:
        return _FeatureTap(inner.forward_features, inner.forward_head)
    if hasattr(model, "stage_map"):
        return _pyramid_tap(model, stride)
    return _FeatureTap(model.feature_map, model.forward_head)


def _reduce(attr: torch.Tensor, absolute: bool) -> torch.Tensor:
    """(B, C, H, W) attributions → (B, H, W): summed over channels (absolute first where asked)."""
    attr = attr.detach().float()
    return (attr.abs() if absolute else attr).sum(dim=1)


def attribute(model: nn.Module, method: str, images: torch.Tensor, targets: torch.Tensor, *, baseline: float,
              ig_steps: int = 32, internal_batch_size: int = 32, smoothgrad_samples: int = 16,
              smoothgrad_noise: float = 0.15, seed: int = 0) -> torch.Tensor:
    """(B, H, W) maps of ``method`` for ``targets``; the model must be in eval mode."""
    from captum.attr import IntegratedGradients, LayerGradCam, NoiseTunnel, Saliency

    images = images.detach().clone().requires_grad_(True)
    if method == "saliency":
        return _reduce(Saliency(model).attribute(images, target=targets, abs=True), absolute=True)
    if method == "integrated_gradients":
        ig = IntegratedGradients(model)
        attr = ig.attribute(images, baselines=torch.full_like(images, baseline), target=targets, n_steps=ig_steps,
                            internal_batch_size=internal_batch_size)
        return _reduce(attr, absolute=False)
    if method == "smoothgrad":
        spread = float(images.detach().max() - images.detach().min())
        with torch.random.fork_rng():
            torch.manual_seed(seed)  # the noise draws, so the same input gives the same map
            attr = NoiseTunnel(Saliency(model)).attribute(images, nt_type="smoothgrad", nt_samples=smoothgrad_samples,
                                                          stdevs=smoothgrad_noise * spread, target=targets, abs=True)
        return _reduce(attr, absolute=True)
    if method == "gradcam":
        tapped = feature_tap(model)
        cam = LayerGradCam(tapped, tapped.tap).attribute(images, target=targets, relu_attributions=True)
        cam = F.interpolate(cam.detach().float(), size=images.shape[-2:], mode="bilinear", align_corners=False)
        return cam[:, 0]
    raise ValueError(f"unknown attribution method {method!r}; valid: {', '.join(METHODS)}")


# --- faithfulness to a lesion mask (numpy, one image at a time) --------------------------------


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """A boolean mask grown by ``pixels`` in every direction (a square structuring element)."""
    if pixels <= 0:
        return mask.copy()
    padded = np.pad(mask, pixels)
    out = np.zeros_like(mask)
    h, w = mask.shape
    for dy in range(2 * pixels + 1):
        for dx in range(2 * pixels + 1):
            out |= padded[dy:dy + h, dx:dx + w]
    return out


def pointing_hit(saliency: np.ndarray, mask: np.ndarray, tolerance: int) -> float:
    """1 when the map's maximum falls inside the mask dilated by ``tolerance`` pixels.

    Where several pixels share the maximum (a flat map, a plateau of an upsampled coarse map)
    the hit is the share of them inside: the expected hit of a random pick among them, so a
    flat map scores the random baseline instead of whatever its first pixel happens to be.
    """
    peaks = saliency == saliency.max()
    return float(dilate(mask, tolerance)[peaks].mean())


def relevance_mass(saliency: np.ndarray, mask: np.ndarray) -> float | None:
    """The share of positive attribution inside the mask (None when the map has none)."""
    positive = np.clip(saliency, 0, None)
    total = positive.sum()
    return float(positive[mask].sum() / total) if total > 0 else None


def relevance_rank(saliency: np.ndarray, mask: np.ndarray) -> float | None:
    """AUROC of attribution as a score for "inside the mask" (ties share ranks); None without both sides."""
    inside = mask.ravel()
    n_in, n_out = int(inside.sum()), int((~inside).sum())
    if n_in == 0 or n_out == 0:
        return None
    ranks = _ranks(saliency.ravel()) + 1  # 1-based, ties sharing their mean rank
    return float((ranks[inside].sum() - n_in * (n_in + 1) / 2) / (n_in * n_out))


def deletion_inputs(image: torch.Tensor, saliency: np.ndarray, baseline: float) -> torch.Tensor:
    """The image with its top-ranked pixels set to ``baseline``, one copy per DELETION_FRACTIONS."""
    order = np.argsort(-saliency.ravel(), kind="mergesort")
    copies = image.unsqueeze(0).repeat(len(DELETION_FRACTIONS), 1, 1, 1)
    flat = copies.view(len(DELETION_FRACTIONS), image.shape[0], -1)
    for i, fraction in enumerate(DELETION_FRACTIONS):
        k = int(round(fraction * len(order)))
        if k:
            flat[i, :, torch.from_numpy(order[:k])] = baseline
    return copies


def deletion_auc(probabilities: np.ndarray) -> float:
    """Area under probability vs deleted fraction (trapezoids over DELETION_FRACTIONS)."""
    xs = np.asarray(DELETION_FRACTIONS)
    ys = np.asarray(probabilities, dtype=np.float64)
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2))


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation of two maps (None when either is constant)."""
    ra = _ranks(a.ravel())
    rb = _ranks(b.ravel())
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(first + (counts - 1) / 2.0, counts)
    return ranks


def bootstrap_mean(values: np.ndarray, n_resamples: int, seed: int) -> tuple[float, float, float]:
    """(mean, 2.5th, 97.5th percentile) of the mean over a bootstrap of the values."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_resamples, len(values)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(values.mean()), float(lo), float(hi)


def paired_tied(a: np.ndarray, b: np.ndarray, n_resamples: int, seed: int) -> bool:
    """Whether the 95% interval of a paired bootstrap of mean(a − b) over the same images contains zero."""
    diffs = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    _, lo, hi = bootstrap_mean(diffs, n_resamples, seed)
    return lo <= 0.0 <= hi
