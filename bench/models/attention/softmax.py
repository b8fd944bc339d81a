"""Global multi-head softmax attention.

Vaswani et al., "Attention Is All You Need", NeurIPS 2017 (arXiv:1706.03762); used over
image patches by Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V,   Q, K, V = x W_q, x W_k, x W_v

per head (d = C / heads), followed by an output projection. Cost: O(N^2 C) time and
O(N^2) memory per head for the map (the fused kernel avoids storing it), plus O(N C^2)
for the projections.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.models.attention.base import ATTENTION, TokenAttention


@ATTENTION.register("softmax")
class SoftmaxAttention(TokenAttention):
    """Global attention; fused ``F.scaled_dot_product_attention`` unless a map is requested.

    Set ``fused = False`` to force the explicit softmax(QK^T/sqrt(d))V path; it is also
    taken whenever ``keep_attention`` is set, because the fused kernel never forms the map.
    Parameter names (``qkv``, ``proj``) follow ``timm.layers.Attention``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        grid_size: tuple[int, int],
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__(dim, num_heads, grid_size=grid_size, qkv_bias=qkv_bias,
                         attn_drop=attn_drop, proj_drop=proj_drop)
        self.scale = self.head_dim ** -0.5
        self.fused = True
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if self.fused and not self.keep_attention:
            x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop.p if self.training else 0.0)
        else:
            attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
            if self.keep_attention:
                self._record(attn)
            x = self.attn_drop(attn) @ v
        return self.proj_drop(self.proj(self._merge_heads(x)))
