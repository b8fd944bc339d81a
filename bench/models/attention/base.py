"""The contract every attention module keeps, and the registry that names them.

All modules share one constructor, ``cls(dim, num_heads, *, grid_size, qkv_bias,
attn_drop, proj_drop, **options)``, and one forward, ``forward(x (B, N, C), grid_size)
-> (B, N, C)``, so the pyramid backbone can swap them by name. ``grid_size`` is the
(H, W) token grid of the stage the module lives in; modules whose shapes depend on it
(Linformer's projection, Swin's windows) fix it at construction.

Attention maps are recorded on request: a caller sets ``keep_attention = True``, runs a
forward pass, and reads ``last_attention`` (B, heads, N, N), the token-to-token map the
module applied. Modules without such a map set ``has_token_attention = False``; they
may record other weights instead (Fastformer's pooling weights, XCA's channel map). Every
attribute a module records is named in ``recorded_attributes``, so ``clear_attention()``
and callers that save and restore a module's state need no per-module knowledge.

Every module reports what it was built with in ``settings()`` (also its ``extra_repr``),
so results can record, per block, the mechanism that actually ran (Linformer's k, Swin's
window and shift, XCA's LPI, Performer's redraw interval).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from bench.core.registry import Registry

ATTENTION: Registry = Registry("attention")


class TokenAttention(nn.Module):
    """Base class: stores the shared arguments and records maps when asked."""

    has_token_attention: ClassVar[bool] = True
    # attributes filled by a forward pass with keep_attention set; cleared by clear_attention()
    recorded_attributes: ClassVar[tuple[str, ...]] = ("last_attention",)

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
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"{type(self).__name__}: dim {dim} is not divisible by num_heads {num_heads}")
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.grid_size = (int(grid_size[0]), int(grid_size[1]))
        self.num_tokens = self.grid_size[0] * self.grid_size[1]
        self.qkv_bias = qkv_bias
        self.attn_drop_p = attn_drop
        self.keep_attention = False
        self.last_attention: torch.Tensor | None = None

    @classmethod
    def block_options(cls, block: int, depth: int) -> dict[str, Any]:
        """Options that vary with a block's place in its stage of ``depth`` blocks (Swin's shift); none by default."""
        return {}

    def _check_input(self, x: torch.Tensor, grid_size: tuple[int, int]) -> None:
        if tuple(grid_size) != self.grid_size or x.shape[1] != self.num_tokens:
            raise ValueError(
                f"{type(self).__name__} was built for a {self.grid_size} grid ({self.num_tokens} tokens), "
                f"got grid {tuple(grid_size)} with {x.shape[1]} tokens"
            )

    def _record(self, attn: torch.Tensor) -> None:
        self.last_attention = attn.detach()

    def clear_attention(self) -> None:
        """Drop recorded maps (they hold a batch's worth of memory)."""
        for name in self.recorded_attributes:
            setattr(self, name, None)

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        """(B, N, C) -> (B, heads, N, head_dim)."""
        b, n, _ = t.shape
        return t.reshape(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def _merge_heads(self, t: torch.Tensor) -> torch.Tensor:
        """(B, heads, N, head_dim) -> (B, N, C)."""
        b, _, n, _ = t.shape
        return t.transpose(1, 2).reshape(b, n, self.dim)

    def settings(self) -> dict[str, Any]:
        """What this module was built with; subclasses add their mechanism's options."""
        return {"dim": self.dim, "num_heads": self.num_heads, "grid_size": self.grid_size}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.settings().items())
