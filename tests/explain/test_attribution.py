"""Attribution maps and their faithfulness scores: hand-checked cases, determinism, committed results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.explain.attribution import (
    METHODS, attribute, deletion_auc, deletion_inputs, dilate, feature_tap, pointing_hit, relevance_mass,
    relevance_rank, spearman,
)
from bench.models import create_model

RESULTS = Path(__file__).resolve().parents[2] / "data" / "results"


def _mask() -> np.ndarray:
    mask = np.zeros((8, 8), dtype=bool)
    mask[2:4, 2:4] = True
    return mask


def test_pointing_game_with_and_without_tolerance():
    saliency = np.zeros((8, 8))
    saliency[3, 3] = 1.0
    assert pointing_hit(saliency, _mask(), tolerance=0) == 1.0
    saliency = np.zeros((8, 8))
    saliency[5, 5] = 1.0  # two pixels from the mask's corner
    assert pointing_hit(saliency, _mask(), tolerance=1) == 0.0
    assert pointing_hit(saliency, _mask(), tolerance=2) == 1.0
    assert dilate(_mask(), 1).sum() == 16


def test_pointing_game_shares_a_tied_maximum():
    flat = np.zeros((8, 8))
    assert pointing_hit(flat, _mask(), tolerance=0) == 4 / 64  # the random baseline, not pixel (0, 0)
    plateau = np.zeros((8, 8))
    plateau[3, 2:6] = 1.0  # four tied peaks, two of them in the mask
    assert pointing_hit(plateau, _mask(), tolerance=0) == 0.5
    plateau[0, 0] = 1.0
    assert pointing_hit(plateau, _mask(), tolerance=0) == 0.4


def test_relevance_mass_and_rank():
    saliency = np.where(_mask(), 3.0, 0.0)
    saliency[0, 0] = 1.0
    saliency[7, 7] = -5.0  # negative attribution is not relevance
    assert relevance_mass(saliency, _mask()) == pytest.approx(12 / 13)
    assert relevance_mass(np.zeros((8, 8)), _mask()) is None
    assert relevance_rank(np.where(_mask(), 1.0, 0.0), _mask()) == 1.0
    assert relevance_rank(np.where(_mask(), 0.0, 1.0), _mask()) == 0.0
    assert relevance_rank(np.ones((8, 8)), _mask()) == 0.5  # ties share ranks
    assert relevance_rank(np.ones((8, 8)), np.zeros((8, 8), dtype=bool)) is None


def test_deletion_curve_and_its_area():
    assert deletion_auc(np.ones(11)) == pytest.approx(1.0)
    assert deletion_auc(np.linspace(1, 0, 11)) == pytest.approx(0.5)
    image = torch.arange(16, dtype=torch.float32).view(1, 4, 4)
    copies = deletion_inputs(image, image[0].numpy(), baseline=-1.0)
    assert copies.shape == (11, 1, 4, 4)
    assert (copies[0] == image).all() and (copies[-1] == -1).all()
    assert copies[5].eq(-1).sum() == 8 and copies[5][0, 3, 3] == -1  # the top-ranked half goes first


def test_spearman_of_maps():
    a = np.arange(16, dtype=float).reshape(4, 4)
    assert spearman(a, a * 2 + 1) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, np.ones((4, 4))) is None


@pytest.mark.parametrize("name", ["pyramid_performer", "pyramid_swin", "vit", "resnet50"])
def test_attribution_is_deterministic_and_the_feature_tap_keeps_the_logits(name: str):
    torch.manual_seed(0)
    model = create_model(name, "quick", num_classes=10, in_chans=1, image_size=64).eval()
    images, targets = torch.randn(2, 1, 64, 64), torch.tensor([3, 7])
    with torch.no_grad():
        assert torch.allclose(feature_tap(model)(images), model(images), atol=1e-5)
    for method in METHODS:
        first = attribute(model, method, images, targets, baseline=-1.0, ig_steps=8, smoothgrad_samples=4)
        second = attribute(model, method, images, targets, baseline=-1.0, ig_steps=8, smoothgrad_samples=4)
        assert first.shape == (2, 64, 64) and torch.isfinite(first).all(), method
        assert torch.equal(first, second), f"{name} {method}: the same input gave two maps"


def test_gradcam_taps_every_model_at_the_same_stride():
    """One map resolution for every model, so that Grad-CAM's scores compare models, not grids."""
    from bench.core.config import load_suite
    from bench.explain.attribution import CAM_STRIDE

    for name in load_suite("quick").models:
        model = create_model(name, "quick", num_classes=10, in_chans=1, image_size=64).eval()
        images = torch.randn(2, 1, 64, 64)
        with torch.no_grad():
            tap = feature_tap(model)
            assert tuple(tap.features(images).shape[-2:]) == (64 // CAM_STRIDE,) * 2, name
            assert torch.allclose(tap(images), model(images), atol=1e-5), name
    grids = {}
    for name in ("resnet50", "vit", "pyramid_softmax"):  # the pyramid's patch is 7 at this scale
        model = create_model(name, "paper", num_classes=10, in_chans=1, image_size=224).eval()
        with torch.no_grad():
            grids[name] = feature_tap(model).features(torch.randn(1, 1, 224, 224)).shape[-1]
    assert grids == {"resnet50": 14, "vit": 14, "pyramid_softmax": 16}


def _explain_results() -> list[dict]:
    found = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*/quick/explain__*.json"))]
    return [r for r in found if r["error"] is None and r["model"] is not None and r["metrics"].get("faithfulness")]


def test_committed_explanations_pass_the_sanity_check_and_beat_random_pointing():
    results = _explain_results()
    if not results:
        pytest.skip("no committed explain results")
    below = [r["model"]["name"] for r in results
             if any(r["metrics"]["sanity"][m]["spearman"] is not None and r["metrics"]["sanity"][m]["spearman"] < 0.5
                    for m in ("gradcam", "integrated_gradients"))]
    assert len(below) >= 2, f"Grad-CAM or IG maps change with random weights for only {below}"
    best = max(((r, m) for r in results for m in METHODS),
               key=lambda rm: rm[0]["metrics"]["faithfulness"]["scores"][rm[1]]["pointing_game"]["value"])
    scores = best[0]["metrics"]["faithfulness"]["scores"][best[1]]
    assert scores["pointing_game"]["ci95"][0] > scores["pointing_game_random"]["value"], (best[0]["model"], best[1])
