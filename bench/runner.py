"""Run a suite: train every (model, seed), profile every model, record the machine.

Every stage is skipped when its result file already exists without error (unless
``force``), holds a per-result lock so concurrent runs never duplicate or clobber
work, and records a failure as a result with ``error`` instead of dropping it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import traceback
from pathlib import Path
from typing import Any

import torch

from bench import env
from bench.config import SuiteConfig
from bench.data import LoadedDataset, load_dataset
from bench.distributed import DistContext, barrier
from bench.results import (
    DATA_DIR,
    RESULTS_DIR,
    ResultError,
    exclusive_lock,
    load_result,
    result_path,
    safe_name,
    write_result,
)

log = logging.getLogger(__name__)

CHECKPOINTS_DIR = DATA_DIR / "checkpoints"
ARTIFACTS_DIR = DATA_DIR / "artifacts"
LOCKS_DIR = DATA_DIR / ".locks"


@dataclasses.dataclass(frozen=True)
class RunPaths:
    """Where a run reads and writes; tests point these at temporary folders."""

    results: Path = RESULTS_DIR
    checkpoints: Path = CHECKPOINTS_DIR
    artifacts: Path = ARTIFACTS_DIR
    locks: Path = LOCKS_DIR

    def checkpoint(self, suite: str, model: str, seed: int) -> Path:
        return self.checkpoints / safe_name(suite) / f"{safe_name(model)}__seed{seed}.pt"

    def lock_for(self, result: Path) -> Path:
        """The lock guarding the production of one result file."""
        rel = Path(result).relative_to(self.results)
        return self.locks / ("__".join(rel.parts) + ".lock")


def is_done(path: Path) -> bool:
    """True when ``path`` holds a valid result without error (a failed run is retried)."""
    if not path.exists():
        return False
    try:
        return load_result(path)["error"] is None
    except ResultError as exc:
        log.warning("%s; it will be produced again", exc)
        return False


def payload(kind: str, suite: str, model: dict[str, Any] | None, seed: int | None,
            config: dict[str, Any], metrics: dict[str, Any], error: dict[str, Any] | None = None,
            **extra: Any) -> dict[str, Any]:
    """A result payload with this run's provenance; ``write_result`` validates it."""
    return {**env.provenance(), "kind": kind, "suite": suite, "model": model, "seed": seed,
            "config": config, "metrics": metrics, "error": error, **extra}


def error_record(exc: BaseException, stage: str) -> dict[str, str]:
    log.error("%s failed: %s\n%s", stage, exc, "".join(traceback.format_exception(exc)[-3:]))
    return {"type": type(exc).__name__, "message": str(exc), "stage": stage}


def model_info(name: str, suite: SuiteConfig, model: torch.nn.Module, num_classes: int,
               gmacs: float | None) -> dict[str, Any]:
    return {"name": name, "scale": suite.scale, "params": sum(p.numel() for p in model.parameters()),
            "gmacs": gmacs, "image_size": suite.data.image_size, "in_chans": suite.data.in_chans,
            "num_classes": num_classes}


@functools.lru_cache(maxsize=None)
def model_gmacs(name: str, scale: str, image_size: int, in_chans: int, num_classes: int) -> float:
    """GMACs of the benchmarked model (10-class head included), counted by two counters that agree."""
    from bench.flops import count_flops
    from bench.models import create_model

    model = create_model(name, scale, num_classes=num_classes, in_chans=in_chans, image_size=image_size)
    return round(count_flops(model.eval(), (1, in_chans, image_size, image_size)).gmacs, 6)


def dataset_info(data: LoadedDataset) -> dict[str, Any]:
    return {"name": data.name, "synthetic": data.synthetic, "class_names": list(data.class_names)}


def train_one(suite: SuiteConfig, model_name: str, seed: int, data: LoadedDataset, paths: RunPaths,
              ctx: DistContext | None = None, force: bool = False, progress: bool = True) -> Path:
    """Train and evaluate one (model, seed) and write its result; rank 0 writes, others return."""
    ctx = ctx or DistContext()
    out = result_path(paths.results, env.machine_info()["id"], suite.name, "train", model_name, seed)
    # Under torchrun the launcher owns the job; alone, a lock keeps concurrent runs from duplicating it.
    with contextlib.nullcontext() if ctx.enabled else exclusive_lock(paths.lock_for(out)):
        return _train_one_locked(suite, model_name, seed, data, paths, out, ctx, force, progress)


def _train_one_locked(suite: SuiteConfig, model_name: str, seed: int, data: LoadedDataset, paths: RunPaths,
                      out: Path, ctx: DistContext, force: bool, progress: bool) -> Path:
    from bench.train import Trainer

    ckpt = paths.checkpoint(suite.name, model_name, seed)
    if not force and is_done(out):
        log.info("skip %s seed %d: %s exists", model_name, seed, out)
        return out
    if force and ckpt.exists() and ctx.is_main:
        ckpt.unlink()
    barrier(ctx)  # no rank may resume from a checkpoint that --force is discarding
    shown = ckpt.relative_to(DATA_DIR.parent) if ckpt.is_relative_to(DATA_DIR.parent) else ckpt
    config = {**suite.to_dict(), "checkpoint": str(shown), "world_size": ctx.world_size}
    info = None
    try:
        trainer = Trainer(suite, model_name, seed, data, ckpt, ctx=ctx, progress=progress)
        gmacs = model_gmacs(model_name, suite.scale, suite.data.image_size, suite.data.in_chans, len(data.class_names))
        info = model_info(model_name, suite, trainer.model, len(data.class_names), gmacs)
        metrics, error = trainer.run(), None
    except Exception as exc:  # noqa: BLE001 - any failure is recorded, not dropped
        metrics, error = {}, error_record(exc, "train")
    if ctx.is_main:
        write_result(out, payload("train", suite.name, info, seed, config, metrics, error, dataset=dataset_info(data)))
        log.info("wrote %s", out)
    return out


def run_suite(suite: SuiteConfig, *, models: list[str] | None = None, seeds: list[int] | None = None,
              stages: tuple[str, ...] = ("train", "profile"), force: bool = False,
              paths: RunPaths = RunPaths(), progress: bool = True) -> list[Path]:
    """Run the suite's stages for the chosen models and seeds; returns the result files."""
    from bench.profile_run import ensure_machine_record, profile_one
    from bench.data.synthetic import write_sample_grid

    models = models or list(suite.models)
    seeds = seeds if seeds is not None else list(suite.seeds)
    data = load_dataset(suite.data, progress=progress)
    if data.synthetic:
        write_sample_grid(data.root, paths.artifacts / "dataset" / safe_name(data.name))
    written: list[Path] = []
    if "profile" in stages:
        written.append(ensure_machine_record(paths, force=force))
    for name in models:
        if "train" in stages:
            for seed in seeds:
                written.append(train_one(suite, name, seed, data, paths, force=force, progress=progress))
        if "profile" in stages:
            ckpt = paths.checkpoint(suite.name, name, seeds[0])
            written.append(profile_one(suite, name, len(data.class_names), paths,
                                       checkpoint=ckpt if ckpt.exists() else None, force=force))
    return written


