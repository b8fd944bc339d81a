"""Fastformer: additive attention through a global query and a global key.

Wu et al., "Fastformer: Additive Attention Can Be All You Need", arXiv:2108.09084, 2021.

Per head, with learned vectors w_q, w_k in R^d:

    alpha_i = softmax_i(w_q^T q_i / sqrt(d)),   q = sum_i alpha_i q_i          (global query)
    p_i = q * k_i,   beta_i = softmax_i(w_k^T p_i / sqrt(d)),   k = sum_i beta_i p_i   (global key)
    u_i = k * v_i,   out_i = W_r u_i + q_i

(* is the element-wise product.) Cost: O(N C) for the attention itself, plus O(N C^2)
for the projections; there is no token-to-token map. W_r, the paper's output transform,
is the module's output projection, so the parameter count matches softmax attention
(q, k, v, output: 4 C^2) plus 2 C for w_q and w_k.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.models.attention.base import ATTENTION, TokenAttention


@ATTENTION.register("fastformer")
class FastformerAttention(TokenAttention):
    """Additive attention; ``attn_drop`` drops the alpha and beta pooling weights.

    With ``keep_attention`` set, ``last_alpha`` and ``last_beta`` (B, heads, N) keep the
    pooling weights before dropout: each sums to 1 over the tokens of every head.
    """

    has_token_attention = False
    recorded_attributes = ("last_attention", "last_alpha", "last_beta")

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
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        # one scoring vector per head, shaped (h, d, 1) so scores are a batched matmul
        self.query_score = nn.Parameter(torch.empty(num_heads, self.head_dim, 1))
        self.key_score = nn.Parameter(torch.empty(num_heads, self.head_dim, 1))
        nn.init.trunc_normal_(self.query_score, std=0.02)
        nn.init.trunc_normal_(self.key_score, std=0.02)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.last_alpha: torch.Tensor | None = None
        self.last_beta: torch.Tensor | None = None

    def _pool(self, x: torch.Tensor, score: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """sum_i softmax_i(score^T x_i / sqrt(d)) x_i (B, h, 1, d) of (B, h, N, d), and its weights (B, h, N, 1)."""
        weights = ((x @ score) * self.scale).softmax(dim=-2)
        return self.attn_drop(weights).transpose(-2, -1) @ x, weights

    def forward(self, x: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        global_query, alpha = self._pool(q, self.query_score)
        p = global_query * k
        global_key, beta = self._pool(p, self.key_score)
        if self.keep_attention:  # a side copy only: the output is the same either way
            self.last_alpha, self.last_beta = alpha.detach().squeeze(-1), beta.detach().squeeze(-1)
        u = global_key * v
        return self.proj_drop(self.proj(self._merge_heads(u))) + self._merge_heads(q)
