"""The cost stage: what one epoch of training and a pass of inference cost on this machine.

The suite's own trainer (its augmentation, balanced sampler, AdamW, clipping and schedule)
trains each model for one epoch of ``cost.images`` synthetic images at the suite's size and
batch ``cost.batch_size``, after ``cost.warmup_batches``; the trained model then predicts the
same images. Each runs in every dtype (bfloat16 under autocast where the device has bf16
instructions) at every thread count, and records images/s, CPU-seconds per image, MFU
against the machine record's matmul peak for that dtype, and energy per image
(``bench.core.energy``: a counter's reading where one is readable, else the estimate).

Random inputs would time the same; the synthetic images keep the augmentation's work real.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from bench.core import env
from bench.core.config import SuiteConfig
from bench.core.energy import EnergyModel, Meter, energy_record
from bench.data import LoadedDataset
from bench.data.datasets import SplitTensors
from bench.results.records import RunPaths, error_record, fingerprint, is_done, model_info, payload
from bench.results.store import exclusive_lock, load_result, result_path, write_result
from bench.stages.profile_run import dtypes_for, ensure_machine_record

log = logging.getLogger(__name__)

# training a step costs about three forward passes (the backward pass two)
TRAINING_FLOPS_PER_FORWARD = 3


def cost_dataset(suite: SuiteConfig, images: int, seed: int = 0) -> LoadedDataset:
    """``images`` synthetic images at the suite's size, classes in the generator's proportions."""
    from bench.data.samples import render
    from bench.data.synthetic import CLASS_NAMES, class_counts, item_rng

    counts = class_counts(images)
    labels = [name for name in CLASS_NAMES for _ in range(counts[name])]
    size, chans = suite.data.image_size, suite.data.in_chans
    pixels = np.stack([render(label, size, item_rng(seed, i))[0] for i, label in enumerate(labels)])
    x = torch.from_numpy(pixels).float().div(255.0).unsqueeze(1).expand(-1, chans, -1, -1).contiguous()
    mean, std = float(x.mean()), float(x.std())
    split = SplitTensors(images=(x - mean) / std,
                         labels=torch.tensor([CLASS_NAMES.index(n) for n in labels]), paths=[""] * len(labels))
    return LoadedDataset(name="synthetic-cost", synthetic=True, class_names=list(CLASS_NAMES), root=Path("."),
                         splits={"train": split}, mean=mean, std=std)


def _settings(suite: SuiteConfig) -> Iterator[tuple[str, int]]:
    threads = suite.cost.threads or (torch.get_num_threads(),)
    for dtype in dtypes_for("cpu", suite.cost.dtypes):
        for count in threads:
            yield dtype, count


def _row(meter: Meter, images: int, dtype: str, threads: int, batch: int, flops_per_image: float,
         peak: float | None, energy: EnergyModel) -> dict[str, Any]:
    per_s = images / meter.wall_s
    achieved = flops_per_image * per_s / 1e9
    return {
        "device": "cpu", "dtype": dtype, "threads": threads, "batch_size": batch, "images": images,
        "wall_s": round(meter.wall_s, 6), "cpu_s": round(meter.cpu_s, 6), "images_per_s": round(per_s, 3),
        "cpu_s_per_image": round(meter.cpu_s / images, 5), "resident_gb": round(meter.resident_gb, 3),
        "achieved_gflops_per_s": round(achieved, 2), "peak_gflops_per_s": round(peak, 2) if peak else None,
        "mfu": round(achieved / peak, 4) if peak else None,
        "energy": energy_record(meter, images, energy),
    }


def measure_costs(suite: SuiteConfig, name: str, gmacs: float, peaks: dict[str, float], peak_threads: int,
                  data: LoadedDataset) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training rows, inference rows): one per dtype and thread count."""
    from bench.stages.train import Trainer

    cfg = suite.cost
    suite = suite_for_cost(suite)
    energy = EnergyModel(cfg.watts_per_core, cfg.watts_per_gb)
    forward_flops = 2 * gmacs * 1e9
    training, inference = [], []
    before = torch.get_num_threads()
    try:
        for dtype, threads in _settings(suite):
            torch.set_num_threads(threads)
            peak = peaks.get(f"cpu:{dtype}")
            peak = peak * min(threads, peak_threads) / peak_threads if peak else None
            with tempfile.TemporaryDirectory() as tmp:
                trainer = Trainer(suite, name, 0, data, Path(tmp) / "cost.pt", progress=False,
                                  autocast=dtype == "bfloat16")
                trainer.train_epoch(0, max_steps=cfg.warmup_batches)
                with Meter() as meter:
                    _, seen, _ = trainer.train_epoch(1)
                training.append(_row(meter, seen, dtype, threads, cfg.batch_size,
                                     TRAINING_FLOPS_PER_FORWARD * forward_flops, peak, energy))
                inference.append(_infer(trainer, data, dtype, threads, forward_flops, peak, energy))
            log.info("%s %s, %d thread(s): training %.1f img/s (MFU %s), inference %.1f img/s", name, dtype,
                     threads, training[-1]["images_per_s"], training[-1]["mfu"], inference[-1]["images_per_s"])
    finally:
        torch.set_num_threads(before)
    return training, inference


@torch.inference_mode()
def _infer(trainer: Any, data: LoadedDataset, dtype: str, threads: int, forward_flops: float,
           peak: float | None, energy: EnergyModel) -> dict[str, Any]:
    """The trained model predicting the epoch's images in batches, after one warm-up batch."""
    model, batch = trainer.model.eval(), trainer.cfg.batch_size
    images = data.splits["train"].images.contiguous(memory_format=trainer.memory_format)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
        model(images[:batch])
        with Meter() as meter:
            for chunk in images.split(batch):
                model(chunk)
    return _row(meter, len(images), dtype, threads, batch, forward_flops, peak, energy)


def suite_for_cost(suite: SuiteConfig) -> SuiteConfig:
    """The suite's recipe at the cost stage's batch size (a CPU holds a paper-scale batch of 32,
    not the GPU recipe's 128); everything else stays the recipe's."""
    return dataclasses.replace(suite, train=dataclasses.replace(suite.train, batch_size=suite.cost.batch_size))


def cost_one(suite: SuiteConfig, name: str, paths: RunPaths, data: LoadedDataset | None = None,
             force: bool = False) -> Path:
    """Measure one model's costs on this machine and write ``cost__<model>.json`` under its id."""
    from bench.models import create_model
    from bench.models.flops import count_flops
    from bench.stages.train import NOT_TRAINING

    out = result_path(paths.results, env.machine_info()["id"], suite.name, "cost", name, None)
    config = {**suite.to_dict()["cost"], "scale": suite.scale, "image_size": suite.data.image_size,
              "in_chans": suite.data.in_chans,
              "train": {k: v for k, v in suite.train.to_dict().items() if k not in NOT_TRAINING}}
    config["fingerprint"] = fingerprint(config)
    with exclusive_lock(paths.lock_for(out)):
        if not force and is_done(out, config["fingerprint"]):
            log.info("skip cost of %s: %s exists", name, out)
            return out
        record = load_result(ensure_machine_record(paths))
        peaks, peak_threads = record["metrics"]["matmul_peak_gflops_per_s"], record["machine"].get("threads") or 1
        data = data or cost_dataset(suite, suite.cost.images)
        model = create_model(name, suite.scale, num_classes=len(data.class_names), in_chans=suite.data.in_chans,
                             image_size=suite.data.image_size)
        gmacs = round(count_flops(model, (1, suite.data.in_chans, suite.data.image_size,
                                          suite.data.image_size)).gmacs, 6)
        info = model_info(name, suite.scale, model, suite.data.image_size, suite.data.in_chans,
                          len(data.class_names), gmacs)
        metrics: dict[str, Any] = {}
        error = None
        try:
            training, inference = measure_costs(suite, name, gmacs, peaks, peak_threads, data)
            energy = EnergyModel(suite.cost.watts_per_core, suite.cost.watts_per_gb)
            metrics = {"training": training, "inference": inference, "energy_model": energy.as_dict(),
                       "mfu_method": f"{TRAINING_FLOPS_PER_FORWARD} x 2 x GMACs x images/s (training), "
                                     "2 x GMACs x images/s (inference), against the machine record's matmul "
                                     "peak for the dtype, scaled to the threads used"}
        except Exception as exc:  # noqa: BLE001 - recorded, not dropped
            error = error_record(exc, "cost")
        write_result(out, payload("cost", suite.name, info, None, config, metrics, error))
        log.info("wrote %s", out)
    return out


def cost_suite(suite: SuiteConfig, models: list[str], paths: RunPaths, force: bool = False) -> list[Path]:
    """Each model's costs where the suite asks for them (``cost.images`` > 0)."""
    return [cost_one(suite, name, paths, force=force) for name in models] if suite.cost.images else []
