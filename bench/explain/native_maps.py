"""Each model's own explanation map: what its token mixer weighs, read off the model itself.

``native_maps(model, name, images)`` runs the model once per chunk of images, in eval mode
under ``torch.no_grad``, with ``keep_attention`` set only on the blocks it reads (those
take the unfused path; the rest of the model runs as usual), and returns per image maps
(B, H, W) at the input size, each divided by its own maximum (so in [0, 1], with the most
weighted location at 1 and zero meaning zero weight). The model's train/eval modes,
``keep_attention`` flags and recorded maps are restored afterwards.

What each model gives (pyramids read their map stage: the highest-resolution stage whose
grid is larger than 1 x 1, stage 1 at both scales):

- softmax, performer, swin pyramids: attention rollout (Abnar & Zuidema, "Quantifying
  Attention Flow in Transformers", arXiv:2005.00928) within the map stage: the product,
  later blocks on the left, of row-renormalised 0.5 A + 0.5 I, with A the head-mean map
  of each block (Performer: its implicit map D^-1 phi(Q) phi(K)^T; Swin: its window maps
  stitched into one token map, zero between windows). The map is the attention each token
  RECEIVES: the rollout's mean over query rows.
- linformer pyramid: the effective token mixing A E is signed and its rows do not sum to
  1, so no rollout: the mean absolute weight each token gets in A E, over heads, queries
  and the stage's blocks (equal to attention received wherever the map is non-negative).
- fastformer pyramid: two maps, its pooling weights alpha (global query) and beta (global
  key), mean over heads and the stage's blocks; each sums to 1 over tokens.
- xca pyramids: none (XCA attends between channels); ``channel_map`` holds the d x d
  channel attention of the last block of the last stage.
- vit (any timm model with ``timm.layers.Attention``): CLS rollout over the blocks, the
  CLS token's row over the patch tokens (without a CLS token: attention received).
- resnet50 (any timm model without it): none, with a note.

Token grids are upsampled bilinearly onto the pixels the patch grid covers; pixels the
patch embedding drops (a remainder of the image size) get 0: the model never sees them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench.models.adapters import TimmAdapter
from bench.models.attention import FastformerAttention, LinformerAttention, TokenAttention, XCAttention
from bench.models.pyramid import PyramidTransformer

log = logging.getLogger(__name__)

# images per forward pass: bounds the (B, heads, N, N) maps held at once (12 MB per image
# and block at paper scale's 32 x 32 stage 1)
CHUNK_SIZE = 16
RESIDUAL_WEIGHT = 0.5  # rollout's 0.5 A + 0.5 I: the skip connection carries half the signal
NO_ATTENTION_NOTE = "convolutional: no attention"
SCALING = "upsampled bilinearly to the image and divided by its maximum"
ROLLOUT_RULE = "the product of row-renormalised 0.5·A + 0.5·I"


@dataclass(frozen=True)
class NativeMap:
    """One map per image: (B, H, W) float32 at the input size, each image's map in [0, 1]."""

    name: str
    description: str
    maps: torch.Tensor


@dataclass(frozen=True)
class NativeMaps:
    """A model's native maps; empty (with a note saying why) when it has no token map."""

    model: str
    maps: tuple[NativeMap, ...]
    note: str | None
    channel_map: torch.Tensor | None  # XCA only: (B, heads, d, d) of the last stage's last block


def rollout(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Attention rollout of per-block maps (B, heads, N, N), in forward order -> (B, N, N).

    Each block contributes row-renormalised 0.5 A + 0.5 I (A the mean over heads); block l
    multiplies from the left, so row i of the result is where token i's final state drew from.
    """
    result = None
    for attention in maps:
        mixed = attention.float().mean(dim=1)
        eye = torch.eye(mixed.shape[-1], dtype=mixed.dtype, device=mixed.device)
        mixed = (1 - RESIDUAL_WEIGHT) * mixed + RESIDUAL_WEIGHT * eye
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        result = mixed if result is None else mixed @ result
    if result is None:
        raise ValueError("rollout needs at least one attention map")
    return result


def received(attention: torch.Tensor) -> torch.Tensor:
    """Attention each token receives: the mean over query rows of (B, N, N) -> (B, N)."""
    return attention.mean(dim=-2)


def to_image(values: torch.Tensor, grid: tuple[int, int], covered: tuple[int, int],
             size: tuple[int, int]) -> torch.Tensor:
    """Token values (B, h*w) -> (B, H, W) at the input size, each image divided by its maximum.

    The grid is upsampled onto the ``covered`` pixels (top left); the rest is 0. An all-zero
    map stays zero.
    """
    covered = (min(covered[0], size[0]), min(covered[1], size[1]))
    image = values.float().reshape(-1, 1, *grid)
    image = F.interpolate(image, size=covered, mode="bilinear", align_corners=False)
    image = F.pad(image, (0, size[1] - covered[1], 0, size[0] - covered[0]))[:, 0].clamp_min(0)
    peak = image.amax(dim=(1, 2), keepdim=True)
    return (image / peak.clamp_min(torch.finfo(image.dtype).tiny)).clamp(0, 1)


@contextmanager
def _inspection(model: nn.Module) -> Iterator[None]:
    """Eval mode and no_grad inside; every module's mode and recording state restored after."""
    modes = [(m, m.training) for m in model.modules()]
    attention = [m for m in model.modules() if isinstance(m, TokenAttention)]
    flags = [(m, m.keep_attention, {a: getattr(m, a) for a in m.recorded_attributes}) for m in attention]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training
        for module, keep, recorded in flags:
            module.keep_attention = keep
            for name, value in recorded.items():
                setattr(module, name, value)


def map_stage(model: PyramidTransformer) -> int | None:
    """Index of the highest-resolution stage whose grid is larger than 1 x 1 (None if none is)."""
    for index, stage in enumerate(model.stages):
        if stage.grid_size[0] * stage.grid_size[1] > 1:
            return index
    return None


def _rollout_mechanism(model: PyramidTransformer, module: TokenAttention) -> tuple[str, str]:
    """(label, phrase naming A) for a pyramid whose blocks record a row-stochastic token map."""
    if model.cfg.attention == "performer":
        return "implicit attention rollout", "A the head-mean implicit FAVOR+ map D⁻¹φ(Q)φ(K)ᵀ of each image"
    if model.cfg.attention == "swin":
        wh, ww = module.window_size
        return ("window attention rollout",
                f"A the head-mean window softmax map stitched from its {wh}×{ww} windows (zero between windows)")
    if model.cfg.attention == "softmax":
        return "attention rollout", "A the head-mean softmax map softmax(QKᵀ/√d)"
    return "attention rollout", f"A the head-mean {model.cfg.attention} token map"


def _pyramid_maps(model: PyramidTransformer, name: str, images: torch.Tensor) -> NativeMaps:
    size = (images.shape[-2], images.shape[-1])
    first = model.stages[0].blocks[0].attn
    if isinstance(first, XCAttention):
        last = model.stages[-1].blocks[-1].attn
        last.keep_attention = True
        model(images)
        lpi = " (LPI's depthwise convolutions mix neighbouring tokens, with no attention weights)" \
            if last.local_mp is not None else ""
        note = ("XCA attends between channels, not tokens: its map is d×d, channel to channel, with no "
                f"token layout{lpi}; channel_map is the last stage's last block")
        return NativeMaps(name, (), note, last.last_channel_attention.float().cpu())
    index = map_stage(model)
    if index is None:
        return NativeMaps(name, (), "every stage's grid is 1×1: no spatial map", None)
    stage = model.stages[index]
    modules = [block.attn for block in stage.blocks]
    for module in modules:
        module.keep_attention = True
    model(images)

    (gh, gw), depth = stage.grid_size, len(modules)
    grid = model.grid_size
    covered = (grid[0] * model.cfg.patch_size, grid[1] * model.cfg.patch_size)
    where = f"the {gh}×{gw} stage-{index + 1} grid"
    blocks = f"{depth} block" + ("s" if depth > 1 else "")

    def native(label: str, description: str, values: torch.Tensor) -> NativeMap:
        return NativeMap(f"{label}, stage {index + 1}", f"{description}; {SCALING}.",
                         to_image(values, (gh, gw), covered, size).cpu())

    if isinstance(modules[0], FastformerAttention):
        alpha = torch.stack([m.last_alpha.float().mean(dim=1) for m in modules]).mean(dim=0)
        beta = torch.stack([m.last_beta.float().mean(dim=1) for m in modules]).mean(dim=0)
        return NativeMaps(name, (
            native("alpha (query pooling)", f"Fastformer's α on {where}: the softmax weight with which each token's "
                   f"query enters the global query, mean over heads and the stage's {blocks}", alpha),
            native("beta (key pooling)", f"Fastformer's β on {where}: the softmax weight with which each token's "
                   f"key, times the global query, enters the global key, mean over heads and the stage's {blocks}",
                   beta),
        ), None, None)
    if isinstance(modules[0], LinformerAttention):
        weights = torch.stack([m.last_attention.float().abs().mean(dim=(1, 2)) for m in modules]).mean(dim=0)
        return NativeMaps(name, (native(
            "effective token mixing",
            f"Mean absolute weight each token of {where} gets in Linformer's effective map A·E (A the softmax over "
            f"the k = {modules[0].proj_len} projected keys, E the learned k×N projection), over heads, queries "
            f"and the stage's {blocks}", weights),), None, None)
    if not modules[0].has_token_attention:
        return NativeMaps(name, (), f"{model.cfg.attention} attention records no token map", None)
    label, phrase = _rollout_mechanism(model, modules[0])
    values = received(rollout([m.last_attention for m in modules]))
    return NativeMaps(name, (native(
        label, f"Attention each token of {where} receives (mean over queries) in the rollout of the stage's "
        f"{blocks}: {ROLLOUT_RULE}, {phrase}", values),), None, None)


def _timm_maps(model: TimmAdapter, name: str, images: torch.Tensor) -> NativeMaps:
    if not model.has_token_attention:
        if any("attn" in type(m).__name__.lower() or "attention" in type(m).__name__.lower()
               for m in model.modules()):
            note = "its attention is not timm.layers.Attention softmax attention, whose maps the bench reads"
            return NativeMaps(name, (), note, None)
        return NativeMaps(name, (), NO_ATTENTION_NOTE, None)
    maps = model.attention_maps(images)
    # rollout needs one token count throughout: the leading run of blocks that share the first's
    run = next((i for i, m in enumerate(maps) if m.shape != maps[0].shape), len(maps))
    blocks = f"all {run} blocks" if run == len(maps) else f"the first {run} of {len(maps)} blocks"
    prefix = getattr(model.model, "num_prefix_tokens", 0)
    flow = rollout(maps[:run])
    gh, gw = model.token_grid(images, flow.shape[-1] - prefix)
    if getattr(model.model, "cls_token", None) is not None:
        values, label, what = flow[:, 0, prefix:], "CLS attention rollout", "the CLS token pays to each"
    else:
        values = received(flow[:, prefix:, prefix:])
        label, what = "attention rollout", "each patch query pays on average to each"
    patch = getattr(getattr(model.model, "patch_embed", None), "patch_size", None)
    size = (images.shape[-2], images.shape[-1])
    covered = (gh * patch[0], gw * patch[1]) if patch is not None else size
    description = (f"Attention {what} of the {gh}×{gw} patch tokens in the rollout over {blocks}: {ROLLOUT_RULE}, "
                   f"A the head-mean softmax map of each block; {SCALING}.")
    return NativeMaps(name, (NativeMap(label, description, to_image(values, (gh, gw), covered, size).cpu()),),
                      None, None)


def _concat(parts: list[NativeMaps]) -> NativeMaps:
    """Join per-chunk results along the batch."""
    head = parts[0]
    maps = tuple(NativeMap(m.name, m.description, torch.cat([p.maps[i].maps for p in parts]))
                 for i, m in enumerate(head.maps))
    channel = None if head.channel_map is None else torch.cat([p.channel_map for p in parts])
    return NativeMaps(head.model, maps, head.note, channel)


def native_maps(model: nn.Module, model_name: str, images: torch.Tensor) -> NativeMaps:
    """The model's native maps of ``images`` (B, C, H, W), on the CPU; see the module doc per model."""
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"{model_name}: images must be a non-empty (B, C, H, W) batch, got {tuple(images.shape)}")
    if isinstance(model, PyramidTransformer):
        extract = _pyramid_maps
    elif isinstance(model, TimmAdapter):
        extract = _timm_maps
    else:
        raise TypeError(f"{model_name}: native maps need a PyramidTransformer or a TimmAdapter, "
                        f"got {type(model).__name__}")
    with _inspection(model):
        parts = [extract(model, model_name, chunk) for chunk in images.split(CHUNK_SIZE)]
    result = _concat(parts)
    log.debug("%s: %d native map(s) of %d images%s", model_name, len(result.maps), images.shape[0],
              f" ({result.note})" if result.note else "")
    return result
