"""Closed-form multiply-accumulates of each attention module and of a pyramid model.

These are the figures ``bench.models.flops`` must reproduce. Its two counters are taught the
same scaled-dot-product-attention formula, so their agreement cannot catch a wrong
attention cost; these formulas, written from the papers' cost analyses and the modules'
code, can. Like the counters they count matrix products and convolutions only: no
element-wise work, softmax, exp, norms, masks, biases, reductions or pooling.

Notation, per image (multiply by the batch): N tokens, C channels, h heads, d = C / h,
k Linformer's projected length, m Performer's random features, M x M Swin's window with
A = M^2 slots and Np tokens on the grid padded to whole windows. Every module spends
4 N C^2 on its projections: 3 N C^2 for q, k, v and N C^2 for the output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

Grid = tuple[int, int]


def _pair(value: int | Sequence[int]) -> Grid:
    if isinstance(value, int):
        return value, value
    a, b = value
    return int(a), int(b)


def projection_macs(n: int, c: int) -> int:
    """q, k, v and output projections: 3 N C^2 + N C^2."""
    return 4 * n * c * c


def softmax_macs(n: int, c: int) -> int:
    """4 N C^2 + 2 N^2 C: Q K^T and A V are N x N x d per head."""
    return projection_macs(n, c) + 2 * n * n * c


def linformer_macs(n: int, c: int, k: int) -> int:
    """4 N C^2 + 4 N k C: E [K V] is 2 N k C; Q (EK)^T and A (EV) are N x k x d per head."""
    return projection_macs(n, c) + 4 * n * k * c


def performer_macs(n: int, c: int, heads: int, m: int) -> int:
    """4 N C^2 + 4 N m C + N m h.

    phi(Q') and phi(K') are N x d x m per head (2 N m C); phi(K')^T V and
    phi(Q') (phi(K')^T V) are N x m x d (2 N m C); the normaliser phi(Q') (phi(K')^T 1)
    is N x m per head (N m h).
    """
    return projection_macs(n, c) + 4 * n * m * c + n * m * heads


def fastformer_macs(n: int, c: int) -> int:
    """4 N C^2 + 4 N C: each of the two poolings scores (N x d) and sums (N x d) per head."""
    return projection_macs(n, c) + 4 * n * c


def lpi_macs(n: int, c: int, kernel: int = 3) -> int:
    """XCiT's local patch interaction: two depthwise kernel x kernel convs, N C k^2 each."""
    return 2 * n * c * kernel * kernel


def xca_macs(n: int, c: int, heads: int, lpi: bool = True, lpi_kernel: int = 3) -> int:
    """4 N C^2 + 2 N C^2 / h (+ 18 N C with LPI): K^T Q and V A are d x d x N per head."""
    return projection_macs(n, c) + 2 * n * c * c // heads + (lpi_macs(n, c, lpi_kernel) if lpi else 0)


def padded_grid(grid: Grid, window: Grid) -> Grid:
    """The grid rounded up to whole windows: (ceil(H / wh) wh, ceil(W / ww) ww)."""
    return tuple(-(-g // w) * w for g, w in zip(grid, window))  # type: ignore[return-value]


def swin_macs(grid: Grid, c: int, window: int | Grid) -> int:
    """3 Np C^2 + 2 Np A C + N C^2.

    q, k, v and the window maps run on the padded grid (Np tokens, Np / A windows of
    A x A x d per head, twice); the output projection runs on the N real tokens after
    the crop. On a tiled grid this is Swin's 4 N C^2 + 2 M^2 N C.
    """
    window = _pair(window)
    hp, wp = padded_grid(grid, window)
    n, np_, area = grid[0] * grid[1], hp * wp, window[0] * window[1]
    return 3 * np_ * c * c + 2 * np_ * area * c + n * c * c


# -- modules -------------------------------------------------------------------------------


def _lpi_kernel(module: nn.Module) -> int:
    return int(_pair(module.local_mp.conv1.kernel_size)[0])


_FROM_MODULE: dict[str, Callable[[Any], int]] = {
    "softmax": lambda m: softmax_macs(m.num_tokens, m.dim),
    "linformer": lambda m: linformer_macs(m.num_tokens, m.dim, m.proj_len),
    "performer": lambda m: performer_macs(m.num_tokens, m.dim, m.num_heads, m.num_features),
    "fastformer": lambda m: fastformer_macs(m.num_tokens, m.dim),
    "xca": lambda m: xca_macs(m.num_tokens, m.dim, m.num_heads, lpi=m.local_mp is not None,
                              lpi_kernel=_lpi_kernel(m) if m.local_mp is not None else 3),
    "swin": lambda m: swin_macs(m.grid_size, m.dim, m.window_size),
}


def registered_name(module: nn.Module) -> str:
    """The name ``module``'s class is registered under in ``bench.models.attention.ATTENTION``."""
    from bench.models.attention import ATTENTION

    for name in ATTENTION.names():
        if type(module) is ATTENTION.get(name):
            return name
    raise KeyError(f"{type(module).__name__} is not a registered attention module")


def attention_macs(module: nn.Module, batch: int = 1) -> int:
    """Closed-form MACs of one ``module(x, module.grid_size)`` call on ``batch`` images."""
    name = registered_name(module)
    if name not in _FROM_MODULE:
        raise KeyError(f"no MAC formula for attention {name!r}; known: {', '.join(sorted(_FROM_MODULE))}")
    return batch * _FROM_MODULE[name](module)


def _linear_macs(module: nn.Module, tokens: int) -> int:
    return sum(tokens * m.in_features * m.out_features for m in module.modules() if isinstance(m, nn.Linear))


def analytic_model_macs(model: nn.Module, batch: int = 1) -> int:
    """Closed-form MACs of a ``PyramidTransformer`` forward pass on ``batch`` images.

    Patch-embedding conv (grid x C0 x in_chans x p^2), then per stage the 2 x 2 merge
    (N_s x 4 C_{s-1} x C_s, on the merged grid) and per block attention plus MLP
    (N x C x hidden, twice), then the head (C x classes) on the pooled vector.
    """
    embed = model.patch_embed
    kh, kw = _pair(embed.kernel_size)
    h, w = model.grid_size
    total = h * w * embed.out_channels * (embed.in_channels // embed.groups) * kh * kw
    for stage in model.stages:
        n = stage.grid_size[0] * stage.grid_size[1]
        if stage.downsample is not None:
            total += _linear_macs(stage.downsample, n)
        for block in stage.blocks:
            total += attention_macs(block.attn) + _linear_macs(block.mlp, n)
    total += _linear_macs(model.head, 1)
    return batch * total


__all__ = [
    "analytic_model_macs",
    "attention_macs",
    "fastformer_macs",
    "linformer_macs",
    "lpi_macs",
    "padded_grid",
    "performer_macs",
    "projection_macs",
    "registered_name",
    "softmax_macs",
    "swin_macs",
    "xca_macs",
]
