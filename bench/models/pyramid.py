"""The shared pyramid backbone: only the attention module changes between variants.

After Hong et al., "Fair Comparison between Efficient Attentions" (2022): a conv patch
embedding (kernel = stride = patch) with a learned absolute position embedding, four
stages of pre-norm blocks (attention + MLP, with DropPath) joined by 2x2 patch merging,
then a final norm, mean pooling and a linear head. Every variant is built by the same
``PyramidTransformer(PyramidConfig(attention=..., attention_options=...))``.

Parameter matching: with ``match_params=True`` every block's MLP hidden width is scaled
by one common factor so that the model has the parameter count of the softmax pyramid of
the same config (to within rounding). Only Linformer needs it: its N x k projections
grow with the token count.

Per-stage options: ``stage_options`` (one dict per stage) overrides ``attention_options``
in that stage, for mechanisms whose right setting depends on the stage's grid (Linformer's
k, Swin's window). What every block was built with is read back from the built model by
``attention_settings()`` and ``stage_setting(key)``, not from the config.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from bench.core.compat import ensure_torchvision
from bench.models.attention import ATTENTION, TokenAttention

ensure_torchvision()
from timm.layers import DropPath, Mlp, trunc_normal_  # noqa: E402 - needs the torchvision fix first
from timm.models.swin_transformer import PatchMerging  # noqa: E402

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PyramidConfig:
    """Everything that defines a pyramid model; ``bench.models.zoo`` fills it per variant and scale."""

    attention: str = "softmax"
    attention_options: dict[str, Any] = field(default_factory=dict)
    stage_options: tuple[dict[str, Any], ...] = ()
    image_size: int = 224
    in_chans: int = 1
    num_classes: int = 10
    patch_size: int = 7
    dims: tuple[int, ...] = (96, 192, 384, 768)
    depths: tuple[int, ...] = (2, 2, 6, 2)
    heads: tuple[int, ...] = (3, 6, 12, 24)
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.1
    match_params: bool = False

    def __post_init__(self) -> None:
        if not len(self.dims) == len(self.depths) == len(self.heads):
            raise ValueError(f"PyramidConfig: dims {self.dims}, depths {self.depths} and heads {self.heads} "
                             "must have one entry per stage")
        if self.image_size < self.patch_size:
            raise ValueError(f"PyramidConfig: image_size {self.image_size} is smaller than "
                             f"patch_size {self.patch_size}")
        if self.stage_options and len(self.stage_options) != len(self.dims):
            raise ValueError(f"PyramidConfig: stage_options has {len(self.stage_options)} entries, "
                             f"expected one per stage ({len(self.dims)}) or none")
        if self.attention not in ATTENTION:
            ATTENTION.get(self.attention)  # raises KeyError listing the valid names

    def options(self, stage: int, block: int) -> dict[str, Any]:
        """Options of block ``block`` of stage ``stage``: shared, then the stage's, then the block's."""
        per_stage = self.stage_options[stage] if self.stage_options else {}
        block_options = ATTENTION.get(self.attention).block_options(block, self.depths[stage])
        return {**self.attention_options, **per_stage, **block_options}

    @property
    def grid_sizes(self) -> list[tuple[int, int]]:
        """Token grid of each stage: patch grid (the conv drops a remainder), halved (rounded up) per merge."""
        g = self.image_size // self.patch_size
        sizes = [(g, g)]
        for _ in self.dims[1:]:
            g = math.ceil(g / 2)
            sizes.append((g, g))
        return sizes


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, attention: TokenAttention, dim: int, mlp_hidden: int, drop: float, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = attention
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden_features=mlp_hidden, drop=drop)
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
        x = x + self.drop_path1(self.attn(self.norm1(x), grid_size))
        return x + self.drop_path2(self.mlp(self.norm2(x)))


class Stage(nn.Module):
    """Optional 2x2 patch merging, then the stage's blocks on a fixed grid."""

    def __init__(self, downsample: nn.Module | None, blocks: list[Block], grid_size: tuple[int, int]) -> None:
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.ModuleList(blocks)
        self.grid_size = grid_size

    def forward(self, x: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
        if self.downsample is not None:
            b, _, c = x.shape
            x = self.downsample(x.view(b, *grid_size, c)).flatten(1, 2)
        for block in self.blocks:
            x = block(x, self.grid_size)
        return x


def _attention_params(cfg: PyramidConfig) -> int:
    """Parameters of all attention modules of ``cfg``, counted on the meta device."""
    cls = ATTENTION.get(cfg.attention)
    total = 0
    with torch.device("meta"):
        for s, (dim, depth, heads, grid) in enumerate(zip(cfg.dims, cfg.depths, cfg.heads, cfg.grid_sizes)):
            for i in range(depth):
                module = cls(dim, heads, grid_size=grid, qkv_bias=cfg.qkv_bias, **cfg.options(s, i))
                total += sum(p.numel() for p in module.parameters())
    return total


def mlp_hidden_widths(cfg: PyramidConfig) -> list[list[int]]:
    """MLP hidden width per block; narrowed uniformly when ``match_params`` asks for it."""
    ratio = cfg.mlp_ratio
    if cfg.match_params and cfg.attention != "softmax":
        softmax = dataclasses.replace(cfg, attention="softmax", attention_options={}, stage_options=())
        extra = _attention_params(cfg) - _attention_params(softmax)
        # an MLP of hidden width h over dim C has h (2C + 1) + C parameters
        params_per_unit_ratio = sum(depth * dim * (2 * dim + 1) for dim, depth in zip(cfg.dims, cfg.depths))
        ratio = cfg.mlp_ratio - extra / params_per_unit_ratio
        if ratio <= 0:
            raise ValueError(f"PyramidConfig: {cfg.attention} adds {extra} attention parameters, more than "
                             "the MLPs can give up; lower its options or disable match_params")
        log.debug("%s: MLP ratio %.4f instead of %.4f to absorb %d parameters", cfg.attention, ratio,
                  cfg.mlp_ratio, extra)
    return [[max(1, round(dim * ratio))] * depth for dim, depth in zip(cfg.dims, cfg.depths)]


class PyramidTransformer(nn.Module):
    """Four-stage hierarchical transformer whose token mixer is ``ATTENTION[cfg.attention]``."""

    def __init__(self, cfg: PyramidConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_classes = cfg.num_classes
        attention_cls = ATTENTION.get(cfg.attention)
        self.has_token_attention = attention_cls.has_token_attention
        grids = cfg.grid_sizes
        self.grid_size = grids[0]

        self.patch_embed = nn.Conv2d(cfg.in_chans, cfg.dims[0], kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.embed_norm = nn.LayerNorm(cfg.dims[0])
        self.pos_embed = nn.Parameter(torch.zeros(1, grids[0][0] * grids[0][1], cfg.dims[0]))
        self.pos_drop = nn.Dropout(cfg.drop_rate)

        n = sum(cfg.depths)
        drop_paths = [cfg.drop_path_rate * i / max(1, n - 1) for i in range(n)]  # linear in depth
        hidden = mlp_hidden_widths(cfg)
        stages, k = [], 0
        for s, (dim, depth, heads, grid) in enumerate(zip(cfg.dims, cfg.depths, cfg.heads, grids)):
            blocks = []
            for i in range(depth):
                attention = attention_cls(dim, heads, grid_size=grid, qkv_bias=cfg.qkv_bias,
                                          attn_drop=cfg.attn_drop_rate, proj_drop=cfg.drop_rate, **cfg.options(s, i))
                blocks.append(Block(attention, dim, hidden[s][i], cfg.drop_rate, drop_paths[k]))
                k += 1
            downsample = PatchMerging(cfg.dims[s - 1], dim) if s > 0 else None
            stages.append(Stage(downsample, blocks, grid))
        self.stages = nn.ModuleList(stages)
        self.norm = nn.LayerNorm(cfg.dims[-1])
        self.head_drop = nn.Dropout(cfg.drop_rate)
        self.head = nn.Linear(cfg.dims[-1], cfg.num_classes)

        trunc_normal_(self.pos_embed, std=0.02)
        self.apply(_init_weights)

    def attention_modules(self) -> list[TokenAttention]:
        return [block.attn for stage in self.stages for block in stage.blocks]

    def attention_settings(self) -> list[list[dict[str, Any]]]:
        """Per stage, per block, what the attention module was built with (its ``settings()``)."""
        return [[block.attn.settings() for block in stage.blocks] for stage in self.stages]

    def stage_setting(self, key: str) -> list[Any]:
        """Per stage, one setting, e.g. Linformer's k: ``stage_setting("proj_len")``.

        A value the stage's blocks share is given once; otherwise the stage gets a list of
        its blocks' values (Swin's ``shift_size`` alternates).
        """
        values = []
        for stage in self.attention_settings():
            per_block = [block[key] for block in stage]
            values.append(per_block[0] if all(v == per_block[0] for v in per_block) else per_block)
        return values

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, in_chans, H, W) -> position-embedded patch tokens (B, N, C) on ``grid_size``."""
        x = self.patch_embed(x)
        if tuple(x.shape[-2:]) != self.grid_size:
            raise ValueError(f"{self.cfg.attention} pyramid was built for {self.cfg.image_size}px input, got "
                             f"{tuple(x.shape[-2:])} patches; create the model with image_size set")
        return self.pos_drop(self.embed_norm(x.flatten(2).transpose(1, 2)) + self.pos_embed)

    def _run_stages(self, x: torch.Tensor, grid: tuple[int, int], start: int, stop: int
                    ) -> tuple[torch.Tensor, tuple[int, int]]:
        for stage in self.stages[start:stop]:
            x = stage(x, grid)
            grid = stage.grid_size
        return x, grid

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, in_chans, H, W) -> final-normed last-stage tokens (B, N, C)."""
        x, _ = self._run_stages(self._embed(x), self.grid_size, 0, len(self.stages))
        return self.norm(x)

    def stage_map(self, x: torch.Tensor, stages: int) -> torch.Tensor:
        """The tokens after the first ``stages`` stages, on their grid (B, C, H, W), before any norm."""
        tokens, (h, w) = self._run_stages(self._embed(x), self.grid_size, 0, stages)
        return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, h, w)

    def forward_from_stage_map(self, fmap: torch.Tensor, stages: int) -> torch.Tensor:
        """Logits from ``stage_map(x, stages)``: the remaining stages, the final norm and the head."""
        tokens, _ = self._run_stages(fmap.flatten(2).transpose(1, 2), tuple(fmap.shape[-2:]), stages, len(self.stages))
        return self.head(self.head_drop(self.norm(tokens).mean(dim=1)))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Feature map (B, C, H, W) -> logits, so that ``forward = forward_head(feature_map)``."""
        return self.head(self.head_drop(features.mean(dim=(2, 3))))

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Last-stage features (B, C, H, W) after the final norm."""
        tokens = self.forward_features(x)
        h, w = self.stages[-1].grid_size
        return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_drop(self.forward_features(x).mean(dim=1)))

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor] | None:
        """Per block, the (B, heads, N, N) token map; None when the attention has none.

        Runs one forward pass in the current mode; call it in eval mode for reproducible maps.
        """
        if not self.has_token_attention:
            return None
        modules = self.attention_modules()
        try:
            for m in modules:
                m.keep_attention = True
            self(x)
            return [m.last_attention for m in modules]
        finally:
            for m in modules:
                m.keep_attention = False
                m.clear_attention()


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
