"""Where Grad-CAM reads a model: a hookable feature map at a resolution fine enough to localise.

Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", ICCV 2017) weights a feature map by its pooled gradients, so its
map has that feature map's grid. A lesion of the synthetic set covers about 1.3% of the image,
less than one cell of a 4×4 grid: a perfect 4×4 map points inside it less than half the time.
So the tap is the **deepest** feature map whose grid has at least ``CAM_MIN_GRID`` cells per side
(the deepest, because later maps carry more of the class evidence; at least 8, because a perfect
8×8 map already points inside nearly every lesion). At the quick scale (64 px) that is an 8×8 map
for every built-in model: the pyramids' second stage, ResNet-50's layer2, the ViT's 8×8 patch grid.
At the paper scale (224 px): the pyramids' third stage (8×8), ResNet-50's layer3 and the ViT's
grid (14×14). Another ``timm:`` model falls back to its last-stage map; each result records the grid
and the pointing game a perfect map at that grid reaches (``baselines.grid_ceiling_map``).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

CAM_MIN_GRID = 8  # cells per side of the Grad-CAM map, at least


class FeatureTap(nn.Module):
    """``head(tap(features(x)))``: the model's forward with an identity layer on a feature map
    (B, C, H, W), so that LayerGradCam has a layer to hook."""

    def __init__(self, features: Callable[[torch.Tensor], torch.Tensor],
                 head: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.features, self.head, self.tap = features, head, nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.tap(self.features(x)))


def _vit_tap(vit: nn.Module) -> FeatureTap:
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

    return FeatureTap(features, head)


def deepest_fine_enough(grids: list[int], min_grid: int) -> int:
    """Index of the deepest map whose grid has at least ``min_grid`` cells per side (the finest
    map when none has)."""
    fine = [i for i, g in enumerate(grids) if g >= min_grid]
    return max(fine) if fine else max(range(len(grids)), key=lambda i: grids[i])


def _resnet_tap(net: nn.Module, image_size: int, min_grid: int) -> FeatureTap:
    """A timm ResNet split after the deepest layer whose grid is fine enough."""
    layers = [f"layer{i}" for i in range(1, 5)]
    reduction = {info["module"]: info["reduction"] for info in net.feature_info}
    cut = deepest_fine_enough([image_size // reduction[name] for name in layers], min_grid)

    def features(x: torch.Tensor) -> torch.Tensor:
        x = net.maxpool(net.act1(net.bn1(net.conv1(x))))
        for name in layers[:cut + 1]:
            x = getattr(net, name)(x)
        return x

    def head(fmap: torch.Tensor) -> torch.Tensor:
        for name in layers[cut + 1:]:
            fmap = getattr(net, name)(fmap)
        return net.forward_head(fmap)

    return FeatureTap(features, head)


def _pyramid_tap(model: nn.Module, min_grid: int) -> FeatureTap:
    """The pyramid split after the deepest stage whose grid is fine enough."""
    stages = deepest_fine_enough([stage.grid_size[0] for stage in model.stages], min_grid) + 1
    return FeatureTap(lambda x: model.stage_map(x, stages), lambda f: model.forward_from_stage_map(f, stages))


def feature_tap(model: nn.Module, image_size: int, min_grid: int = CAM_MIN_GRID) -> FeatureTap:
    """The model with a hookable feature map of at least ``min_grid`` cells per side where it has
    one (its last-stage map otherwise), computing the same logits."""
    inner = getattr(model, "model", None)  # timm adapters keep the timm model here
    if inner is not None and hasattr(inner, "blocks") and hasattr(inner, "cls_token"):
        return _vit_tap(inner)  # one grid throughout: its patch grid
    if inner is not None and all(hasattr(inner, n) for n in ("layer4", "feature_info", "conv1")):
        return _resnet_tap(inner, image_size, min_grid)
    if inner is not None:
        return FeatureTap(inner.forward_features, inner.forward_head)
    if hasattr(model, "stage_map"):
        return _pyramid_tap(model, min_grid)
    return FeatureTap(model.feature_map, model.forward_head)
