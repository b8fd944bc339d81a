"""Our Swin and XCA modules against timm's, given the same weights and input.

Swin is compared only on grids its window tiles (or that fit in one window). On a padded
grid timm is not a reference: it shifts before padding, so its shift mask misses the
seam and top-edge tokens attend to bottom-edge ones, and it attends to the zero-padded
tokens as keys. Padded grids are checked against an explicit per-token reference in
tests/models/test_swin_padding.py instead.
"""

from __future__ import annotations

import pytest
import torch

from bench.core.compat import ensure_torchvision
from bench.models.attention import WindowAttention, XCAttention
from bench.models.pyramid import Block

ensure_torchvision()
from timm.models.swin_transformer import SwinTransformerBlock  # noqa: E402
from timm.models.xcit import XCA  # noqa: E402

TOL = 1e-5


@pytest.mark.parametrize(
    ("grid", "window", "shift"),
    [
        ((8, 8), 4, False),
        ((8, 8), 4, True),
        ((8, 12), 4, True),  # non-square, tiled
        ((4, 4), 2, True),  # the quick pyramid's stage 3
        ((3, 3), 4, True),  # smaller than the window: one global window, no shift
    ],
)
def test_swin_block_matches_timm(grid: tuple[int, int], window: int, shift: bool) -> None:
    torch.manual_seed(0)
    dim, heads = 32, 2
    attn = WindowAttention(dim, heads, grid_size=grid, window_size=window, shift=shift)
    ours = Block(attn, dim, mlp_hidden=4 * dim, drop=0.0, drop_path=0.0).eval()
    theirs = SwinTransformerBlock(dim, input_resolution=grid, num_heads=heads, window_size=window,
                                  shift_size=window // 2 if shift else 0).eval()
    theirs.load_state_dict(ours.state_dict())  # same parameter names, strict
    assert attn.window_size == theirs.window_size and attn.shift_size == theirs.shift_size
    x = torch.randn(2, grid[0] * grid[1], dim)
    with torch.no_grad():
        expected = theirs(x.view(2, *grid, dim)).reshape(2, -1, dim)
        got = ours(x, grid)
        attn.fused = False
        got_unfused = ours(x, grid)
    assert (got - expected).abs().max() < TOL
    assert (got_unfused - expected).abs().max() < TOL


def test_swin_small_stage_is_one_global_window() -> None:
    attn = WindowAttention(16, 2, grid_size=(3, 3), window_size=7, shift=True)
    assert attn.window_size == (3, 3) and attn.shift_size == (0, 0) and attn.attn_mask is None


@pytest.mark.parametrize("lpi", [False, True])
def test_xca_matches_timm(lpi: bool) -> None:
    torch.manual_seed(0)
    dim, heads, grid = 32, 4, (5, 6)
    ours = XCAttention(dim, heads, grid_size=grid, lpi=lpi).eval()
    theirs = XCA(dim, num_heads=heads, qkv_bias=True).eval()
    with torch.no_grad():
        ours.temperature.uniform_(0.5, 2.0)  # a non-trivial temperature
    theirs.load_state_dict({k: v for k, v in ours.state_dict().items() if not k.startswith("local_mp.")})
    x = torch.randn(2, grid[0] * grid[1], dim)
    with torch.no_grad():
        expected = theirs(x)
        if lpi:
            expected = expected + ours.local_mp(x, *grid)  # timm's own LPI module, in parallel
        got = ours(x, grid)
    assert (got - expected).abs().max() < TOL
