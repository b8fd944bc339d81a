"""Attribution maps: determinism, one map per image whatever the batch, Grad-CAM's grid, committed results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench.explain.attribution import METHODS, attribute, image_seed
from bench.explain.taps import CAM_MIN_GRID, deepest_fine_enough, feature_tap
from bench.models import create_model

RESULTS = Path(__file__).resolve().parents[2] / "data" / "results"


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, "quick", num_classes=10, in_chans=1, image_size=64).eval()


@pytest.mark.parametrize("name", ["pyramid_performer", "pyramid_swin", "vit", "resnet50"])
def test_attribution_is_deterministic_and_the_feature_tap_keeps_the_logits(name: str):
    model = _model(name)
    images, targets = torch.randn(2, 1, 64, 64), torch.tensor([3, 7])
    with torch.no_grad():
        assert torch.allclose(feature_tap(model, 64)(images), model(images), atol=1e-5)
    for method in METHODS:
        first = attribute(model, method, images, targets, baseline=-1.0, ig_steps=8, smoothgrad_samples=4)
        second = attribute(model, method, images, targets, baseline=-1.0, ig_steps=8, smoothgrad_samples=4)
        assert first.shape == (2, 64, 64) and torch.isfinite(first).all(), method
        assert torch.equal(first, second), f"{name} {method}: the same input gave two maps"


@pytest.mark.parametrize("name", ["pyramid_softmax", "resnet50"])
def test_an_images_map_is_the_same_alone_and_in_a_batch_of_8(name: str):
    """SmoothGrad seeds and scales its noise per image: bit-identical; the deterministic methods
    differ only by float rounding of batched kernels."""
    model = _model(name)
    images = torch.randn(8, 1, 64, 64) * torch.linspace(0.2, 3.0, 8).view(8, 1, 1, 1)  # ranges differ per image
    targets, ids = torch.arange(8) % 10, list(range(100, 108))
    for method in METHODS:
        batch = attribute(model, method, images, targets, baseline=-1.0, ig_steps=8, internal_batch_size=8,
                          smoothgrad_samples=4, image_ids=ids)
        for i in (0, 5):
            alone = attribute(model, method, images[i:i + 1], targets[i:i + 1], baseline=-1.0, ig_steps=8,
                              internal_batch_size=8, smoothgrad_samples=4, image_ids=ids[i:i + 1])[0]
            if method == "smoothgrad":
                assert torch.equal(alone, batch[i]), f"{name}: SmoothGrad of image {i} depends on its batch"
            else:
                assert torch.allclose(alone, batch[i], rtol=1e-4, atol=1e-6 * float(batch[i].abs().max())), method
    reordered = attribute(model, "smoothgrad", images.flip(0), targets.flip(0), baseline=-1.0, smoothgrad_samples=4,
                          image_ids=ids[::-1])
    assert torch.equal(reordered.flip(0), attribute(model, "smoothgrad", images, targets, baseline=-1.0,
                                                    smoothgrad_samples=4, image_ids=ids))


def test_smoothgrad_noise_is_seeded_by_the_image_not_its_position():
    image = torch.randn(1, 8, 8)
    assert image_seed(0, image) == image_seed(0, image.clone())  # a digest of the pixels without an id
    assert image_seed(0, image) != image_seed(0, image + 1) != image_seed(1, image)
    assert image_seed(0, image, 5) == image_seed(0, image + 1, 5) != image_seed(0, image, 6)


def test_gradcam_is_at_least_8x8_for_every_quick_model():
    """The deepest map with at least 8 cells per side, so a perfect Grad-CAM map can point inside a lesion."""
    from bench.core.config import load_suite

    assert deepest_fine_enough([16, 8, 4, 2], 8) == 1 and deepest_fine_enough([4, 2], 8) == 0
    for name in load_suite("quick").models:
        model = _model(name)
        images = torch.randn(2, 1, 64, 64)
        with torch.no_grad():
            tap = feature_tap(model, 64)
            grid = tuple(tap.features(images).shape[-2:])
            assert grid[0] >= CAM_MIN_GRID and grid[0] == grid[1], (name, grid)
            assert torch.allclose(tap(images), model(images), atol=1e-5), name


def test_gradcam_at_paper_scale_is_the_deepest_map_of_at_least_8_cells():
    grids = {}
    for name in ("resnet50", "vit", "pyramid_softmax"):
        model = create_model(name, "paper", num_classes=10, in_chans=1, image_size=224).eval()
        with torch.no_grad():
            grids[name] = feature_tap(model, 224).features(torch.randn(1, 1, 224, 224)).shape[-1]
    assert grids == {"resnet50": 14, "vit": 14, "pyramid_softmax": 8}


def _explain_results() -> list[dict]:
    found = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*/quick/explain__*.json"))]
    return [r for r in found if r["error"] is None and r["model"] is not None and r["metrics"].get("faithfulness")]


def test_committed_sanity_verdicts_follow_the_absolute_value_rule():
    """The rule the stage records and the site shows: a method fails when any variant (signed,
    absolute, each in the whole image and in the head) reaches the threshold at full randomisation
    or at a judged cascade step."""
    results = [r for r in _explain_results() if "methods" in (r["metrics"].get("sanity") or {})]
    if not results:
        pytest.skip("no committed explain results with cascading sanity checks yet")
    for r in results:
        sanity = r["metrics"]["sanity"]
        first = sanity["judged_from"] - 1
        for method, record in sanity["methods"].items():
            judged = record["cascade"][min(first, len(record["cascade"]) - 1):]
            worst = max(abs(step[v]) for step in judged for v in ("spearman", "spearman_abs", "spearman_foreground",
                                                                  "spearman_abs_foreground") if step[v] is not None)
            assert record["passed"] == (worst < sanity["threshold"]), (r["model"]["name"], method, worst)
            assert record["full"] == record["cascade"][-1]


def test_committed_fully_removed_images_are_not_read_as_findings():
    results = [r for r in _explain_results() if "fully_removed" in r["metrics"]]
    if not results:
        pytest.skip("no committed explain results with the fully removed check yet")
    for r in results:
        check = r["metrics"]["fully_removed"]
        assert check["fill"] in ("lesion_free", "blur", "mean"), "black is a class cue, not a fill"
        assert r["metrics"]["fully_removed_max_finding_prob"] == check[check["fill"]]["max_finding_prob"]
        used = check[check["fill"]]
        # image by image: no scored image's fully removed version reads as a finding above 0.5
        assert used["passed"] and used["images_above_threshold"] == 0, (r["model"]["name"], used)
        assert used["any_image_max_finding_prob"] <= 0.5 and used["images"] == check["reference"]["scored"]
        assert r["metrics"]["faithfulness"]["deletion"]["scored_images"] == check["reference"]["scored"]
