"""The baselines stage: trivial classifiers scored on the same splits as the models.

Every leaderboard needs its floor. Each baseline of :data:`bench.stages.baselines.BASELINES`
(majority class, uniform random, pixel logistic regression) is fitted on the train split,
tuned on val where it has anything to tune, and scored on test with the same metrics and
bootstrap as a trained model. Results are ``baseline__<name>__seed<k>.json``; like every
stage, a baseline already written for the same config is skipped.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from bench.core import env
from bench.core.config import SuiteConfig
from bench.data import LoadedDataset
from bench.results.records import RunPaths, dataset_info, error_record, fingerprint, is_done, payload
from bench.results.store import exclusive_lock, result_path, write_result

log = logging.getLogger(__name__)


def baseline_fingerprint(suite: SuiteConfig, name: str, seed: int) -> str:
    """What a baseline result depends on: the data and the baseline, not the training recipe."""
    return fingerprint({"baseline": name, "seed": seed, "scale": suite.scale, "data": suite.to_dict()["data"],
                        "bootstrap": suite.train.bootstrap})


def run_baseline(suite: SuiteConfig, name: str, seed: int, data: LoadedDataset, paths: RunPaths,
                 arrays: dict[str, tuple[np.ndarray, np.ndarray]] | None = None, force: bool = False) -> Path:
    """Fit, score and write one baseline; a failure is written as a result with ``error``."""
    from bench.stages.baselines import baseline_report, dataset_splits

    out = result_path(paths.results, env.machine_info()["id"], suite.name, "baseline", name, seed)
    config_id = baseline_fingerprint(suite, name, seed)
    with exclusive_lock(paths.lock_for(out)):
        if not force and is_done(out, config_id):
            log.info("skip baseline %s: %s exists", name, out)
            return out
        arrays = arrays if arrays is not None else dataset_splits(data)
        num_classes = len(data.class_names)
        config: dict[str, Any] = {**suite.to_dict(), "fingerprint": config_id}
        model = {"name": name, "scale": suite.scale, "params": 0, "gmacs": None,
                 "image_size": suite.data.image_size, "in_chans": suite.data.in_chans, "num_classes": num_classes}
        try:
            metrics = baseline_report(name, arrays, data.class_names, seed, suite.train.bootstrap)
            config["baseline"] = metrics.pop("baseline")
            error = None
        except Exception as exc:  # noqa: BLE001 - any failure is recorded, not dropped
            metrics, error = {}, error_record(exc, "baseline")
        write_result(out, payload("baseline", suite.name, model, seed, config, metrics, error,
                                  dataset=dataset_info(data)))
        log.info("wrote %s", out)
    return out


def run_baselines(suite: SuiteConfig, data: LoadedDataset, paths: RunPaths, seed: int,
                  force: bool = False) -> list[Path]:
    """Every registered baseline, once, with the suite's first seed."""
    from bench.stages.baselines import BASELINES, dataset_splits

    arrays = dataset_splits(data)
    return [run_baseline(suite, name, seed, data, paths, arrays, force) for name in BASELINES]
