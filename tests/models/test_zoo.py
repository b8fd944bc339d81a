"""Every registered model, parametrized over the registry: a new entry is tested for free."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.models import create_model, default_image_size, list_models
from bench.models.adapters import TimmAdapter

QUICK = list_models()
PYRAMIDS = [name for name in QUICK if name.startswith("pyramid_")]


def build(name: str, scale: str = "quick", **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, scale, **kwargs)


def check_train_step(model: nn.Module, x: torch.Tensor) -> None:
    """Forward + backward in train mode: (B, 10) logits, a finite nonzero gradient at the input."""
    model.train()
    x = x.clone().requires_grad_(True)
    out = model(x)
    assert out.shape == (x.shape[0], 10)
    out.logsumexp(dim=1).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def check_eval_deterministic(model: nn.Module, x: torch.Tensor) -> None:
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("name", QUICK)
def test_quick_model_trains_and_evaluates_deterministically(name: str) -> None:
    model = build(name)
    x = torch.randn(2, 1, 64, 64)
    check_train_step(model, x)
    check_eval_deterministic(model, x)


@pytest.mark.parametrize("name", PYRAMIDS)
def test_paper_pyramid_trains_and_evaluates_deterministically(name: str) -> None:
    model = build(name, "paper")
    x = torch.randn(1, 1, 224, 224)
    check_train_step(model, x)
    check_eval_deterministic(model, x)


def test_paper_pyramids_are_param_matched() -> None:
    with torch.device("meta"):  # shapes only: no weights to initialise
        counts = {name: sum(p.numel() for p in create_model(name, "paper").parameters()) for name in PYRAMIDS}
    reference = counts["pyramid_softmax"]
    assert 27e6 < reference < 29e6  # about 28M with the 10-class head
    for name, count in counts.items():
        assert abs(count - reference) / reference <= 0.02, (name, count, reference)


@pytest.mark.parametrize("name", QUICK)
def test_feature_map_and_attention_maps_contract(name: str) -> None:
    model = build(name).eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        logits = model(x)
        fmap = model.feature_map(x)
        maps = model.attention_maps(x)
        assert torch.equal(model(x), logits)  # map recording leaves the model as it was
    assert fmap.ndim == 4 and fmap.shape[0] == 2 and fmap.shape[1] > 1 and torch.isfinite(fmap).all()
    if hasattr(model, "forward_head"):
        torch.testing.assert_close(model.forward_head(fmap), logits)
    assert isinstance(model.has_token_attention, bool)
    if not model.has_token_attention:
        assert maps is None
        return
    assert isinstance(maps, list) and len(maps) >= 1
    for m in maps:
        assert m.ndim == 4 and m.shape[0] == 2 and m.shape[-1] == m.shape[-2] and torch.isfinite(m).all()


def test_vit_maps_are_the_softmax_its_blocks_apply() -> None:
    model = build("vit").eval()
    x = torch.randn(2, 1, 64, 64)
    first = model.model.blocks[0].attn
    tokens = model.model.patch_embed.num_patches + 1  # the CLS token
    seen = {}
    first.register_forward_hook(lambda mod, args, out: seen.update(x=args[0], out=out))
    maps = model.attention_maps(x)
    assert len(maps) == len(model.model.blocks) and maps[0].shape == (2, first.num_heads, tokens, tokens)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, first.num_heads, tokens))
    with torch.no_grad():
        v = first.qkv(seen["x"]).reshape(2, tokens, 3, first.num_heads, -1).permute(2, 0, 3, 1, 4)[2]
        mixed = first.proj((maps[0] @ v).transpose(1, 2).reshape(2, tokens, -1))
    torch.testing.assert_close(mixed, seen["out"], atol=1e-5, rtol=1e-5)


def test_cnn_has_no_token_attention() -> None:
    model = build("resnet50")
    assert model.has_token_attention is False and model.attention_maps(torch.randn(1, 1, 64, 64)) is None


@pytest.mark.parametrize("name", ["pyramid_softmax", "resnet50", "vit"])
def test_in_chans_configurable(name: str) -> None:
    model = build(name, in_chans=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_timm_models_through_the_adapter() -> None:
    cnn = build("timm:resnet18")
    assert isinstance(cnn, TimmAdapter) and not cnn.has_token_attention
    x = torch.randn(2, 1, 64, 64)
    assert cnn(x).shape == (2, 10) and cnn.feature_map(x).shape == (2, 512, 2, 2)
    vit = build("timm:vit_tiny_patch16_224").eval()  # built for the 64 px input of the quick scale
    assert vit.feature_map(x).shape == (2, 192, 4, 4)
    assert [m.shape for m in vit.attention_maps(x)] == [(2, 3, 17, 17)] * 12


def test_adapter_reads_nhwc_features() -> None:
    class NHWC(nn.Module):
        num_classes, output_fmt = 10, "NHWC"

        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            return x.permute(0, 2, 3, 1)

    x = torch.randn(1, 4, 3, 5)
    assert torch.equal(TimmAdapter(NHWC(), "stub").feature_map(x), x)


def test_unknown_names_and_scales() -> None:
    with pytest.raises(KeyError, match="valid names: pyramid_fastformer.*vit"):
        create_model("pyramid_nope")
    with pytest.raises(KeyError, match="timm.list_models"):
        create_model("timm:no_such_net")
    with pytest.raises(ValueError, match="valid scales: quick, paper"):
        create_model("vit", "huge")
    assert default_image_size("quick") == 64 and default_image_size("paper") == 224


def test_pyramid_rejects_other_input_sizes() -> None:
    with pytest.raises(ValueError, match="built for 64px input"):
        build("pyramid_softmax")(torch.randn(1, 1, 96, 96))
    assert build("pyramid_linformer", image_size=96)(torch.randn(1, 1, 96, 96)).shape == (1, 10)
