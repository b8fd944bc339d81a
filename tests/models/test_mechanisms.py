"""Every mechanism a model is named after really runs, read from the built models at both scales.

Paper-scale models are built on the meta device (shapes only), so these tests take seconds.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.core.compat import ensure_torchvision
from bench.models import SCALES, create_model, list_models
from bench.models.attention import LinformerAttention, PerformerAttention, WindowAttention, XCAttention

ensure_torchvision()
from timm.models.xcit import LPI  # noqa: E402 - needs the torchvision fix first

PYRAMIDS = [name for name in list_models() if name.startswith("pyramid_")]


def build(name: str, scale: str) -> nn.Module:
    """Quick models for real (seeded), paper models on the meta device."""
    torch.manual_seed(0)
    if scale == "quick":
        return create_model(name, scale)
    with torch.device("meta"):
        return create_model(name, scale)


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def of_type(model: nn.Module, cls: type) -> list:
    return [m for m in model.modules() if isinstance(m, cls)]


def shifts(m: WindowAttention) -> bool:
    """The module really shifts: a nonzero shift on an axis longer than its window."""
    return any(s > 0 and g > w for s, g, w in zip(m.shift_size, m.grid_size, m.window_size))


@pytest.mark.parametrize(("scale", "expected"), [("quick", 3), ("paper", 5)])
def test_swin_shifts_in_half_the_windowed_blocks(scale: str, expected: int) -> None:
    swin = of_type(build("pyramid_swin", scale), WindowAttention)
    windowed = [m for m in swin if m.window_size != m.grid_size]  # a one-window block cannot shift
    shifting = [m for m in swin if shifts(m)]
    assert len(shifting) == expected and 2 * len(shifting) >= len(windowed)
    if scale == "quick":  # every stage but the global last one shifts: more than half of all blocks
        assert 2 * len(shifting) > len(swin)
    assert all(m.padded_size == m.grid_size for m in swin)  # the default windows tile every grid
    for m in swin:  # a block that shifts has at least 2 x 2 windows of at least 2 x 2 tokens
        if shifts(m):
            assert all(g >= 2 * w >= 4 for g, w in zip(m.grid_size, m.window_size))


@pytest.mark.parametrize(("scale", "expected"), [("quick", [64, 32, 8, 2]), ("paper", [256, 128, 32, 8])])
def test_linformer_compresses_in_every_stage(scale: str, expected: list[int]) -> None:
    model = build("pyramid_linformer", scale)
    assert model.stage_setting("proj_len") == expected
    stages = [of_type(stage, LinformerAttention) for stage in model.stages]
    for stage in stages[:2]:  # the early stages, where N is large, must compress
        assert stage and all(m.proj_len < m.num_tokens for m in stage)
    for m in (m for stage in stages for m in stage):
        assert m.proj_len <= m.num_tokens // 2 and tuple(m.seq_proj.shape) == (m.proj_len, m.num_tokens)


@pytest.mark.parametrize("scale", SCALES)
def test_pyramids_param_matched_and_vit_comparable(scale: str) -> None:
    counts = {name: params(build(name, scale)) for name in PYRAMIDS + ["vit"]}
    reference = counts.pop("pyramid_softmax")
    vit = counts.pop("vit")
    assert abs(vit - reference) / reference <= 0.10, (vit, reference)
    for name, count in counts.items():
        assert abs(count - reference) / reference <= 0.02, (name, count, reference)


def test_quick_vit_sees_at_least_64_patch_tokens() -> None:
    """A fair quick ViT: an 8x8 grid or finer at 64 px (the pyramids start at 16x16), its
    parameters within 10% of pyramid_softmax's (the test above)."""
    vit = build("vit", "quick")
    x = torch.randn(1, 1, 64, 64)
    tokens = vit.model.patch_embed(x).shape[1]
    assert tokens >= 64 and vit.model.patch_embed.patch_size[0] <= 8
    assert vit.attention_maps(x)[0].shape[-1] == tokens + 1  # and the class token


def test_vit_small_contender_takes_one_channel() -> None:
    with torch.device("meta"):
        model = create_model("timm:vit_small_patch16_224", "paper", in_chans=1)
    assert tuple(model.model.patch_embed.proj.weight.shape) == (384, 1, 16, 16)
    assert len(model.model.blocks) == 12


@pytest.mark.parametrize("scale", SCALES)
def test_xca_lpi_is_on_and_its_ablation_off(scale: str) -> None:
    with_lpi, without = build("pyramid_xca", scale), build("pyramid_xca_nolpi", scale)
    blocks = len(of_type(with_lpi, XCAttention))
    assert len(of_type(with_lpi, LPI)) == blocks and with_lpi.stage_setting("lpi") == [True] * 4
    assert not of_type(without, LPI) and without.stage_setting("lpi") == [False] * 4
    assert len(of_type(without, XCAttention)) == blocks
    assert "lpi=False" in repr(without)


@pytest.mark.parametrize("scale", SCALES)
def test_performer_redraw_interval_is_recorded(scale: str) -> None:
    model = build("pyramid_performer", scale)
    assert set(model.stage_setting("redraw_interval")) == {100}
    assert all(m.redraw_interval == 100 for m in of_type(model, PerformerAttention))
    assert any(key.endswith("features") for key, _ in model.named_buffers())


def test_performer_redraws_after_the_interval_in_training_only() -> None:
    model = build("pyramid_performer", "quick")
    performers = of_type(model, PerformerAttention)
    interval = performers[0].redraw_interval
    initial = [m.features.clone() for m in performers]
    x = torch.randn(1, 1, 64, 64)

    def unchanged() -> list[bool]:
        return [torch.equal(m.features, w) for m, w in zip(performers, initial)]

    with torch.no_grad():
        model.eval()
        for _ in range(interval + 1):
            model(x)
        assert all(unchanged()) and all(int(m.train_forwards) == 0 for m in performers)
        model.train()
        for _ in range(interval):
            model(x)
        assert all(unchanged())  # the first draw serves exactly `interval` training forwards
        model(x)
        assert not any(unchanged())
        redrawn = [m.features.clone() for m in performers]
        model.eval()
        model(x)
    assert all(torch.equal(m.features, w) for m, w in zip(performers, redrawn))
    assert len({m.features.sum().item() for m in performers}) == len(performers)  # each block its own draw
