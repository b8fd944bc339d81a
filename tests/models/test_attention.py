"""The attention modules: shared contract, and each mechanism's defining behaviour."""

from __future__ import annotations

import inspect

import pytest
import torch

from bench.models.attention import (
    ATTENTION,
    FastformerAttention,
    LinformerAttention,
    PerformerAttention,
    SoftmaxAttention,
    WindowAttention,
)
from bench.models.attention import performer as performer_module

NAMES = ATTENTION.names()


def build(name: str, dim: int = 32, heads: int = 2, grid: tuple[int, int] = (5, 7), **options) -> torch.nn.Module:
    torch.manual_seed(0)
    if name == "swin":
        options.setdefault("window_size", 4)
    return ATTENTION.get(name)(dim, heads, grid_size=grid, **options).eval()


def test_registry_names() -> None:
    assert NAMES == ["fastformer", "linformer", "performer", "softmax", "swin", "xca"]
    with pytest.raises(KeyError, match="valid names: fastformer"):
        ATTENTION.get("nope")


@pytest.mark.parametrize("name", NAMES)
def test_docstring_cites_paper_equation_and_cost(name: str) -> None:
    doc = inspect.getmodule(ATTENTION.get(name)).__doc__
    assert "arXiv:" in doc and "=" in doc and "O(N" in doc


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("grid", [(5, 7), (8, 8)])
def test_contract_shape_and_gradient(name: str, grid: tuple[int, int]) -> None:
    module = build(name, grid=grid).train()
    x = torch.randn(3, grid[0] * grid[1], 32, requires_grad=True)
    out = module(x, grid)
    assert out.shape == x.shape
    out.square().mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_maps_recorded_only_when_asked(name: str) -> None:
    module = build(name)
    x = torch.randn(2, 35, 32)
    with torch.no_grad():
        plain = module(x, (5, 7))
        module.keep_attention = True
        recorded = module(x, (5, 7))
    torch.testing.assert_close(recorded, plain, atol=1e-5, rtol=1e-5)
    if module.has_token_attention:
        assert module.last_attention.shape == (2, 2, 35, 35)
    else:
        assert module.last_attention is None


def test_softmax_fused_equals_explicit() -> None:
    module = build("softmax")
    x = torch.randn(2, 35, 32)
    with torch.no_grad():
        fused = module(x, (5, 7))
        module.fused = False
        explicit = module(x, (5, 7))
    torch.testing.assert_close(fused, explicit, atol=1e-6, rtol=1e-5)


def test_softmax_map_is_row_stochastic() -> None:
    module = build("softmax")
    module.keep_attention = True
    with torch.no_grad():
        module(torch.randn(2, 35, 32), (5, 7))
    torch.testing.assert_close(module.last_attention.sum(-1), torch.ones(2, 2, 35))


def test_linformer_projects_to_k_and_fixes_n() -> None:
    assert build("linformer", grid=(8, 8), proj_len=16).seq_proj.shape == (16, 64)
    assert build("linformer", grid=(2, 3), proj_len=16).proj_len == 6  # capped at N
    module = build("linformer", grid=(8, 8), proj_len=16)
    with pytest.raises(ValueError, match=r"built for a \(8, 8\) grid"):
        module(torch.randn(1, 49, 32), (7, 7))


def test_linformer_effective_map_reproduces_output() -> None:
    module: LinformerAttention = build("linformer", grid=(4, 4), proj_len=8)
    x = torch.randn(2, 16, 32)
    module.keep_attention = True
    with torch.no_grad():
        out = module(x, (4, 4))
        v = module._split_heads(module.qkv(x)[..., 64:])
        mixed = module.proj(module._merge_heads(module.last_attention @ v))
    torch.testing.assert_close(mixed, out, atol=1e-5, rtol=1e-5)


def test_performer_features_fixed_in_eval_and_saved() -> None:
    module: PerformerAttention = build("performer", redraw_interval=2)
    assert {"features", "feature_seed", "train_forwards"} <= set(module.state_dict())
    w = module.features.clone()
    x = torch.randn(2, 35, 32)
    with torch.no_grad():
        first, second = module(x, (5, 7)), module(x, (5, 7))
    assert torch.equal(first, second) and torch.equal(module.features, w)
    module.train()
    module(x, (5, 7)), module(x, (5, 7))
    assert torch.equal(module.features, w)  # the first draw serves 2 training forwards
    module(x, (5, 7))
    assert not torch.equal(module.features, w)  # redrawn: only in training, only when asked
    assert int(module.train_forwards) == 3
    fixed = build("performer").train()
    w = fixed.features.clone()
    fixed(x, (5, 7)), fixed(x, (5, 7))
    assert torch.equal(fixed.features, w)


def test_performer_resumed_schedule_redraws_as_uninterrupted() -> None:
    x = torch.randn(2, 35, 32)
    straight: PerformerAttention = build("performer", redraw_interval=2).train()
    for _ in range(3):
        straight(x, (5, 7))
    resumed: PerformerAttention = build("performer", redraw_interval=2).train()
    resumed(x, (5, 7))
    state = resumed.state_dict()  # a checkpoint after one training forward
    fresh: PerformerAttention = build("performer", redraw_interval=2).train()
    torch.manual_seed(123)  # redraws must not depend on the global RNG
    fresh.load_state_dict(state)
    fresh(x, (5, 7)), fresh(x, (5, 7))
    assert torch.equal(fresh.features, straight.features) and int(fresh.train_forwards) == 3


def test_performer_features_are_orthogonal_blocks() -> None:
    w = build("performer", num_features=40).features  # head_dim 16: blocks of 16 rows
    block = w[:16] / w[:16].norm(dim=1, keepdim=True)
    torch.testing.assert_close(block @ block.t(), torch.eye(16), atol=1e-5, rtol=0)


def test_performer_approximates_softmax() -> None:
    softmax: SoftmaxAttention = build("softmax", dim=16, heads=1)
    torch.nn.init.normal_(softmax.qkv.weight, std=0.1)  # moderate logits, where FAVOR+ is accurate
    performer: PerformerAttention = build("performer", dim=16, heads=1, num_features=4096)
    performer.load_state_dict({**performer.state_dict(), **softmax.state_dict()})
    x = torch.randn(2, 35, 16)
    with torch.no_grad():
        exact, approx = softmax(x, (5, 7)), performer(x, (5, 7))
        v = softmax.qkv(x)[..., 32:]
        uniform = softmax.proj(v.mean(dim=1, keepdim=True).expand(-1, 35, -1))  # attention with a flat map
    assert (approx - exact).abs().max() < 0.5 * (uniform - exact).abs().max()


def test_performer_kernel_runs_in_fp32_under_autocast(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    original = performer_module.positive_features

    def spy(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        seen.append(x.dtype)
        return original(x, *args, **kwargs)

    monkeypatch.setattr(performer_module, "positive_features", spy)
    module = build("performer")
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = module(torch.randn(2, 35, 32), (5, 7))
    assert seen == [torch.float32, torch.float32]
    assert out.dtype == torch.bfloat16  # only the kernel is kept in fp32


def test_fastformer_follows_the_paper_equations() -> None:
    module: FastformerAttention = build("fastformer", dim=8, heads=2, grid=(2, 3))
    x = torch.randn(1, 6, 8)
    with torch.no_grad():
        got = module(x, (2, 3))
        q, k, v = module.qkv(x)[0].split(8, dim=-1)  # (N, C) each
        outs = []
        for h in range(2):
            sl = slice(4 * h, 4 * h + 4)
            wq, wk = module.query_score[h, :, 0], module.key_score[h, :, 0]
            alpha = torch.softmax(q[:, sl] @ wq / 2.0, dim=0)
            gq = (alpha[:, None] * q[:, sl]).sum(0)
            p = gq * k[:, sl]
            beta = torch.softmax(p @ wk / 2.0, dim=0)
            gk = (beta[:, None] * p).sum(0)
            outs.append(gk * v[:, sl])
        expected = module.proj(torch.cat(outs, dim=-1)) + q
    torch.testing.assert_close(got[0], expected, atol=1e-6, rtol=1e-5)


def test_swin_shift_alternates_and_map_stays_in_windows() -> None:
    # within a stage: regular, shifted, ..., ending on a shifted block
    assert [WindowAttention.block_options(i, 2)["shift"] for i in range(2)] == [False, True]
    assert [WindowAttention.block_options(i, 6)["shift"] for i in range(6)] == [False, True] * 3
    assert WindowAttention.block_options(0, 1) == {"shift": True}
    assert [WindowAttention.block_options(i, 3)["shift"] for i in range(3)] == [True, False, True]
    module: WindowAttention = build("swin", grid=(8, 8))
    module.keep_attention = True
    with torch.no_grad():
        module(torch.randn(2, 64, 32), (8, 8))
    attn = module.last_attention
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 2, 64))
    window_of = (torch.arange(8)[:, None] // 4 * 2 + torch.arange(8)[None, :] // 4).flatten()
    outside = window_of[:, None] != window_of[None, :]
    assert attn[:, :, outside].abs().max() == 0
