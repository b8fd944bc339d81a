"""Linformer: keys and values projected from N tokens down to k.

Wang et al., "Linformer: Self-Attention with Linear Complexity", arXiv:2006.04768, 2020.

    head_i = softmax(Q_i (E K_i)^T / sqrt(d)) (F V_i),   E, F in R^{k x N}

Cost: O(N k C) time and O(N k) memory per head instead of O(N^2 C): linear in N for a
fixed k. N must be fixed, so the module is built for its stage's grid; at a stage with
N <= k the projection is N x N (still learned, no saving).

Sharing and parameter matching: one projection serves every head and both keys and
values (E = F; the paper's headwise and key-value sharing, section 4), adding N*k
parameters per block. Those are not negligible next to early-stage blocks (1024 x 256 at
224 px, patch 7), so the pyramid built with ``match_params=True`` narrows every block's
MLP hidden width by one common factor until the whole model has as many parameters as the
softmax pyramid (see ``bench.models.pyramid``).

Choosing k: a k >= N projects nothing away, so the zoo picks k per stage as
min(proj_len, N // 2) (``bench.models.zoo.linformer_proj_lens``): every stage compresses
at least twofold. The k each block was built with is in ``settings()``; a pyramid lists
it per stage with ``model.stage_setting("proj_len")``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.models.attention.base import ATTENTION, TokenAttention


@ATTENTION.register("linformer")
class LinformerAttention(TokenAttention):
    """Softmax attention over k projected keys/values; ``proj_len`` is k (capped at N).

    ``last_attention`` holds the effective token-to-token map A E (B, heads, N, N): the
    (N x k) softmax map A composed with the projection, so that output = (A E) V.
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
        proj_len: int = 256,
    ) -> None:
        super().__init__(dim, num_heads, grid_size=grid_size, qkv_bias=qkv_bias,
                         attn_drop=attn_drop, proj_drop=proj_drop)
        if proj_len < 1:
            raise ValueError(f"LinformerAttention: proj_len must be >= 1, got {proj_len}")
        self.proj_len = min(self.num_tokens, proj_len)
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        # E (k, N), scaled so that E K keeps the scale of K
        self.seq_proj = nn.Parameter(torch.randn(self.proj_len, self.num_tokens) * self.num_tokens ** -0.5)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
        self._check_input(x, grid_size)
        b, n, c = x.shape
        q, kv = self.qkv(x).split([c, 2 * c], dim=-1)
        # project keys and values of all heads at once, token-major: (k, N) @ (B, N, 2C) -> (B, k, 2C)
        kv = self.seq_proj @ kv
        q = self._split_heads(q)
        k, v = kv.reshape(b, self.proj_len, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if not self.keep_attention:
            x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop.p if self.training else 0.0)
        else:
            attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
            self._record(attn @ self.seq_proj)
            x = self.attn_drop(attn) @ v
        return self.proj_drop(self.proj(self._merge_heads(x)))

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "proj_len": self.proj_len}
