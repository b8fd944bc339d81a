"""Lesion-free twins and evidence masks: the generator's bytes unchanged, twins that re-render the
loaded test images, evidence that holds the core mask and more."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest

from bench.core.config import DataConfig
from bench.data import load_dataset
from bench.data.samples import LESIONS, render, render_with_lesion_free
from bench.data.synthetic import ensure_dataset, item_rng, render_item
from bench.explain.lesion_free import twins

# sha256 of render()'s image and mask bytes, 3 images per class at 128 px, recorded before the
# lesion-free twin was added: the datasets the models were trained on must not change by a byte
RENDER_DIGEST = "f7b49093e8fb7dc6bf6b8ea1ddc7b0962b509088b4924442674f0a017b5a1e2d"


def test_render_is_byte_for_byte_what_it_was():
    digest = hashlib.sha256()
    for label in sorted(LESIONS):
        for i in range(3):
            image, mask = render(label, 128, item_rng(0, i))
            digest.update(image.tobytes())
            digest.update(mask.tobytes())
    assert digest.hexdigest() == RENDER_DIGEST


@pytest.mark.parametrize("label", sorted(LESIONS))
def test_the_twin_differs_from_the_image_only_where_the_finding_is(label: str):
    image, mask = render(label, 128, item_rng(0, 7))
    again, mask_again, free = render_item(0, 7, label, 128)
    assert np.array_equal(image, again) and np.array_equal(mask, mask_again)
    changed = image != free
    if label == "normal":
        assert not changed.any()
        return
    assert changed.any() and changed.mean() < 0.15  # the finding, not the brain
    assert (changed | ~mask).all() or changed[mask].mean() > 0.5  # most of the core mask changed
    _, _, none = render_with_lesion_free(label, 128, item_rng(0, 7), lesion_free=False)
    assert none is None


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    cfg = DataConfig(root=str(tmp_path_factory.mktemp("syn") / "data"), num_images=120, generator_size=64,
                     image_size=32)
    ensure_dataset(cfg, progress=False)
    return load_dataset(cfg, progress=False)


def test_twins_re_render_the_loaded_test_images(dataset):
    test = dataset.splits["test"]
    normal = dataset.class_names.index("normal")
    lesion = [i for i in range(len(test.labels)) if int(test.labels[i]) != normal][:6]
    pairs, why = twins(dataset, lesion, 32)
    assert why is None and pairs.images.shape == test.images[lesion].shape
    for k, i in enumerate(lesion):
        differs = (pairs.images[k, 0] - test.images[i, 0]).abs() > 1e-4
        assert differs.any() and differs.float().mean() < 0.5, i  # the twin is the image without its lesion
        assert pairs.evidence[k].any()


def test_no_twins_for_data_the_generator_did_not_write(dataset, tmp_path: Path):
    foreign = dataclasses.replace(dataset, root=tmp_path)
    pairs, why = twins(foreign, [0], 32)
    assert pairs is None and "not a dataset of the synthetic generator" in why
