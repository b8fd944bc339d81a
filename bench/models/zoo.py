"""The model zoo: small registered entry points that only fill a config.

In the manner of timm's ``@register_model``: each entry takes the scale and the data
shape and returns a model. Two scales exist:

- ``quick``: 64 px, narrow models, sized so that a training step on a batch of 64 takes
  about 0.1 s on 2 CPU cores; a whole suite trains in minutes.
- ``paper``: 224 px; the pyramid is patch 7, dims 96/192/384/768, depths 2/2/6/2, heads
  3/6/12/24, MLP ratio 4 (about 28M parameters with a 10-class head); ``vit`` is
  ViT-S/16-like; ``resnet50`` is the standard ResNet-50.

``timm:<name>`` builds any timm architecture (no pretrained weights).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable

import torch
from torch import nn

from bench._compat import import_timm
from bench.models.adapters import TimmAdapter
from bench.models.pyramid import PyramidConfig, PyramidTransformer
from bench.registry import Registry

log = logging.getLogger(__name__)

timm = import_timm()

SCALES = ("quick", "paper")
TIMM_PREFIX = "timm:"
_IMAGE_SIZES = {"quick": 64, "paper": 224}

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")

_PYRAMID = {
    "quick": PyramidConfig(patch_size=4, dims=(32, 64, 128, 256), depths=(1, 1, 2, 1), heads=(1, 2, 4, 8),
                           drop_path_rate=0.0),
    "paper": PyramidConfig(patch_size=7, dims=(96, 192, 384, 768), depths=(2, 2, 6, 2), heads=(3, 6, 12, 24),
                           drop_path_rate=0.1),
}
_VIT = {
    "quick": dict(patch_size=8, embed_dim=64, depth=4, num_heads=2),
    "paper": dict(patch_size=16, embed_dim=384, depth=12, num_heads=6),  # ViT-S/16
}
_RESNET_CHANNELS = {"quick": (16, 32, 64, 128), "paper": (64, 128, 256, 512)}


def default_image_size(scale: str) -> int:
    """Input side length of a scale: quick 64, paper 224."""
    _check_scale(scale)
    return _IMAGE_SIZES[scale]


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"unknown model scale {scale!r}; valid scales: {', '.join(SCALES)}")


def _pyramid(attention: str, scale: str, options: dict[str, Any] | None = None, **kwargs: Any) -> nn.Module:
    cfg = dataclasses.replace(_PYRAMID[scale], attention=attention, attention_options=options or {}, **kwargs)
    return PyramidTransformer(cfg)


@MODELS.register()
def pyramid_softmax(scale: str, **kwargs: Any) -> nn.Module:
    """Pyramid with global softmax attention (fused SDPA)."""
    return _pyramid("softmax", scale, **kwargs)


@MODELS.register()
def pyramid_linformer(scale: str, **kwargs: Any) -> nn.Module:
    """Pyramid with Linformer attention, k = min(N, 64 quick / 256 paper), param-matched."""
    return _pyramid("linformer", scale, {"proj_len": {"quick": 64, "paper": 256}[scale]}, match_params=True, **kwargs)


@MODELS.register()
def pyramid_performer(scale: str, **kwargs: Any) -> nn.Module:
    """Pyramid with Performer (FAVOR+) attention."""
    # m = d ln d random features at paper scale (111 for d = 32); 2d at quick, for the time budget
    return _pyramid("performer", scale, {"num_features": {"quick": 64, "paper": None}[scale]}, **kwargs)


@MODELS.register()
def pyramid_fastformer(scale: str, **kwargs: Any) -> nn.Module:
    """Pyramid with Fastformer additive attention."""
    return _pyramid("fastformer", scale, **kwargs)


@MODELS.register()
def pyramid_xca(scale: str, **kwargs: Any) -> nn.Module:
    """Pyramid with cross-covariance attention plus LPI."""
    return _pyramid("xca", scale, {"lpi": True}, **kwargs)


@MODELS.register()
def pyramid_swin(scale: str, **kwargs: Any) -> nn.Module:
    """Pyramid with shifted-window attention (window 4 quick, 7 paper)."""
    return _pyramid("swin", scale, {"window_size": {"quick": 4, "paper": 7}[scale]}, **kwargs)


@MODELS.register()
def vit(scale: str, *, image_size: int, in_chans: int, num_classes: int) -> nn.Module:
    """timm VisionTransformer with a CLS token; ViT-S/16 at paper scale."""
    from timm.models.vision_transformer import VisionTransformer

    model = VisionTransformer(img_size=image_size, in_chans=in_chans, num_classes=num_classes,
                              class_token=True, global_pool="token", **_VIT[scale])
    return TimmAdapter(model, "vit")


@MODELS.register()
def resnet50(scale: str, *, image_size: int, in_chans: int, num_classes: int) -> nn.Module:
    """timm ResNet, Bottleneck blocks [3, 4, 6, 3]; standard widths at paper scale, 1/4 at quick."""
    from timm.models.resnet import Bottleneck, ResNet

    channels = _RESNET_CHANNELS[scale]
    model = ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, in_chans=in_chans,
                   channels=channels, stem_width=channels[0])
    # channels-last weights make CPU convolutions (oneDNN) markedly faster; the input may stay NCHW
    return TimmAdapter(model.to(memory_format=torch.channels_last), "resnet50")


def _timm_model(name: str, *, image_size: int, in_chans: int, num_classes: int) -> nn.Module:
    if name not in timm.list_models():
        raise KeyError(f"unknown timm model {name!r}; see timm.list_models() for valid names")
    kwargs = dict(pretrained=False, num_classes=num_classes, in_chans=in_chans)
    try:  # transformers need the input size up front; CNNs take any size and reject the argument
        model = timm.create_model(name, img_size=image_size, **kwargs)
    except TypeError as exc:
        if "img_size" not in str(exc):
            raise
        model = timm.create_model(name, **kwargs)
    return TimmAdapter(model, f"{TIMM_PREFIX}{name}")


def list_models() -> list[str]:
    """Registered model names (``timm:<name>`` is accepted by ``create_model`` as well)."""
    return MODELS.names()


def create_model(name: str, scale: str = "quick", *, num_classes: int = 10, in_chans: int = 1,
                 image_size: int | None = None) -> nn.Module:
    """Build a registered model (or ``timm:<name>``) at a scale; unknown names raise KeyError."""
    _check_scale(scale)
    image_size = image_size or default_image_size(scale)
    if name.startswith(TIMM_PREFIX):
        return _timm_model(name[len(TIMM_PREFIX):], image_size=image_size, in_chans=in_chans,
                           num_classes=num_classes)
    if name not in MODELS:
        valid = ", ".join(MODELS.names())
        raise KeyError(f"unknown model {name!r}; valid names: {valid}, or {TIMM_PREFIX}<any timm model>")
    model = MODELS.get(name)(scale, image_size=image_size, in_chans=in_chans, num_classes=num_classes)
    log.debug("created %s (%s, %d px): %d parameters", name, scale, image_size,
              sum(p.numel() for p in model.parameters()))
    return model
