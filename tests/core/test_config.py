"""Config dataclasses validate on construction; suites load from TOML."""

from __future__ import annotations

import dataclasses

import pytest

from bench.core.config import (
    ConfigError, DataConfig, ProfileConfig, SuiteConfig, TrainConfig, load_suite, suite_from_dict,
)


@pytest.mark.parametrize("name", ["quick", "paper"])
def test_shipped_suites_load(name):
    suite = load_suite(name)
    from bench.models import list_models

    assert suite.name == name and set(suite.models) == set(list_models())  # every registered model
    assert suite.train.hflip is False
    assert suite.train.patience > 0 and len(suite.seeds) >= 2  # trained to a plateau, on several seeds


def test_paper_suite_runs_three_seeds_on_20k_images():
    suite = load_suite("paper")
    assert len(suite.seeds) == 3 and suite.data.num_images >= 20000 and suite.data.image_size == 224


@pytest.mark.parametrize(
    "build, field",
    [
        (lambda: TrainConfig(epochs=0), "train.epochs"),
        (lambda: TrainConfig(balance="oversample"), "train.balance"),
        (lambda: TrainConfig(label_smoothing=1.0), "train.label_smoothing"),
        (lambda: TrainConfig(scale_range=(1.2, 0.8)), "train.scale_range"),
        (lambda: DataConfig(kind="nifti"), "data.kind"),
        (lambda: DataConfig(in_chans=2), "data.in_chans"),
        (lambda: ProfileConfig(runs=10), "profile.runs"),
        (lambda: ProfileConfig(dtypes=("int8",)), "profile.dtypes"),
        (lambda: SuiteConfig(name="s", scale="huge", models=("vit",)), "suite.scale"),
        (lambda: SuiteConfig(name="s", scale="quick", models=("vit",), seeds=(1, 1)), "suite.seeds"),
    ],
)
def test_bad_values_are_rejected_with_the_field_name(build, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        build()


def test_unknown_keys_are_rejected():
    with pytest.raises(ConfigError, match="unknown keys.*'epochz'"):
        suite_from_dict({"name": "s", "scale": "quick", "models": ["vit"], "train": {"epochz": 3}})


def test_missing_suite_lists_known_ones():
    with pytest.raises(ConfigError, match="known suites: .*quick"):
        load_suite("nope")


def test_round_trip_through_dict():
    suite = load_suite("quick")
    assert suite_from_dict(suite.to_dict()) == suite
    assert dataclasses.replace(suite.train, epochs=1).epochs == 1


@pytest.mark.parametrize("section, key, value", [
    ("train", "patience", "3"), ("train", "min_epochs", 2.5), ("train", "augment", "yes"),
    ("train", "lr", "1e-3"), ("data", "split_fractions", 0.5), ("train", "epochs", True),
])
def test_wrong_types_are_rejected_naming_the_file_and_key(tmp_path, section, key, value):
    values = load_suite("quick").to_dict()
    values[section][key] = value
    with pytest.raises(ConfigError, match=rf"^somewhere\.toml \[{section}\]: .*"):
        suite_from_dict(values, where="somewhere.toml")
