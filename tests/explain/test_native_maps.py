"""Native maps: every quick model's own explanation map, its shape, range and determinism,
what each kind of model gives, the rollout rule by hand, and that reading maps changes
neither the model's outputs nor its state."""

from __future__ import annotations

import functools

import pytest
import torch

from bench.explain import native_maps as native_module
from bench.explain.native_maps import NO_ATTENTION_NOTE, NativeMaps, native_maps, received, rollout, to_image
from bench.models import create_model, list_models
from bench.models.adapters import TimmAdapter
from bench.models.attention import FastformerAttention, PerformerAttention, TokenAttention

pytestmark = pytest.mark.usefixtures("one_thread")  # as every model test (tests/models/conftest.py)

NAMES = list_models()
# model -> (map names, words the note must hold or None, channel_map shape or None); batch of 2
EXPECTED = {
    "pyramid_softmax": (["attention rollout, stage 1"], None, None),
    "pyramid_performer": (["implicit attention rollout, stage 1"], None, None),
    "pyramid_swin": (["window attention rollout, stage 1"], None, None),
    "pyramid_linformer": (["effective token mixing, stage 1"], None, None),
    "pyramid_fastformer": (["alpha (query pooling), stage 1", "beta (key pooling), stage 1"], None, None),
    "pyramid_xca": ([], "between channels, not tokens", (2, 8, 24, 24)),
    "pyramid_xca_nolpi": ([], "between channels, not tokens", (2, 8, 24, 24)),
    "resnet50": ([], NO_ATTENTION_NOTE, None),
    "vit": (["CLS attention rollout"], None, None),
}


@functools.cache
def _images() -> torch.Tensor:
    return torch.randn(2, 1, 64, 64, generator=torch.Generator().manual_seed(1))


def _build(name: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, "quick", **kwargs)


@functools.cache
def _maps(name: str) -> tuple[torch.nn.Module, NativeMaps]:
    """One model per name and its maps, shared by the read-only tests."""
    model = _build(name)
    return model, native_maps(model, name, _images())


def test_every_registered_model_is_covered() -> None:
    assert sorted(EXPECTED) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_maps_are_unit_range_images_at_input_size(name: str) -> None:
    _, result = _maps(name)
    assert result.model == name
    for native in result.maps:
        assert native.maps.shape == (2, 64, 64) and native.maps.dtype == torch.float32
        assert torch.isfinite(native.maps).all()
        assert native.maps.min() >= 0 and native.maps.amax(dim=(1, 2)).eq(1).all()
        assert native.description.endswith(".") and native.name in EXPECTED[name][0]


@pytest.mark.parametrize("name", NAMES)
def test_maps_are_deterministic(name: str) -> None:
    model, first = _maps(name)
    second = native_maps(model, name, _images())
    assert [m.name for m in second.maps] == [m.name for m in first.maps]
    for a, b in zip(first.maps, second.maps):
        assert torch.equal(a.maps, b.maps)
    if first.channel_map is not None:
        assert torch.equal(first.channel_map, second.channel_map)


@pytest.mark.parametrize("name", NAMES)
def test_which_models_have_maps_notes_and_channel_maps(name: str) -> None:
    _, result = _maps(name)
    names, note, channel = EXPECTED[name]
    assert [m.name for m in result.maps] == names
    assert (result.note is None) if note is None else (note in result.note)
    assert (result.channel_map is None) if channel is None else (tuple(result.channel_map.shape) == channel)
    if channel is not None:  # a softmax over channels: rows sum to 1
        torch.testing.assert_close(result.channel_map.sum(-1), torch.ones(channel[:-1]))


def test_identity_attention_rolls_out_to_a_uniform_received_map() -> None:
    eye = torch.eye(6).expand(2, 3, 6, 6)
    flow = rollout([eye, eye])
    torch.testing.assert_close(flow, torch.eye(6).expand(2, 6, 6))
    torch.testing.assert_close(received(flow), torch.full((2, 6), 1 / 6))
    assert torch.equal(to_image(received(flow), (2, 3), (4, 6), (4, 6)), torch.ones(2, 4, 6))


def test_rollout_by_hand() -> None:
    # two heads that average to "every token attends to token 0"; then a uniform block
    to_first = torch.zeros(3, 3)
    to_first[:, 0] = 1
    block1 = torch.stack([2 * to_first, torch.zeros(3, 3)])[None]  # head mean = to_first
    block2 = torch.full((1, 1, 3, 3), 1 / 3)
    step1 = 0.5 * to_first + 0.5 * torch.eye(3)
    step2 = 0.5 * torch.full((3, 3), 1 / 3) + 0.5 * torch.eye(3)
    torch.testing.assert_close(rollout([block1, block2])[0], step2 @ step1)
    # received: token 0 gets (1 + 1/2 + 1/2) / 3 of the first block's rollout
    torch.testing.assert_close(received(rollout([block1]))[0], torch.tensor([2 / 3, 1 / 6, 1 / 6]))


def test_rollout_rows_are_renormalised() -> None:
    attention = torch.rand(1, 2, 5, 5)  # rows do not sum to 1
    torch.testing.assert_close(rollout([attention]).sum(-1), torch.ones(1, 5))


def test_to_image_scales_each_image_and_zeroes_uncovered_pixels() -> None:
    values = torch.tensor([[0.0, 1.0, 2.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    image = to_image(values, (2, 2), (4, 4), (5, 6))
    assert image.shape == (2, 5, 6) and image[0].max() == 1 and image[0, 3, 3] == 1
    assert image[:, 4:].eq(0).all() and image[:, :, 4:].eq(0).all()
    assert image[1].eq(0).all()  # an all-zero map stays zero


def test_fastformer_weights_sum_to_one_per_head() -> None:
    model = _build("pyramid_fastformer").eval()
    modules = [m for m in model.modules() if isinstance(m, FastformerAttention)]
    for module in modules:
        module.keep_attention = True
    with torch.no_grad():
        model(_images())
    for module in modules:
        n = module.num_tokens
        for weights in (module.last_alpha, module.last_beta):
            assert weights.shape == (2, module.num_heads, n) and weights.min() >= 0
            torch.testing.assert_close(weights.sum(-1), torch.ones(2, module.num_heads))


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("pyramid_")])
def test_recording_leaves_outputs_unchanged(name: str) -> None:
    model = _build(name).eval()
    with torch.no_grad():
        plain = model(_images())
        for module in model.modules():
            if isinstance(module, TokenAttention):
                module.keep_attention = True
        recorded = model(_images())
    torch.testing.assert_close(recorded, plain, atol=1e-6, rtol=0)
    if name in ("pyramid_fastformer", "pyramid_xca", "pyramid_xca_nolpi"):
        assert torch.equal(recorded, plain)  # recording there is a side copy of the same tensors


@pytest.mark.parametrize("name", ["pyramid_performer", "pyramid_swin", "vit"])
def test_state_is_restored_and_outputs_unchanged(name: str) -> None:
    model = _build(name).eval()
    with torch.no_grad():
        before = model(_images())
    model.train()
    attention = [m for m in model.modules() if isinstance(m, TokenAttention)]
    if attention:
        attention[-1].eval()  # a mixed-mode model keeps its mix
        attention[0].keep_attention = True
        attention[0].last_attention = sentinel = torch.zeros(1)
    modes = [m.training for m in model.modules()]
    native_maps(model, name, _images())
    assert [m.training for m in model.modules()] == modes
    if attention:
        assert attention[0].keep_attention and attention[0].last_attention is sentinel
        assert not any(m.keep_attention for m in attention[1:])
        assert all(m.last_attention is None for m in attention[1:])
        attention[0].keep_attention = False
    with torch.no_grad():
        assert torch.equal(model.eval()(_images()), before)


def test_performer_features_are_not_redrawn_by_reading_maps() -> None:
    model = _build("pyramid_performer").train()  # a training forward would count towards a redraw
    modules = [m for m in model.modules() if isinstance(m, PerformerAttention)]
    features = [m.features.clone() for m in modules]
    first = native_maps(model, "pyramid_performer", _images()).maps[0].maps
    second = native_maps(model, "pyramid_performer", _images()).maps[0].maps
    assert torch.equal(first, second)
    assert all(torch.equal(m.features, f) and int(m.train_forwards) == 0 for m, f in zip(modules, features))


def test_chunks_give_the_maps_of_the_whole_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    model, whole = _maps("pyramid_softmax")
    monkeypatch.setattr(native_module, "CHUNK_SIZE", 1)
    chunked = native_maps(model, "pyramid_softmax", _images())
    torch.testing.assert_close(chunked.maps[0].maps, whole.maps[0].maps, atol=1e-6, rtol=0)


def test_pixels_the_patch_grid_drops_are_zero() -> None:
    model = _build("pyramid_softmax", image_size=66)  # patch 4: a 16 x 16 grid covers 64 px
    maps = native_maps(model, "pyramid_softmax", torch.randn(2, 1, 66, 66)).maps[0].maps
    assert maps.shape == (2, 66, 66) and maps[:, 64:].eq(0).all() and maps[:, :, 64:].eq(0).all()


def test_timm_models_without_a_cls_token_or_without_attention() -> None:
    from timm.models.resnet import BasicBlock, ResNet
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    pooled = TimmAdapter(VisionTransformer(img_size=32, patch_size=8, in_chans=1, num_classes=3, embed_dim=32,
                                           depth=2, num_heads=2, class_token=False, global_pool="avg"), "timm:vit")
    result = native_maps(pooled, "timm:vit", torch.randn(2, 1, 32, 32))
    assert [m.name for m in result.maps] == ["attention rollout"] and result.maps[0].maps.shape == (2, 32, 32)
    assert "each patch query pays on average" in result.maps[0].description
    cnn = TimmAdapter(ResNet(BasicBlock, [1, 1, 1, 1], num_classes=3, in_chans=1), "timm:resnet10")
    result = native_maps(cnn, "timm:resnet10", torch.randn(1, 1, 32, 32))
    assert result.maps == () and result.note == NO_ATTENTION_NOTE and result.channel_map is None


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        native_maps(_maps("pyramid_softmax")[0], "pyramid_softmax", torch.randn(1, 64, 64))
    with pytest.raises(TypeError, match="PyramidTransformer or a TimmAdapter"):
        native_maps(torch.nn.Linear(2, 2), "linear", torch.randn(1, 1, 2, 2))


def test_uniformity_reads_flat_and_peaked_maps_on_an_absolute_scale():
    import numpy as np

    from bench.explain.gallery import uniformity

    flat = uniformity(np.ones((2, 8, 8)))
    assert flat == {"entropy_ratio": pytest.approx(1.0), "peak_over_uniform": pytest.approx(1.0),
                    "floor": pytest.approx(1.0)}
    peaked = np.full((1, 8, 8), 0.5)
    peaked[0, 0, 0] = 1.0  # divided by its maximum, as native maps are: a floor of 0.5
    u = uniformity(peaked)
    assert 0.9 < u["entropy_ratio"] < 1.0 and u["floor"] == pytest.approx(0.5)
    assert u["peak_over_uniform"] == pytest.approx(64 / (63 * 0.5 + 1.0))
    spike = np.zeros((1, 8, 8))
    spike[0, 3, 3] = 1.0
    assert uniformity(spike)["entropy_ratio"] == pytest.approx(0.0) and uniformity(spike)["floor"] == 0.0


def test_native_strips_use_an_absolute_scale_with_a_colour_bar():
    import numpy as np

    from bench.explain.images import BAR_PX, PANEL_PX, absolute_strip, strip

    image = np.random.default_rng(0).random((16, 16))
    flat = np.full((16, 16), 0.9)
    flat[4:6, 4:6] = 1.0  # a map within 10% of its maximum everywhere
    drawn = absolute_strip(image, flat)
    assert drawn.size == (strip(image, flat).width + 2 + BAR_PX, PANEL_PX)
    panel = np.asarray(drawn)[:, PANEL_PX + 2:2 * PANEL_PX + 2].astype(int)
    assert np.ptp(panel[..., 0]) < 40 and panel[..., 0].mean() < 160  # one dark colour: about 1x uniform
    scaled = np.asarray(strip(image, flat))[:, PANEL_PX + 2:2 * PANEL_PX + 2].astype(int)
    assert scaled[..., 0].mean() > 240  # divided by its maximum, the same flat map is a bright field
