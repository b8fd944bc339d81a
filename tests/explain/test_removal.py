"""Clean references: only images whose fully removed version no explained model reads as a finding are scored."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bench.explain.removal import THRESHOLD, Removal, clean_references

CLASSES = ["acute_infarct", "edema", "normal"]


class ReadsFinding(nn.Module):
    """Reads image k as edema with probability ~0.9 when its first pixel equals one of ``marked``, else as normal."""

    def __init__(self, marked: set[float]) -> None:
        super().__init__()
        self.marked = marked

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(len(x), len(CLASSES))
        for row, value in enumerate(x[:, 0, 0, 0].tolist()):
            logits[row, 1 if value in self.marked else 2] = 3.0
        return logits


def _removal(drawn: list[int]) -> Removal:
    fills = torch.stack([torch.full((1, 4, 4), float(i)) for i in drawn])  # image i's fill carries its id
    masks = {i: np.eye(4, dtype=bool) for i in drawn}
    return Removal(list(drawn), masks, "evidence", {"lesion_free": fills, "blur": fills + 0.5}, "lesion_free", None)


def test_images_any_model_reads_as_a_finding_are_left_out_for_every_model():
    drawn = [7, 3, 9, 1, 5, 8]  # the seeded draw order
    readers = [("a seed 0", ReadsFinding({3.0})), ("b seed 0", ReadsFinding({9.0, 3.0}))]
    kept = clean_references(_removal(drawn), readers, CLASSES, wanted=3)
    assert kept.checked == [1, 5, 7]  # the first three clean ones in draw order, then sorted
    assert set(kept.masks) == {1, 5, 7}
    assert kept.fills["lesion_free"][:, 0, 0, 0].tolist() == [1.0, 5.0, 7.0]
    assert kept.fills["blur"][:, 0, 0, 0].tolist() == [1.5, 5.5, 7.5]  # every fill follows the same images
    ref = kept.reference
    assert ref["excluded_by"] == {"a seed 0": 1, "b seed 0": 2} and ref["drawn"] == 6
    assert ref["clean"] == 4 and ref["kept"] == 3 and ref["threshold"] == THRESHOLD


def test_fewer_clean_images_than_wanted_keeps_them_all_and_says_so():
    kept = clean_references(_removal([4, 2, 6]), [("a seed 0", ReadsFinding({2.0, 4.0}))], CLASSES, wanted=5)
    assert kept.checked == [6] and kept.reference["kept"] == 1 and kept.reference["clean"] == 1


def test_without_a_normal_class_nothing_is_left_out():
    classes = ["x", "y", "z"]
    kept = clean_references(_removal([4, 2, 6]), [("a seed 0", ReadsFinding({2.0}))], classes, wanted=2)
    assert kept.checked == [4, 2] and kept.reference["rule"] is None
