"""Performer: FAVOR+ linear attention with positive orthogonal random features.

Choromanski et al., "Rethinking Attention with Performers", ICLR 2021 (arXiv:2009.14794).

    phi(x) = exp(W x - |x|^2 / 2) / sqrt(m),   W in R^{m x d}, rows orthogonal (in blocks of d)
    Att(Q, K, V) ~= D^-1 phi(Q') (phi(K')^T V),   D = diag(phi(Q') phi(K')^T 1_N)

with Q' = Q / d^(1/4), K' = K / d^(1/4), so that E[phi(q')^T phi(k')] = exp(q^T k / sqrt(d)),
the softmax kernel. Cost: O(N m C) time and O(N m + m d) memory per head, linear in N;
m defaults to round(d ln d), the paper's Theta(d log d).

Feature redrawing (the paper resamples the features periodically in training): with
``redraw_interval = R > 0`` each draw serves R training forwards, then the next training
forward draws anew; eval forwards never redraw and do not count, so a trained model is a
fixed function. The features, the count of training forwards and the seed of the redraws
are persistent buffers: a checkpoint captures them and a resumed run redraws exactly as an
uninterrupted one. Draw i comes from its own generator seeded (seed, i), not from the
global RNG, so redraws neither perturb data or dropout streams nor differ between ranks.
The kernel runs in fp32 with autocast disabled: exp of bf16 projections loses the
precision the estimator relies on.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from bench.models.attention.base import ATTENTION, TokenAttention


def orthogonal_random_features(num_features: int, dim: int, generator: torch.Generator | None = None,
                                device: torch.device | str | None = None) -> torch.Tensor:
    """(m, d) Gaussian rows, orthogonal within each block of d, with chi(d)-distributed norms."""
    blocks = []
    for _ in range(math.ceil(num_features / dim)):
        q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, device=device))
        blocks.append(q.t())
    w = torch.cat(blocks)[:num_features]
    norms = torch.randn(num_features, dim, generator=generator, device=device).norm(dim=1, keepdim=True)
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
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.register_buffer("features", orthogonal_random_features(self.num_features, d), persistent=True)
        # the seed comes from the global RNG once, at construction, so a seeded model build fixes it
        seed = torch.randint(0, 2**62, (), device="cpu", dtype=torch.int64)
        self.register_buffer("feature_seed", seed.to(self.features.device), persistent=True)
        self.register_buffer("train_forwards", torch.zeros((), dtype=torch.int64, device=self.features.device),
                             persistent=True)
        self._seed = int(seed)
        self._train_forwards = 0  # mirrors the buffer, so forward needs no device sync to read it
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    @torch.no_grad()
    def redraw_features(self, draw: int) -> None:
        """Replace the features in place by draw number ``draw`` of this module's seed."""
        generator = torch.Generator().manual_seed((self._seed + draw) % 2**63)
        new = orthogonal_random_features(self.num_features, self.head_dim, generator, device="cpu")
        self.features.copy_(new)

    def _count_training_forward(self) -> None:
        """Advance the schedule; each draw serves ``redraw_interval`` training forwards."""
        calls = self._train_forwards
        if calls and calls % self.redraw_interval == 0:
            self.redraw_features(calls // self.redraw_interval)
        self._train_forwards = calls + 1
        self.train_forwards.fill_(self._train_forwards)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if not self.train_forwards.is_meta:  # refresh the mirrors once per load, not per forward
            self._train_forwards, self._seed = int(self.train_forwards), int(self.feature_seed)

    def forward(self, x: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
        if self.training and self.redraw_interval:
            self._count_training_forward()
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

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "num_features": self.num_features, "redraw_interval": self.redraw_interval}
