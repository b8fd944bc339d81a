"""Deletion and insertion: the fill, the curves, the random order, and the fully removed check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bench.core.config import ExplainConfig
from bench.explain.deletion import (
    DELETION_FRACTIONS, Curves, auc, curve_inputs, filled, fully_removed, gaussian_blur, ranking,
)
from bench.data.synthetic import render_item
from bench.models import create_model

CLASSES = ["acute_infarct", "arteriovenous_anomaly", "chronic_infarct", "edema", "extra", "focal_flair_hyper",
           "intra", "normal", "pituitary_lesion", "white_matter_changes"]


def test_the_default_fill_is_the_lesion_free_twin_and_black_is_refused():
    assert ExplainConfig().deletion_fill == "lesion_free" and ExplainConfig().mask == "evidence"
    with pytest.raises(ValueError, match="deletion_fill"):
        ExplainConfig(deletion_fill="black")


def test_blur_keeps_the_mean_and_removes_a_small_bright_spot():
    image = torch.zeros(1, 1, 64, 64)
    image[0, 0, 16:48, 16:48] = 1.0  # a head
    image[0, 0, 30:34, 30:34] = 3.0  # a small bright lesion
    blurred = filled(image, "blur", 0.1, black=-1.0)
    assert blurred.shape == image.shape
    assert float(blurred.mean()) == pytest.approx(float(image.mean()), rel=0.05)
    assert float(blurred[0, 0, 32, 32]) < 1.5  # the lesion is smoothed into the head
    assert torch.allclose(gaussian_blur(torch.ones(1, 1, 8, 8), 2.0), torch.ones(1, 1, 8, 8), atol=1e-6)
    assert torch.equal(filled(image, "black", 0.1, black=-1.0), torch.full_like(image, -1.0))
    assert torch.allclose(filled(image, "mean", 0.1, black=-1.0), torch.full_like(image, float(image.mean())))


def test_curve_inputs_delete_and_insert_the_top_ranked_pixels():
    image = torch.arange(16, dtype=torch.float32).view(1, 4, 4)
    fill = torch.full_like(image, -1.0)
    order = ranking(image[0].numpy(), seed=0)
    assert list(order[:3]) == [15, 14, 13]
    steps = curve_inputs(image, fill, order)
    inner = len(DELETION_FRACTIONS) - 2
    assert steps.shape == (2 * inner, 1, 4, 4)
    half = DELETION_FRACTIONS.index(0.5) - 1
    assert steps[half].eq(-1).sum() == 8 and steps[half][0, 3, 3] == -1  # deletion: the top half is filled
    assert steps[inner + half].eq(-1).sum() == 8 and steps[inner + half][0, 3, 3] == 15  # insertion: put back


def test_ties_are_broken_in_a_seeded_random_order_not_top_left_first():
    flat = np.zeros((8, 8))
    first, again, other = ranking(flat, 1), ranking(flat, 1), ranking(flat, 2)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert not np.array_equal(first, np.arange(64))


def test_area_under_the_curve():
    assert auc(np.ones(11)) == pytest.approx(1.0)
    assert auc(np.linspace(1, 0, 11)) == pytest.approx(0.5)


class _Counter(nn.Module):
    """Logit of class 1 = 10 × the mean of the image's top-left quadrant (class 0: 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = 10 * x[:, 0, :2, :2].mean(dim=(1, 2))
        return torch.stack([torch.zeros_like(score), score], dim=1)


def test_a_map_on_the_evidence_deletes_faster_than_random_order():
    image = torch.zeros(1, 1, 4, 4)
    image[0, 0, :2, :2] = 1.0
    curves = Curves(_Counter(), image, torch.tensor([1]), torch.zeros_like(image))
    good = np.zeros((4, 4))
    good[:2, :2] = 1.0
    (deletion_good,), (insertion_good,) = curves.areas([ranking(good, 0)])
    (deletion_bad,), (insertion_bad,) = curves.areas([ranking(-good, 0)])
    assert curves.start[0] > 0.99 and curves.end[0] == pytest.approx(0.5)
    assert deletion_good < deletion_bad and insertion_good > insertion_bad


@pytest.mark.parametrize("name", ["resnet50", "vit", "pyramid_softmax", "pyramid_linformer", "pyramid_performer",
                                  "pyramid_fastformer", "pyramid_xca", "pyramid_xca_nolpi", "pyramid_swin"])
def test_a_fully_removed_image_is_not_read_as_a_finding(name: str):
    """Every quick model (untrained here; the stage records the check for the trained checkpoints):
    the fully removed images (the lesion-free twins of lesion images) get no finding class above 0.5."""
    torch.manual_seed(0)
    model = create_model(name, "quick", num_classes=len(CLASSES), in_chans=1, image_size=64).eval()
    twins = [render_item(0, i, label, 64)[2] for i, label in enumerate(["edema", "intra", "pituitary_lesion", "extra"])]
    removed = torch.from_numpy((np.stack(twins).astype(np.float32) / 255 - 0.2) / 0.25).unsqueeze(1)
    check = fully_removed(model, {"lesion_free": removed}, CLASSES)["lesion_free"]
    assert check["images"] == 4 and 0 <= check["max_finding_prob"] <= 0.5 and check["passed"]
    assert check["any_image_max_finding_prob"] >= check["max_finding_prob"]
    assert "note" in fully_removed(model, {"lesion_free": removed}, [f"c{i}" for i in range(len(CLASSES))])


def test_the_check_fails_a_fill_read_as_a_finding():
    class Always(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits = torch.zeros(len(x), len(CLASSES))
            logits[:, 1] = 10.0  # arteriovenous anomaly, whatever the image
            return logits

    check = fully_removed(Always(), {"black": torch.zeros(3, 1, 8, 8)}, CLASSES)["black"]
    assert not check["passed"] and check["max_finding_class"] == "arteriovenous_anomaly"
    assert check["read_as_finding"] == 1.0 and check["images_above_threshold"] == 3
