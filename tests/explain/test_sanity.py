"""Cascading and full randomisation: the layer groups of every quick model, the states, the rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.core.config import load_suite
from bench.explain.sanity import cascade_groups, cascade_states, compare, sanity_checks, verdict
from bench.models import create_model


@pytest.mark.parametrize("name", load_suite("quick").models)
def test_the_cascade_goes_from_the_head_down_and_covers_every_weight(name: str):
    model = create_model(name, "quick", num_classes=10, in_chans=1, image_size=64)
    groups = cascade_groups(model)
    labels = [label for label, _ in groups]
    assert labels[0] == "head" and labels[-1] == "stem" and len(labels) >= 5, labels
    keys = [k for _, ks in groups for k in ks]
    assert sorted(keys) == sorted(model.state_dict()) and len(set(keys)) == len(keys)
    head = groups[0][1]
    assert any(k.endswith("head.weight") or k.endswith("fc.weight") for k in head), head


def test_cascade_states_replace_groups_in_turn_and_end_fully_random():
    torch.manual_seed(0)
    trained = create_model("pyramid_softmax", "quick", num_classes=10, in_chans=1, image_size=64).state_dict()
    random = create_model("pyramid_softmax", "quick", num_classes=10, in_chans=1, image_size=64).state_dict()
    groups = cascade_groups(create_model("pyramid_softmax", "quick", num_classes=10, in_chans=1, image_size=64))
    states = cascade_states(trained, random, groups)
    assert [label for label, _ in states] == ["head", "stage 4", "stage 3", "stage 2", "stage 1", "stem"]
    first = states[0][1]
    assert torch.equal(first["head.weight"], random["head.weight"])
    assert torch.equal(first["stages.3.blocks.0.mlp.fc1.weight"], trained["stages.3.blocks.0.mlp.fc1.weight"])
    assert all(torch.equal(states[-1][1][k], random[k]) for k in random)


def test_the_rule_uses_absolute_values_and_judged_steps():
    steps = [{"randomised": "head", "spearman": 0.9, "spearman_abs": 0.9, "spearman_foreground": 0.9,
              "spearman_abs_foreground": 0.9},
             {"randomised": "stage 4", "spearman": 0.1, "spearman_abs": 0.2, "spearman_foreground": 0.1,
              "spearman_abs_foreground": 0.3},
             {"randomised": "stem", "spearman": 0.0, "spearman_abs": 0.1, "spearman_foreground": -0.6,
              "spearman_abs_foreground": 0.1}]
    assert verdict(steps[:2], 0.5, 2) == (True, [])  # the head-only step is not judged
    assert verdict(steps[:2], 0.5, 1)[0] is False
    passed, failures = verdict(steps, 0.5, 2)
    assert not passed and failures == ["full randomisation: signed, in the head"]  # |−0.6| fails
    signed_ok = dict(steps[2], spearman_foreground=0.0, spearman_abs=0.7)
    assert verdict([steps[0], steps[1], signed_ok], 0.5, 2) == (False, ["full randomisation: absolute"])


def test_compare_reads_signed_and_absolute_maps_apart():
    a = np.random.default_rng(0).normal(size=(3, 8, 8))
    flipped = a * np.where(np.random.default_rng(1).random((3, 8, 8)) < 0.5, -1, 1)  # same magnitudes, random signs
    heads = [np.ones((8, 8), dtype=bool)] * 3
    result = compare(a, flipped, heads)
    assert result["spearman_abs"] == pytest.approx(1.0) and abs(result["spearman"]) < 0.9
    assert result["spearman_abs_foreground"] == pytest.approx(1.0)


def test_sanity_checks_restore_the_trained_model():
    torch.manual_seed(0)
    model = create_model("resnet50", "quick", num_classes=10, in_chans=1, image_size=64).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    random = create_model("resnet50", "quick", num_classes=10, in_chans=1, image_size=64).state_dict()
    calls = []

    def maps_of(m, method):
        calls.append(method)
        return np.random.default_rng(len(calls)).random((2, 4, 4))

    trained = {"saliency": np.random.default_rng(0).random((2, 4, 4))}
    out = sanity_checks(model, random, ["saliency"], maps_of, trained, {"saliency": trained["saliency"] * 2},
                        [np.ones((4, 4), dtype=bool)] * 2, 0.5, 2)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    record = out["methods"]["saliency"]
    assert len(calls) == len(out["cascade_order"]) - 1  # the last step reuses the fully randomised maps
    assert record["full"]["spearman"] == pytest.approx(1.0) and record["passed"] is False
