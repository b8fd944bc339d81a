"""The model zoo: small registered entry points that only fill a config.

In the manner of timm's ``@register_model``: each entry takes the scale and the data
shape and returns a model. Two scales exist:

- ``quick``: 64 px, narrow models, sized so that a training step on a batch of 32 takes
  about 70 ms on one CPU core; a whole suite trains in minutes. Pyramid: patch 4, dims
  24/48/96/192, depths 1/1/2/1, heads 1/2/4/8 (grids 16/8/4/2), about 0.81M parameters.
  Width 24 is a cost choice: it trains about 1.5x faster per epoch than width 32 (1.43M).
- ``paper``: 224 px; the pyramid is patch 7, dims 96/192/384/768, depths 2/2/6/2, heads
  3/6/12/24, MLP ratio 4 (grids 32/16/8/4), about 27.6M parameters with a 10-class head;
  ``resnet50`` is the standard ResNet-50.

Every mechanism a model is named after really runs at both scales (tests/models/
test_mechanisms.py checks the built models):

- Swin: window 4 at both scales, clamped per stage by ``swin_stage_windows`` to half the
  grid, the last stage one global window. Quick: windows 4/4/2/2; paper: 4/4/4/4. All
  tile their grids (no padding). At paper scale this is Swin-T's layout in pixels and in
  windows (28 px windows; 8x8, 4x4, 2x2, 1x1 windows per stage), where window 8 would
  leave stage 3, half the blocks, one global window. Within a stage regular and shifted
  blocks alternate, ending on a shifted one, so 3 of the quick pyramid's 5 blocks shift
  (stage 4's 2x2 grid is one window and cannot) and 5 of the paper pyramid's 10 windowed ones.
- Linformer: k = min(64 quick / 256 paper, N // 2) per stage (``linformer_proj_lens``):
  quick 64/32/8/2, paper 256/128/32/8; param-matched by narrowing the MLPs.
- Performer: random features redrawn every 100 training forwards, never in eval.
- XCA: ``pyramid_xca`` has LPI, ``pyramid_xca_nolpi`` is the ablation without it.
- ``vit``: a timm VisionTransformer with a CLS token, sized to the pyramids' parameter
  count (within 10%): quick patch 8, dim 96, depth 7, 4 heads (0.80M): an 8x8 grid of 64
  patch tokens, the fewest that still lets global attention see the image at a resolution
  near the pyramids' (their first stage has 256); paper patch 16, dim 432, depth 12, 6
  heads (27.1M; ViT-S/16, at 21.5M, would be 22% smaller). ViT-S/16 itself is
  ``timm:vit_small_patch16_224``. Being columnar, the quick ViT runs all 65 tokens (64
  patches and the class token) through every block, so it costs several times the quick
  pyramid's GMACs at the same parameter count (``medbench models`` prints both).

``timm:<name>`` builds any timm architecture (no pretrained weights).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable

import torch
from torch import nn

from bench.core.compat import import_timm
from bench.core.registry import Registry
from bench.models.adapters import TimmAdapter
from bench.models.pyramid import PyramidConfig, PyramidTransformer

log = logging.getLogger(__name__)

timm = import_timm()

SCALES = ("quick", "paper")
TIMM_PREFIX = "timm:"
_IMAGE_SIZES = {"quick": 64, "paper": 224}

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")

_PYRAMID = {
    "quick": PyramidConfig(patch_size=4, dims=(24, 48, 96, 192), depths=(1, 1, 2, 1), heads=(1, 2, 4, 8),
                           drop_path_rate=0.0),
    "paper": PyramidConfig(patch_size=7, dims=(96, 192, 384, 768), depths=(2, 2, 6, 2), heads=(3, 6, 12, 24),
                           drop_path_rate=0.1),
}
_SWIN_WINDOW = {"quick": 4, "paper": 4}
_LINFORMER_K = {"quick": 64, "paper": 256}
# training forwards per draw of the random features, both scales: tens of draws in a quick run
_PERFORMER_REDRAW = 100
_VIT = {
    "quick": dict(patch_size=8, embed_dim=96, depth=7, num_heads=4),
    "paper": dict(patch_size=16, embed_dim=432, depth=12, num_heads=6),
}
_RESNET_CHANNELS = {"quick": (12, 24, 48, 96), "paper": (64, 128, 256, 512)}


def default_image_size(scale: str) -> int:
    """Input side length of a scale: quick 64, paper 224."""
    _check_scale(scale)
    return _IMAGE_SIZES[scale]


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"unknown model scale {scale!r}; valid scales: {', '.join(SCALES)}")


def swin_stage_windows(grids: list[tuple[int, int]], window: int) -> list[int]:
    """Swin's window per stage: ``window`` clamped to half the grid; the last stage one global window.

    Half the grid leaves at least 2 x 2 windows, so the stage's shifted blocks really shift
    (a window as large as the grid cannot); below a 2-token window the stage is global. The
    last stage is one global window, as in Swin-T (its 7 x 7 last grid, window 7).
    """
    windows = []
    for s, (h, w) in enumerate(grids):
        clamped = min(window, min(h, w) // 2)
        windows.append(max(h, w) if s == len(grids) - 1 or clamped < 2 else clamped)
    return windows


def linformer_proj_lens(grids: list[tuple[int, int]], proj_len: int) -> list[int]:
    """Linformer's k per stage: min(proj_len, N // 2), so every stage compresses at least twofold."""
    return [max(1, min(proj_len, h * w // 2)) for h, w in grids]


def _pyramid(attention: str, scale: str, options: dict[str, Any] | None = None,
             per_stage: Callable[[list[tuple[int, int]]], list[dict[str, Any]]] | None = None,
             **kwargs: Any) -> nn.Module:
    """``per_stage(grids)`` gives each stage's option overrides, from the grids of the final config."""
    cfg = dataclasses.replace(_PYRAMID[scale], attention=attention, attention_options=options or {}, **kwargs)
    if per_stage is not None:
        cfg = dataclasses.replace(cfg, stage_options=tuple(per_stage(cfg.grid_sizes)))
    return PyramidTransformer(cfg)


@MODELS.register()
def pyramid_softmax(scale: str, **kwargs: Any) -> nn.Module:
    """Pyramid with global softmax attention (fused SDPA)."""
    return _pyramid("softmax", scale, **kwargs)


@MODELS.register()
def pyramid_linformer(scale: str, **kwargs: Any) -> nn.Module:
    """Pyramid with Linformer attention, k = min(64 quick / 256 paper, N // 2) per stage, param-matched."""
    def per_stage(grids: list[tuple[int, int]]) -> list[dict[str, Any]]:
        return [{"proj_len": k} for k in linformer_proj_lens(grids, _LINFORMER_K[scale])]

    return _pyramid("linformer", scale, per_stage=per_stage, match_params=True, **kwargs)


@MODELS.register()
def pyramid_performer(scale: str, **kwargs: Any) -> nn.Module:
    """Pyramid with Performer (FAVOR+) attention, features redrawn every 100 training forwards."""
    # m = d ln d random features at paper scale (111 for d = 32); 64 (8/3 d for d = 24) at quick, for the time budget
    options = {"num_features": {"quick": 64, "paper": None}[scale], "redraw_interval": _PERFORMER_REDRAW}
    return _pyramid("performer", scale, options, **kwargs)


@MODELS.register()
def pyramid_fastformer(scale: str, **kwargs: Any) -> nn.Module:
    """Pyramid with Fastformer additive attention."""
    return _pyramid("fastformer", scale, **kwargs)


@MODELS.register()
def pyramid_xca(scale: str, **kwargs: Any) -> nn.Module:
    """Pyramid with cross-covariance attention plus LPI (XCiT's token mixing)."""
    return _pyramid("xca", scale, {"lpi": True}, **kwargs)


@MODELS.register()
def pyramid_xca_nolpi(scale: str, **kwargs: Any) -> nn.Module:
    """Ablation: XCA without LPI; tokens then interact only through the d x d channel map.

    Otherwise identical to ``pyramid_xca``, so the pair isolates LPI. Not narrowed by
    ``match_params``: without LPI it has only h temperatures per block more than softmax.
    """
    return _pyramid("xca", scale, {"lpi": False}, **kwargs)


@MODELS.register()
def pyramid_swin(scale: str, **kwargs: Any) -> nn.Module:
    """Pyramid with shifted-window attention; windows per stage from ``swin_stage_windows``."""
    def per_stage(grids: list[tuple[int, int]]) -> list[dict[str, Any]]:
        return [{"window_size": w} for w in swin_stage_windows(grids, _SWIN_WINDOW[scale])]

    return _pyramid("swin", scale, per_stage=per_stage, **kwargs)


@MODELS.register()
def vit(scale: str, *, image_size: int, in_chans: int, num_classes: int) -> nn.Module:
    """timm VisionTransformer with a CLS token, sized to the pyramids' parameter count (see module doc)."""
    from timm.models.vision_transformer import VisionTransformer

    model = VisionTransformer(img_size=image_size, in_chans=in_chans, num_classes=num_classes,
                              class_token=True, global_pool="token", **_VIT[scale])
    return TimmAdapter(model, "vit")


@MODELS.register()
def resnet50(scale: str, *, image_size: int, in_chans: int, num_classes: int) -> nn.Module:
    """timm ResNet, Bottleneck blocks [3, 4, 6, 3]; standard widths at paper scale, 3/16 at quick."""
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
