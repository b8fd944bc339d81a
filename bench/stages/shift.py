"""The shift study: how each trained model holds up when the scanner or protocol changes.

Every kept checkpoint of a suite (every model, every seed) predicts the test split clean and
under each acquisition shift of ``bench.data.shifts`` at each severity, without retraining.
The shifted copies are made from the same scenes: each test image is taken back to its [0, 1]
pixels, shifted with draws seeded by (shift seed, kind, severity, image index), and normalised
again with the training statistics. One result per (model, seed) keeps every condition's
predictions, so that ``summarise_shifts`` can pair each shifted score with the clean one on
the same images and seeds (``bench.core.shift_stats``).

The clean predictions are checked against the run's committed test predictions: a checkpoint
that no longer reproduces its result is refused rather than studied.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from bench.core import env
from bench.core.config import SuiteConfig
from bench.core.metrics import expected_calibration_error
from bench.core.shift_stats import CLEAN, SCORE, condition_name, robustness
from bench.core.stats import balanced_accuracy
from bench.data import LoadedDataset
from bench.data.shifts import SHIFT_KINDS, apply_shift, describe
from bench.results.records import RunPaths, error_record, fingerprint, is_done, payload
from bench.results.store import exclusive_lock, load_result, result_path, write_result
from bench.stages.checkpoint import trained_model

log = logging.getLogger(__name__)


def shift_kinds(suite: SuiteConfig) -> tuple[str, ...]:
    kinds = suite.shift.kinds or SHIFT_KINDS
    unknown = sorted(set(kinds) - set(SHIFT_KINDS))
    if unknown:
        raise ValueError(f"shift.kinds: unknown kinds {unknown}; known: {', '.join(SHIFT_KINDS)}")
    return tuple(kinds)


def conditions(suite: SuiteConfig) -> list[tuple[str, str | None, int | None]]:
    """(name, kind, severity) of every condition, clean first."""
    return [(CLEAN, None, None)] + [(condition_name(k, s), k, s) for k in shift_kinds(suite)
                                    for s in suite.shift.severities]


def study_config(suite: SuiteConfig) -> dict[str, Any]:
    """The study's settings and each condition's parameters (its callers add what else a result
    depends on, then its fingerprint)."""
    return {**suite.to_dict()["shift"], "kinds": list(shift_kinds(suite)),
            "parameters": {name: describe(k, s) for name, k, s in conditions(suite) if k is not None}}


@torch.inference_mode()
def _predict(model: torch.nn.Module, images: torch.Tensor, batch_size: int) -> np.ndarray:
    """Softmax probabilities in the trainer's chunks (``Trainer.predict``), so that the clean
    pass reproduces the committed predictions to the bit."""
    return torch.cat([model(chunk).float().softmax(dim=1) for chunk in images.split(batch_size)]).double().numpy()


def shifted_test_sets(suite: SuiteConfig, data: LoadedDataset) -> dict[str, torch.Tensor]:
    """Every condition's test images, normalised as the model saw its training images."""
    test = data.splits["test"]
    pixels = (test.images * data.std + data.mean).clamp(0, 1)
    indices = torch.arange(len(pixels))
    sets = {}
    for name, kind, severity in conditions(suite):
        if kind is None:  # the loaded images themselves: no round trip through [0, 1] pixels
            sets[name] = test.images
            continue
        shifted = apply_shift(pixels, kind, severity, seed=suite.shift.seed, indices=indices)
        sets[name] = (shifted - data.mean) / data.std
    return sets


def shift_metrics(suite: SuiteConfig, name: str, checkpoint: Path, labels: np.ndarray,
                  sets: dict[str, torch.Tensor], committed: list[int] | None) -> dict[str, Any]:
    model = trained_model(suite, name, checkpoint)
    out: dict[str, Any] = {}
    for condition, images in sets.items():
        probs = _predict(model, images, max(1, suite.train.batch_size * 2))
        preds = probs.argmax(axis=1)
        if condition == CLEAN and committed is not None and preds.tolist() != list(committed):
            moved = int(np.sum(preds != np.asarray(committed)))
            raise RuntimeError(f"{checkpoint}: its clean test predictions differ from the committed result's "
                               f"on {moved} images; retrain it (medbench train --force) before studying shifts")
        out[condition] = {"balanced_accuracy": round(balanced_accuracy(preds, labels), 6),
                          "ece": round(expected_calibration_error(probs, labels), 6),
                          "predictions": preds.astype(int).tolist()}
    return {"conditions": out, "test_labels": labels.astype(int).tolist()}


def shift_one(suite: SuiteConfig, name: str, seed: int, data: LoadedDataset, paths: RunPaths,
              sets: Callable[[], dict[str, torch.Tensor]], force: bool = False) -> Path:
    """Study one (model, seed) checkpoint and write ``shift__<model>__seed<k>.json``; ``sets``
    gives the conditions' test images (``shifted_test_sets``), asked for only when the run is studied."""
    machine = env.machine_info()["id"]
    out = result_path(paths.results, machine, suite.name, "shift", name, seed)
    train = load_result(result_path(paths.results, machine, suite.name, "train", name, seed))
    config = {**study_config(suite), "train_fingerprint": train["config"].get("fingerprint")}
    config["fingerprint"] = fingerprint(config)
    with exclusive_lock(paths.lock_for(out)):
        if not force and is_done(out, config["fingerprint"]):
            log.info("skip shift study of %s seed %d: %s exists", name, seed, out)
            return out
        metrics, error = {}, None
        try:
            labels = data.splits["test"].labels.numpy()
            metrics = shift_metrics(suite, name, paths.checkpoint(suite.name, name, seed), labels, sets(),
                                    train["metrics"].get("test_predictions"))
        except Exception as exc:  # noqa: BLE001 - recorded, not dropped
            error = error_record(exc, "shift")
        write_result(out, payload("shift", suite.name, train["model"], seed, config, metrics, error))
        log.info("wrote %s", out)
    return out


def write_examples(suite: SuiteConfig, data: LoadedDataset, paths: RunPaths) -> list[str]:
    """One test image under every shift and severity: a PNG strip per kind (clean, then each
    severity), ``examples-<kind>.png``; returns their paths under the artifacts folder. The image
    is the first test image of the most frequent finding class other than "normal", so that a
    lesion is visible."""
    from PIL import Image

    from bench.data.shifts import example_grid

    test = data.splits["test"]
    labels = test.labels.numpy()
    counts = np.bincount(labels, minlength=len(data.class_names))
    order = [c for c in np.argsort(-counts, kind="stable") if data.class_names[c] != "normal"] or [0]
    index = int(np.flatnonzero(labels == order[0])[0])
    pixels = (test.images[index] * data.std + data.mean).clamp(0, 1)
    gap = 2
    grid = example_grid(pixels, seed=suite.shift.seed, index=index, gap=gap).numpy()
    side = pixels.shape[-2]
    folder = paths.artifact_dir("shift", suite.name)
    folder.mkdir(parents=True, exist_ok=True)
    zoom = 2  # nearest-neighbour, so that a reader sees the pixels the model saw
    written = []
    for row, kind in enumerate(SHIFT_KINDS):  # example_grid's rows: every kind, in this order
        strip = grid[row * (side + gap):row * (side + gap) + side]
        out = folder / f"examples-{kind}.png"
        Image.fromarray(strip).resize((strip.shape[1] * zoom, strip.shape[0] * zoom), Image.NEAREST).save(
            out, optimize=True)
        written.append(out.relative_to(paths.artifacts).as_posix())
    return written


def summarise_shifts(suite: SuiteConfig, paths: RunPaths, examples: list[str] | None = None,
                     force: bool = False) -> Path:
    """The suite's robustness summary (``shift.json``): drops with paired intervals, robustness
    scores and ties with the most robust model, from every (model, seed) shift result;
    ``examples``: the example strips under the artifacts folder (``write_examples``), named in the
    summary so that the artifacts check counts them as referenced."""
    machine = env.machine_info()["id"]
    out = result_path(paths.results, machine, suite.name, "shift", None, None)
    config = study_config(suite)
    per_model: dict[str, dict[str, list[list[int]]]] = {}
    ece: dict[str, dict[str, list[float]]] = {}
    labels: list[int] | None = None
    sources, created = [], []
    for name in suite.models:
        for seed in suite.seeds:
            path = result_path(paths.results, machine, suite.name, "shift", name, seed)
            if not path.exists():
                continue
            result = load_result(path)
            if result["error"] is not None or result["config"].get("kinds") != config["kinds"]:
                continue
            labels = result["metrics"]["test_labels"]
            sources.append(path.name)
            created.append(result["created_utc"])
            for condition, cell in result["metrics"]["conditions"].items():
                per_model.setdefault(name, {}).setdefault(condition, []).append(cell["predictions"])
                ece.setdefault(name, {}).setdefault(condition, []).append(cell["ece"])
    if not per_model or labels is None:
        raise FileNotFoundError(f"{out.parent}: no shift results of suite {suite.name!r} to summarise")
    config = {**config, "sources": sources, "examples": examples, "score": SCORE}
    config["fingerprint"] = fingerprint({**config, "created": created})
    if not force and is_done(out, config["fingerprint"]):
        log.info("skip the shift summary: %s is up to date", out)
        return out
    stats = robustness({m: {c: np.asarray(p) for c, p in conds.items()} for m, conds in per_model.items()},
                       np.asarray(labels), n_resamples=suite.shift.bootstrap, seed=suite.shift.seed)
    for model, entry in stats["models"].items():
        for condition, cell in entry["conditions"].items():
            cell["ece"] = round(float(np.mean(ece[model][condition])), 6)
    stats["examples"] = examples
    write_result(out, payload("shift", suite.name, None, None, config, stats))
    log.info("wrote %s (most robust: %s)", out, stats["most_robust"])
    return out
