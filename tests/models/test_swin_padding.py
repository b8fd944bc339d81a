"""Swin on grids its window does not tile: pad before the shift, mask padding and the seam.

The reference is written independently of the module's window machinery: token (i, j)
attends to the real tokens (i', j') with floor((i - s) / M) == floor((i' - s) / M) on both
axes (s the shift, 0 in regular blocks), i.e. the windows of a grid offset by the shift,
cut at the image edges and never wrapped round them. Logits are q.k / sqrt(d) plus the
module's relative bias for the offset (i - i', j - j'), computed per token with loops.
"""

from __future__ import annotations

import pytest
import torch

from bench.models import create_model
from bench.models.attention import WindowAttention

CASES = [
    ((10, 10), 4, False),
    ((10, 10), 4, True),
    ((6, 10), 4, True),  # non-square: one axis tiled, one padded
    ((3, 10), 4, True),  # one axis within the window (global, unshifted), the other padded and shifted
    ((5, 7), 3, True),  # odd window, both axes padded
]


def build(grid: tuple[int, int], window: int, shift: bool, dim: int = 16, heads: int = 2) -> WindowAttention:
    torch.manual_seed(0)
    module = WindowAttention(dim, heads, grid_size=grid, window_size=window, shift=shift).eval()
    with torch.no_grad():
        module.relative_position_bias_table.normal_(std=0.5)  # a bias large enough to matter
    return module


def reference(module: WindowAttention, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(output (B, N, C), map (B, heads, N, N)) by explicit per-token masked attention."""
    w = module.grid_size[1]
    (wh, ww), (sh, sw) = module.window_size, module.shift_size
    b, n, c = x.shape
    heads, d = module.num_heads, module.head_dim
    q, k, v = module.qkv(x).view(b, n, 3, heads, d).unbind(2)  # (B, N, heads, d) each
    table = module.relative_position_bias_table  # ((2 wh - 1)(2 ww - 1), heads)
    attn = torch.zeros(b, heads, n, n)
    for t in range(n):
        i, j = divmod(t, w)
        keys = [u for u in range(n)
                if (i - sh) // wh == (u // w - sh) // wh and (j - sw) // ww == (u % w - sw) // ww]
        logits = torch.stack([
            torch.einsum("bhd,bhd->bh", q[:, t], k[:, u]) * d ** -0.5
            + table[(i - u // w + wh - 1) * (2 * ww - 1) + (j - u % w + ww - 1)]
            for u in keys], dim=-1)  # (B, heads, keys)
        attn[:, :, t, keys] = logits.softmax(dim=-1)
    mixed = torch.einsum("bhtu,buhd->bthd", attn, v).reshape(b, n, c)
    return module.proj(mixed), attn


@pytest.mark.parametrize(("grid", "window", "shift"), CASES)
def test_padded_grid_matches_explicit_reference(grid: tuple[int, int], window: int, shift: bool) -> None:
    module = build(grid, window, shift)
    assert module.padded_size != grid  # the case really pads
    assert any(module.shift_size) == shift
    x = torch.randn(2, grid[0] * grid[1], module.dim)
    with torch.no_grad():
        expected, expected_map = reference(module, x)
        fused = module(x, grid)
        module.fused = False
        explicit = module(x, grid)
        module.keep_attention = True
        recorded = module(x, grid)
    for got in (fused, explicit, recorded):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    attn = module.last_attention
    torch.testing.assert_close(attn, expected_map, atol=1e-6, rtol=1e-5)
    assert torch.all(attn[expected_map == 0] == 0)  # masked pairs get exactly zero weight


@pytest.mark.parametrize(("grid", "window", "shift"), CASES)
def test_padded_keys_get_exactly_zero_attention(grid: tuple[int, int], window: int, shift: bool) -> None:
    module = build(grid, window, shift)
    module.keep_attention = True
    with torch.no_grad():
        module(torch.randn(2, grid[0] * grid[1], module.dim), grid)
    index = module._token_index()  # (nW, A): token at each window slot, -1 for padding
    (hp, wp), n = module.padded_size, grid[0] * grid[1]
    assert int((index < 0).sum()) == hp * wp - n
    assert sorted(index[index >= 0].tolist()) == list(range(n))
    window_maps = module.last_window_attention.view(2, index.shape[0], module.num_heads, *index.shape[1:] * 2)
    real_query, pad_key = index >= 0, index < 0
    to_padding = window_maps.permute(1, 3, 4, 0, 2)[real_query[:, :, None] & pad_key[:, None, :]]
    assert to_padding.numel() > 0 and torch.all(to_padding == 0)
    # and the weight real queries give real keys sums to one
    torch.testing.assert_close(module.last_attention.sum(-1), torch.ones(2, module.num_heads, n))


@pytest.mark.parametrize(("grid", "window"), [((10, 10), 4), ((6, 10), 4), ((5, 7), 3)])
def test_shifted_windows_never_cross_the_image_edge(grid: tuple[int, int], window: int) -> None:
    module = build(grid, window, shift=True)
    module.keep_attention = True
    with torch.no_grad():
        module(torch.randn(2, grid[0] * grid[1], module.dim), grid)
    attn = module.last_attention.view(2, module.num_heads, *grid, *grid)
    h, w = grid
    edges = [(attn[:, :, 0, :, h - 1, :], module.shift_size[0]),  # top row -> bottom row
             (attn[:, :, h - 1, :, 0, :], module.shift_size[0]),
             (attn[:, :, :, 0, :, w - 1], module.shift_size[1]),  # left column -> right column
             (attn[:, :, :, w - 1, :, 0], module.shift_size[1])]
    for weights, shift in edges:
        if shift:
            assert torch.all(weights == 0)


def test_pyramid_on_a_grid_no_window_tiles_trains() -> None:
    torch.manual_seed(0)
    model = create_model("pyramid_swin", "quick", image_size=72)  # grids 18/9/5/3: stages 1-3 padded
    swin = [block.attn for stage in model.stages for block in stage.blocks]
    assert any(m.padded_size != m.grid_size and any(m.shift_size) for m in swin)
    x = torch.randn(2, 1, 72, 72, requires_grad=True)
    model(x).logsumexp(dim=1).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
