"""Shifted-window attention with relative position bias.

Liu et al., "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows",
ICCV 2021 (arXiv:2103.14030).

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d) + B) V   within each M x M window,

with B read from a learned (2M-1)^2 x heads table by relative offset. Alternate blocks
shift the grid cyclically by M//2 and mask pairs that were not neighbours before the
shift, so information crosses window borders. Cost: O(N M^2 C) time, linear in N.

Windows per stage: the module takes one window size M and clamps it to the grid, so an
axis no longer than M becomes one global window on that axis, with no shift. The zoo
picks M per stage (``bench.models.zoo.swin_stage_windows``).

Padding, where the grid is not a multiple of M: the grid is padded (bottom and right)
BEFORE the shift, so the cyclic shift wraps the padded grid and the region mask, built on
that padded grid, separates exactly the tokens that the wrap brought together: no token
attends across the image edge. Padded tokens are masked out as keys in every window, in
regular and shifted blocks alike, and padded query rows are cropped after. (timm shifts,
then pads: there the region mask is misplaced by the padding, so top-edge tokens attend
to bottom-edge ones, and zero-padded tokens are attended to as keys. On grids the window
tiles the two agree; tests/models/test_timm_reference.py checks that.) Masked logits get
``MASK_VALUE``, whose softmax weight underflows to exactly zero. The layout and the
parameter names follow ``timm.models.swin_transformer``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.models.attention.base import ATTENTION, TokenAttention

# Swin's -100 leaves weights of ~1e-44; -1e4 underflows to exactly 0 and stays finite in fp16
MASK_VALUE = -1.0e4


def window_partition(x: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """(B, H, W, C) -> (B * num_windows, wh * ww, C); H, W multiples of the window."""
    b, h, w, c = x.shape
    x = x.view(b, h // window[0], window[0], w // window[1], window[1], c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window[0] * window[1], c)


def window_reverse(windows: torch.Tensor, window: tuple[int, int], h: int, w: int) -> torch.Tensor:
    """(B * num_windows, wh * ww, C) -> (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window[0], w // window[1], window[0], window[1], c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def relative_position_index(window: tuple[int, int]) -> torch.Tensor:
    """(A, A) index into the (2wh-1)(2ww-1) bias table for every pair in a window."""
    coords = torch.stack(torch.meshgrid(torch.arange(window[0]), torch.arange(window[1]), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    rel[:, :, 0] += window[0] - 1
    rel[:, :, 1] += window[1] - 1
    return rel[:, :, 0] * (2 * window[1] - 1) + rel[:, :, 1]


@ATTENTION.register("swin")
class WindowAttention(TokenAttention):
    """(Shifted) window attention; options ``window_size`` (M) and ``shift`` (by M//2).

    With ``keep_attention`` set, ``last_window_attention`` (B * nW, heads, A, A) keeps the
    per-window maps, padded slots included (laid out as ``_token_index()``), beside the
    (B, heads, N, N) token map in ``last_attention``.
    """

    recorded_attributes = ("last_attention", "last_window_attention")

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        grid_size: tuple[int, int],
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        window_size: int = 7,
        shift: bool = False,
    ) -> None:
        super().__init__(dim, num_heads, grid_size=grid_size, qkv_bias=qkv_bias,
                         attn_drop=attn_drop, proj_drop=proj_drop)
        self.window_size = tuple(min(g, window_size) for g in self.grid_size)
        self.shift_size = tuple(window_size // 2 if shift and g > window_size else 0 for g in self.grid_size)
        self.window_area = self.window_size[0] * self.window_size[1]
        self.scale = self.head_dim ** -0.5
        self.fused = True
        wh, ww = self.window_size
        self.relative_position_bias_table = nn.Parameter(torch.empty((2 * wh - 1) * (2 * ww - 1), num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(self.window_size), persistent=False)
        mask = self._attention_mask()
        self.register_buffer("attn_mask", mask if mask is None else mask.to(self.relative_position_bias_table.device),
                             persistent=False)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.last_window_attention: torch.Tensor | None = None

    @classmethod
    def block_options(cls, block: int, depth: int) -> dict[str, Any]:
        """Blocks alternate regular and shifted windows, and every stage ends on a shifted one.

        For Swin's even stage depths this is its regular, shifted, ... pattern. A stage of odd
        depth (the quick pyramid's one-block stages) also ends shifted: patch merging nests
        each window inside one window of the next stage, so a stage that ended on regular
        windows would hand on features that never crossed its window borders.
        """
        return {"shift": (depth - 1 - block) % 2 == 0}

    @property
    def padded_size(self) -> tuple[int, int]:
        return tuple(-(-g // w) * w for g, w in zip(self.grid_size, self.window_size))

    @property
    def num_windows(self) -> int:
        hp, wp = self.padded_size
        return (hp // self.window_size[0]) * (wp // self.window_size[1])

    def _token_index(self) -> torch.Tensor:
        """(num_windows, A): the flat token index each window slot holds, -1 for padding.

        Slot (r, c) of the shifted padded grid holds padded position ((r + sh) % Hp,
        (c + sw) % Wp): the grid is padded first, then rolled.
        """
        (h, w), (hp, wp), (sh, sw) = self.grid_size, self.padded_size, self.shift_size
        rows, cols = torch.meshgrid(torch.arange(hp), torch.arange(wp), indexing="ij")
        rows, cols = (rows + sh) % hp, (cols + sw) % wp
        index = (rows * w + cols).masked_fill((rows >= h) | (cols >= w), -1)
        return window_partition(index[None, :, :, None], self.window_size).squeeze(-1)

    def _regions(self) -> torch.Tensor:
        """(num_windows, A) region labels of the shifted padded grid, as in Swin.

        Per axis, slots [0, P - M) hold one contiguous run of the padded grid, [P - M, P - s)
        its end and [P - s, P) its start, wrapped round by the shift: a window may only mix
        slots of one region.
        """
        labels = []
        for p, m, shift in zip(self.padded_size, self.window_size, self.shift_size):
            lab = torch.zeros(p, dtype=torch.long)
            if shift:
                lab[p - m:p - shift] = 1
                lab[p - shift:] = 2
            labels.append(lab)
        grid = labels[0][:, None] * 3 + labels[1][None, :]
        return window_partition(grid[None, :, :, None], self.window_size).squeeze(-1)

    def _attention_mask(self) -> torch.Tensor | None:
        """(num_windows, A, A) additive mask: keys that are padding or across a shift's seam."""
        if not any(self.shift_size) and self.padded_size == self.grid_size:
            return None  # windows tile the grid and nothing wraps: nothing to mask
        with torch.device("cpu"):  # a few index ops on small tensors, whatever device builds the model
            regions, index = self._regions(), self._token_index()
            blocked = (regions[:, :, None] != regions[:, None, :]) | (index < 0)[:, None, :]
            return torch.zeros(blocked.shape).masked_fill(blocked, MASK_VALUE)

    def _scatter_map(self, attn: torch.Tensor, batch: int) -> torch.Tensor:
        """Window maps (B * nW, h, A, A) -> one (B, h, N, N) map, zero across windows."""
        index = self._token_index().to(attn.device)
        num_windows, area = index.shape
        rows = index[:, :, None].expand(-1, -1, area)
        cols = index[:, None, :].expand(-1, area, -1)
        valid = (rows >= 0) & (cols >= 0)
        n = self.num_tokens
        full = attn.new_zeros(batch, self.num_heads, n * n)
        per_window = attn.view(batch, num_windows, self.num_heads, area, area)
        full[:, :, (rows * n + cols)[valid]] = per_window.transpose(1, 2)[:, :, valid]
        return full.view(batch, self.num_heads, n, n)

    def _window_attention(self, x: torch.Tensor) -> torch.Tensor:
        bw, a, c = x.shape
        qkv = self.qkv(x).reshape(bw, a, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(a, a, self.num_heads).permute(2, 0, 1).unsqueeze(0)  # (1, h, A, A)
        mask = self.attn_mask  # (nW, A, A) or None
        # The fused kernel with a trainable float bias is slower than the explicit path in CPU
        # training, so it serves inference and CUDA only.
        if self.fused and not self.keep_attention and (q.is_cuda or not torch.is_grad_enabled()):
            if mask is not None:
                bias = (bias + mask[:, None]).repeat(bw // mask.shape[0], 1, 1, 1)  # (B * nW, h, A, A)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype),
                                                 dropout_p=self.attn_drop.p if self.training else 0.0)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1) + bias
            if mask is not None:  # broadcast over the batch instead of materialising B * nW masks
                nw = mask.shape[0]
                attn = (attn.view(bw // nw, nw, self.num_heads, a, a) + mask[None, :, None]).view(bw, self.num_heads, a, a)
            attn = attn.softmax(dim=-1)
            if self.keep_attention:
                self.last_window_attention = attn.detach()  # (B * nW, h, A, A), padded slots included
                self._record(self._scatter_map(attn, bw // self.num_windows))
            out = self.attn_drop(attn) @ v
        return out.transpose(1, 2).reshape(bw, a, c)

    def forward(self, x: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
        self._check_input(x, grid_size)
        b, n, c = x.shape
        (h, w), (hp, wp), (sh, sw) = self.grid_size, self.padded_size, self.shift_size
        x = x.view(b, h, w, c)
        if (hp, wp) != (h, w):  # pad before the shift, so the shift wraps the padded grid the mask describes
            x = F.pad(x, (0, 0, 0, wp - w, 0, hp - h))
        if sh or sw:
            x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
        x = self._window_attention(window_partition(x, self.window_size))
        x = window_reverse(x, self.window_size, hp, wp)
        if sh or sw:
            x = torch.roll(x, shifts=(sh, sw), dims=(1, 2))
        x = x[:, :h, :w, :]  # padded query rows are dropped
        return self.proj_drop(self.proj(x.reshape(b, n, c)))

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "window_size": self.window_size, "shift_size": self.shift_size,
                "padded_size": self.padded_size}
