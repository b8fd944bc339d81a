"""Performer: FAVOR+ linear attention with positive orthogonal random features.

Choromanski et al., "Rethinking Attention with Performers", ICLR 2021 (arXiv:2009.14794).

    phi(x) = exp(W x - |x|^2 / 2) / sqrt(m),   W in R^{m x d}, rows orthogonal (in blocks of d)
    Att(Q, K, V) ~= D^-1 phi(Q') (phi(K')^T V),   D = diag(phi(Q') phi(K')^T 1_N)

with Q' = Q / d^(1/4), K' = K / d^(1/4), so that E[phi(q')^T phi(k')] = exp(q^T k / sqrt(d)),
the softmax kernel. Cost: O(N m C) time and O(N m + m d) memory per head, linear in N;
m defaults to round(d ln d), the paper's Theta(d log d).

The features are a persistent buffer, saved with the weights, and are never redrawn in
eval mode, so a trained model is a fixed function. ``redraw_interval > 0`` redraws them
every that many training forwards. The kernel runs in fp32 with autocast disabled: exp of
bf16 projections loses the precision the estimator relies on.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bench.models.attention.base import ATTENTION, TokenAttention


def orthogonal_random_features(num_features: int, dim: int) -> torch.Tensor:
    """(m, d) Gaussian rows, orthogonal within each block of d, with chi(d)-distributed norms."""
    blocks = []
    for _ in range(math.ceil(num_features / dim)):
        q, _ = torch.linalg.qr(torch.randn(dim, dim))
        blocks.append(q.t())
    w = torch.cat(blocks)[:num_features]
    norms = torch.randn(num_features, dim).norm(dim=1, keepdim=True)
    return w * norms


def positive_features(x: torch.Tensor, w: torch.Tensor, is_query: bool, eps: float = 1e-6) -> torch.Tensor:
    """phi(x / d^(1/4)) of (B, h, N, d) inputs, up to factors that cancel in D^-1 (...).

    The 1/sqrt(m) and a max subtracted for stability (per row for queries, per batch and
    head for keys) scale numerator and denominator alike, so they are left out.
    """
    scale = x.shape[-1] ** -0.25
    proj = x @ (w * scale).t()  # (B, h, N, m)
    half_sq = x.pow(2).sum(dim=-1, keepdim=True) * (scale * scale / 2)
    dims = (-1,) if is_query else (-2, -1)
    stab = proj.amax(dim=dims, keepdim=True).detach()
    return torch.exp(proj - (half_sq + stab)) + eps


@ATTENTION.register("performer")
class PerformerAttention(TokenAttention):
    """FAVOR+ attention; ``num_features`` is m, ``redraw_interval`` (0 = never) is for training.

    There is no explicit map to drop out, so ``attn_drop`` is unused. ``last_attention``
    holds the implied map phi(Q') phi(K')^T / D (B, heads, N, N).
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
        num_features: int | None = None,
        redraw_interval: int = 0,
    ) -> None:
        super().__init__(dim, num_heads, grid_size=grid_size, qkv_bias=qkv_bias,
                         attn_drop=attn_drop, proj_drop=proj_drop)
        d = self.head_dim
        self.num_features = num_features or max(1, round(d * math.log(d)))
        if redraw_interval < 0:
            raise ValueError(f"PerformerAttention: redraw_interval must be >= 0, got {redraw_interval}")
        self.redraw_interval = redraw_interval
        self._train_calls = 0
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.register_buffer("features", orthogonal_random_features(self.num_features, d), persistent=True)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    @torch.no_grad()
    def redraw_features(self) -> None:
        """Draw new random features in place (from the global torch RNG)."""
        new = orthogonal_random_features(self.num_features, self.head_dim)
        self.features.copy_(new.to(self.features.device))

    def forward(self, x: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
        if self.training and self.redraw_interval:
            if self._train_calls % self.redraw_interval == 0:
                self.redraw_features()
            self._train_calls += 1
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        with torch.autocast(device_type=x.device.type, enabled=False):
            q, k, v = (t.float() for t in qkv.unbind(0))
            w = self.features.float()
            qp = positive_features(q, w, is_query=True)
            kp = positive_features(k, w, is_query=False)
            num = qp @ (kp.transpose(-2, -1) @ v)  # (B, h, N, d)
            den = qp @ kp.sum(dim=-2, keepdim=True).transpose(-2, -1)  # (B, h, N, 1)
            out = num / den
            if self.keep_attention:
                self._record((qp @ kp.transpose(-2, -1)) / den)
        out = self._merge_heads(out.to(x.dtype))
        return self.proj_drop(self.proj(out))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_features={self.num_features}, redraw_interval={self.redraw_interval}"
