"""A thin wrapper that gives any timm model the bench's model interface.

``forward`` is the timm model's own classification forward. ``feature_map`` turns the
output of ``forward_features`` into (B, C, H, W) whatever its layout (NCHW, NHWC, or
tokens with prefix tokens). ``attention_maps`` recomputes, without the fused kernel,
the softmax map of every ``timm.layers.Attention`` the model runs (ViT, DeiT, ...); a
model with none (a CNN, or attention of another kind) reports None.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bench.core.compat import ensure_torchvision

ensure_torchvision()
from timm.layers import Attention  # noqa: E402 - needs the torchvision fix first


def _softmax_map(module: Attention, x: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T * scale) (B, heads, N, N) of a timm ``Attention`` for its input x (B, N, C)."""
    b, n, _ = x.shape
    qkv = module.qkv(x).reshape(b, n, 3, module.num_heads, module.head_dim).permute(2, 0, 3, 1, 4)
    q, k, _ = qkv.unbind(0)
    q, k = module.q_norm(q), module.k_norm(k)
    return ((q * module.scale) @ k.transpose(-2, -1)).softmax(dim=-1)


class TimmAdapter(nn.Module):
    """Wraps a timm model; ``forward`` is untouched."""

    def __init__(self, model: nn.Module, name: str) -> None:
        super().__init__()
        self.model = model
        self.name = name
        self.num_classes = model.num_classes
        self.has_token_attention = any(type(m) is Attention for m in model.modules())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Last-stage features (B, C, H, W) from ``forward_features``."""
        feats = self.model.forward_features(x)
        if feats.ndim == 4:
            return feats.permute(0, 3, 1, 2) if getattr(self.model, "output_fmt", "NCHW") == "NHWC" else feats
        if feats.ndim != 3:
            raise ValueError(f"{self.name}: forward_features returned shape {tuple(feats.shape)}, "
                             "expected (B, C, H, W) or (B, N, C)")
        tokens = feats[:, getattr(self.model, "num_prefix_tokens", 0):]
        h, w = self.token_grid(x, tokens.shape[1])
        return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, h, w)

    def token_grid(self, x: torch.Tensor, n: int) -> tuple[int, int]:
        """(h, w) of the n patch tokens of input x: the patch grid, else the square n tokens fill."""
        patch = getattr(getattr(self.model, "patch_embed", None), "patch_size", None)
        if patch is not None:
            h, w = x.shape[-2] // patch[0], x.shape[-1] // patch[1]
            if h * w == n:
                return h, w
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(f"{self.name}: cannot lay {n} tokens out on a square grid")
        return side, side

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor] | None:
        """Per attention block, the (B, heads, N, N) map (N includes prefix tokens); None without any."""
        if not self.has_token_attention:
            return None
        maps: list[torch.Tensor] = []

        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            maps.append(_softmax_map(module, args[0] if args else kwargs["x"]))

        handles = [m.register_forward_pre_hook(hook, with_kwargs=True)
                   for m in self.model.modules() if type(m) is Attention]
        try:
            self.model(x)
        finally:
            for handle in handles:
                handle.remove()
        return maps
