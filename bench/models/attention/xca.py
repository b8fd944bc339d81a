"""Cross-covariance attention (XCA), optionally with local patch interaction (LPI).

El-Nouby et al., "XCiT: Cross-Covariance Image Transformers", NeurIPS 2021
(arXiv:2106.09681).

    XCA(Q, K, V) = V softmax(K_hat^T Q_hat * tau),   Q_hat, K_hat: columns L2-normalised over tokens

per head, with a learned temperature tau per head. The map is d x d (channels attend to
channels), so the cost is O(N C^2 / h) time and O(d^2) memory per head: linear in N.
XCA mixes no information between tokens; LPI adds it: a depthwise 3x3 conv, GELU,
BatchNorm and a second depthwise 3x3 conv on the token grid, O(N C).

Placement of LPI: XCiT applies it as its own residual sub-block after XCA. The shared
pyramid block has one token-mixing slot, so here the two run in parallel on the block's
normalised input, out = XCA(x) + LPI(x), at the same cost. Parameter names (``qkv``,
``temperature``, ``proj``, ``local_mp``) follow ``timm.models.xcit``. Whether LPI is
on is in ``settings()``; the zoo registers ``pyramid_xca`` (with) and
``pyramid_xca_nolpi`` (without, the ablation that isolates what XCA alone does).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.core.compat import ensure_torchvision
from bench.models.attention.base import ATTENTION, TokenAttention

ensure_torchvision()
from timm.models.xcit import LPI  # noqa: E402 - needs the torchvision fix first


@ATTENTION.register("xca")
class XCAttention(TokenAttention):
    """Cross-covariance attention; ``lpi`` adds the local patch interaction branch.

    With ``keep_attention`` set, ``last_channel_attention`` (B, heads, d, d) keeps the
    channel-to-channel softmax map before dropout (rows sum to 1). There is no token map.
    """

    has_token_attention = False
    recorded_attributes = ("last_attention", "last_channel_attention")

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        grid_size: tuple[int, int],
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        lpi: bool = True,
    ) -> None:
        super().__init__(dim, num_heads, grid_size=grid_size, qkv_bias=qkv_bias,
                         attn_drop=attn_drop, proj_drop=proj_drop)
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.local_mp = LPI(dim) if lpi else None
        self.last_channel_attention: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
        self._check_input(x, grid_size)
        b, n, c = x.shape
        # (3, B, h, d, N): channels play the role of tokens
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 4, 1)
        q, k, v = qkv.unbind(0)
        q = F.normalize(q, dim=-1) * self.temperature
        k = F.normalize(k, dim=-1)
        # Explicit d x d map: the fused kernel suits a "sequence" of d channels with head size N badly.
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        if self.keep_attention:
            self.last_channel_attention = attn.detach()
        out = self.attn_drop(attn) @ v
        out = self.proj_drop(self.proj(out.permute(0, 3, 1, 2).reshape(b, n, c)))
        if self.local_mp is not None:
            out = out + self.local_mp(x, *self.grid_size)
        return out

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "lpi": self.local_mp is not None}
