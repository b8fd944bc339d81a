"""Closed-form attention MACs against the counters of bench.models.flops, and against the papers."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from bench.models import flops_formulas as ff
from bench.models import create_model
from bench.models.attention import ATTENTION
from bench.models.flops import count_attention_flops, count_flops

TOLERANCE = 0.02  # formula vs counter

# Two shapes per module, differing in N, C and heads; a third where an option changes the cost.
CASES: list[tuple[str, int, int, tuple[int, int], dict[str, Any]]] = [
    ("softmax", 32, 2, (8, 8), {}),
    ("softmax", 48, 3, (14, 14), {}),
    ("linformer", 32, 2, (8, 8), {"proj_len": 16}),
    ("linformer", 48, 3, (14, 14), {"proj_len": 64}),
    ("linformer", 32, 2, (6, 6), {"proj_len": 64}),  # k capped at N = 36
    ("performer", 32, 2, (8, 8), {"num_features": 24}),
    ("performer", 48, 3, (14, 14), {}),  # m = round(d ln d) = 55
    ("fastformer", 32, 2, (8, 8), {}),
    ("fastformer", 48, 3, (14, 14), {}),
    ("xca", 32, 2, (8, 8), {"lpi": True}),
    ("xca", 48, 3, (14, 14), {"lpi": True}),
    ("xca", 48, 3, (14, 14), {"lpi": False}),
    ("swin", 32, 2, (8, 8), {"window_size": 4}),  # tiled: 4 windows
    ("swin", 48, 3, (14, 14), {"window_size": 4}),  # padded to 16 x 16
    ("swin", 48, 3, (14, 14), {"window_size": 4, "shift": True}),  # padded, shifted, masked
    ("swin", 32, 2, (6, 10), {"window_size": 7}),  # H <= M: one window on that axis; W padded to 14
]


@pytest.fixture(autouse=True)
def _single_thread(one_thread: None) -> None:
    """The shared ``one_thread`` fixture (tests/conftest.py), for every test here."""


def build(name: str, dim: int, heads: int, grid: tuple[int, int], options: dict[str, Any]) -> torch.nn.Module:
    torch.manual_seed(0)
    return ATTENTION.get(name)(dim, heads, grid_size=grid, **options).eval()


def test_every_registered_module_has_a_formula() -> None:
    assert set(ATTENTION.names()) == {case[0] for case in CASES}
    for name in ATTENTION.names():
        assert ff.registered_name(build(*next(c for c in CASES if c[0] == name))) == name


@pytest.mark.parametrize("name, dim, heads, grid, options", CASES,
                         ids=[f"{c[0]}-{c[1]}x{c[2]}h-{c[3][0]}x{c[3][1]}-{i}" for i, c in enumerate(CASES)])
def test_formula_matches_the_counters(name: str, dim: int, heads: int, grid: tuple[int, int],
                                      options: dict[str, Any]) -> None:
    module = build(name, dim, heads, grid, options)
    expected = ff.attention_macs(module, batch=2)
    report = count_attention_flops(module, batch=2)
    for counted in (report.torch_gmacs * 1e9, report.fvcore_gmacs * 1e9):
        assert abs(counted - expected) / expected <= TOLERANCE, (name, counted, expected)


def test_swin_padding_is_counted() -> None:
    """14 x 14 in 4 x 4 windows runs q, k, v and the maps on 16 x 16 = 256 tokens, not 196."""
    module = build("swin", 48, 3, (14, 14), {"window_size": 4})
    assert ff.padded_grid((14, 14), (4, 4)) == (16, 16)
    c = 48
    assert ff.attention_macs(module) == 3 * 256 * c * c + 2 * 256 * 16 * c + 196 * c * c


def test_formulas_by_hand() -> None:
    """Small cases worked out on paper, and the complexities the papers state."""
    assert ff.softmax_macs(4, 2) == 4 * 4 * 4 + 2 * 16 * 2 == 128
    assert ff.linformer_macs(4, 2, 3) == 64 + 4 * 4 * 3 * 2 == 160
    assert ff.performer_macs(4, 2, 1, 3) == 64 + 4 * 4 * 3 * 2 + 4 * 3 == 172
    assert ff.fastformer_macs(4, 2) == 64 + 32 == 96
    assert ff.xca_macs(4, 2, 2, lpi=False) == 64 + 2 * 4 * 2 == 80
    assert ff.xca_macs(4, 2, 2) == 80 + 2 * 4 * 2 * 9 == 224
    # Swin (Liu et al. 2021, eqs. 1-2): MSA 4hwC^2 + 2(hw)^2 C, W-MSA 4hwC^2 + 2M^2 hwC
    hw, c, m = 56 * 56, 96, 7
    assert ff.softmax_macs(hw, c) == 4 * hw * c**2 + 2 * hw**2 * c
    assert ff.swin_macs((56, 56), c, m) == 4 * hw * c**2 + 2 * m**2 * hw * c
    # a window covering the whole grid is global attention
    assert ff.swin_macs((7, 7), c, 7) == ff.softmax_macs(49, c)


def test_unregistered_module_is_refused() -> None:
    with pytest.raises(KeyError, match="not a registered attention"):
        ff.attention_macs(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("name", ["pyramid_softmax", "pyramid_linformer", "pyramid_performer",
                                  "pyramid_fastformer", "pyramid_xca", "pyramid_swin"])
def test_whole_pyramid_matches_the_counter(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, "quick")
    expected = ff.analytic_model_macs(model)
    report = count_flops(model, (1, 1, 64, 64))
    assert abs(report.torch_gmacs * 1e9 - expected) / expected <= TOLERANCE, (report, expected)
