from collections import Counter

import pytest

from bench.data.splits import stratified_split


def test_is_deterministic_and_seed_dependent() -> None:
    labels = [i % 4 for i in range(200)]
    assert stratified_split(labels, seed=0) == stratified_split(labels, seed=0)
    assert stratified_split(labels, seed=0) != stratified_split(labels, seed=1)


def test_every_class_with_three_items_reaches_every_split() -> None:
    labels = [0] * 3 + [1] * 4 + [2] * 7 + [3] * 500
    splits = stratified_split(labels)
    pairs = Counter(zip(labels, splits))
    for label in range(4):
        assert all(pairs[label, s] >= 1 for s in ("train", "val", "test")), label
    assert pairs[3, "train"] == 350 and pairs[3, "val"] == 75 and pairs[3, "test"] == 75


def test_tiny_classes_go_to_train() -> None:
    assert stratified_split(["a", "b", "b"] + ["c"] * 10)[:3] == ["train", "train", "train"]


def test_custom_fractions() -> None:
    counts = Counter(stratified_split([0] * 100, fractions=(0.5, 0.25, 0.25)))
    assert counts == {"train": 50, "val": 25, "test": 25}


@pytest.mark.parametrize("fractions", [(0.7, 0.3), (0.8, 0.15, 0.15), (1.0, 0.0, 0.0)])
def test_rejects_bad_fractions(fractions: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="fractions"):
        stratified_split([0, 1, 2], fractions=fractions)
