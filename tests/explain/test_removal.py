"""Clean references: each model's deletion and insertion are scored only on the images whose fully
removed image it reads as no finding; every statistic then counts exactly those images."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bench.core.config import ExplainConfig
from bench.explain.faithfulness import SCORES, Scorer, scored_inputs
from bench.explain.removal import Removal, clean_references
from bench.explain.scores import interval, paired_difference, paired_tied
from bench.explain.summary import compare_models, two_level_interval

CLASSES = ["acute_infarct", "edema", "normal"]


class ReadsFinding(nn.Module):
    """Reads an image as edema when its first pixel is one of ``marked``, else as normal (probability ~0.9)."""

    def __init__(self, marked: set[float]) -> None:
        super().__init__()
        self.marked = marked

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(len(x), len(CLASSES))
        for row, value in enumerate(x[:, 0, 0, 0].tolist()):
            logits[row, 1 if value in self.marked else 2] = 3.0
        return logits


def _removal(ids: list[int]) -> Removal:
    fills = torch.stack([torch.full((1, 8, 8), float(i)) for i in ids])  # image i's fill carries its id
    return Removal(list(ids), {i: np.eye(8, dtype=bool) for i in ids}, "evidence",
                   {"lesion_free": fills, "blur": fills + 0.5}, "lesion_free", None)


def test_an_image_whose_fully_removed_version_reads_as_a_finding_is_not_clean():
    removal = _removal([1, 3, 5, 7])
    assert clean_references(ReadsFinding({3.0, 7.0}), removal, CLASSES).tolist() == [True, False, True, False]
    # without a class called normal, nothing can be told from the absence of a finding: all clean
    assert clean_references(ReadsFinding({3.0}), removal, ["x", "y", "z"]).all()


def test_curve_scores_are_taken_only_on_clean_images_and_location_scores_on_all():
    ids = [1, 3, 5, 7]
    removal = _removal(ids)
    model = ReadsFinding({3.0})
    clean = clean_references(model, removal, CLASSES)
    images = torch.randn(len(ids), 1, 8, 8)
    images[:, 0, 0, 0] = 0.0  # the intact images read as normal too
    inputs = scored_inputs(images, torch.tensor([1, 1, 1, 1]), [np.eye(8, dtype=bool)] * 4, ids,
                           [np.ones((8, 8))] * 4, removal.fills["lesion_free"], "lesion_free", "evidence", clean)
    scorer = Scorer(model, inputs, ExplainConfig(bootstrap=50))
    scored = scorer.score([np.random.default_rng(k).random((8, 8)) for k in range(4)])
    for name in ("deletion_auc", "insertion_auc", "deletion_vs_random", "insertion_vs_random"):
        assert np.isnan(scored.values[name][1]) and not np.isnan(scored.values[name][[0, 2, 3]]).any(), name
    assert not np.isnan(scored.values["pointing_game"]).any()
    assert np.isnan(scorer.start[1]) and scorer.mean_start == float(np.mean(scorer.curves.start[[0, 2, 3]]))


def test_statistics_count_only_the_scored_images():
    values = [0.2, None, 0.4, 0.6]
    summary = interval(values, 200, 0)
    assert summary["n"] == 3 and summary["value"] == np.mean([0.2, 0.4, 0.6])
    assert interval([None, None], 200, 0) == {"value": None, "ci95": [None, None], "n": 0}
    a = np.array([1.0, np.nan, 3.0, 5.0])
    b = np.array([0.0, 2.0, np.nan, 4.0])
    assert paired_difference(a, b, 200, 0)[0] == 1.0  # images 0 and 3, the only ones both have
    assert paired_tied(np.array([np.nan, 1.0]), np.array([1.0, np.nan]), 200, 0)  # nothing in common: a tie
    mean, lo, hi = two_level_interval(np.array([[1.0, np.nan], [3.0, 5.0]]), 200, 0)
    assert mean == 3.0 and 1.0 <= lo <= hi <= 5.0


def test_models_are_compared_on_the_images_both_read_clean():
    def result(per_image: list[float | None]) -> dict:
        return {"faithfulness": {"scores": {"saliency": {"per_image": {s: per_image for s in SCORES}}}}}

    far = {"a": result([0.9, 0.9, 0.9, None] * 10), "b": result([0.1, 0.1, None, 0.95] * 10)}
    summary = compare_models(far, 200, 0)["saliency"]["deletion_vs_random"]
    assert summary["best"] == "a" and summary["tied_with_best"] == []
