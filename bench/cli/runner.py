"""Run a suite: train every (model, seed), score the baselines, compare, profile every
model, record the machine.

Every stage is skipped when its result file already exists for the same config without
error (unless ``force``), holds a per-result lock so concurrent runs never duplicate or
clobber work, and records a failure as a result with ``error`` instead of dropping it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import tempfile
from pathlib import Path
from typing import Any

from bench.core import env
from bench.core.config import SuiteConfig
from bench.core.distributed import DistContext, barrier, init_from_env
from bench.data import LoadedDataset, load_dataset
from bench.results.records import RunPaths, dataset_info, display_path, error_record, is_done, model_info, payload
from bench.results.store import ResultError, exclusive_lock, load_result, result_path, write_result

log = logging.getLogger(__name__)

STAGES = ("train", "baselines", "compare", "profile", "explain", "export")
# Stages run only when asked for (``--stages budget``, ``medbench budget``), never by default.
# budget: the first seed of every model trained again with a recipe twice as long (see
# ``bench.stages.schedule.budget_suite``); the comparison sets its validation score beside the suite's.
# shift: every kept checkpoint evaluated under acquisition shifts (``bench.stages.shift``).
STUDIES = ("budget", "shift")


@functools.lru_cache(maxsize=None)
def model_gmacs(name: str, scale: str, image_size: int, in_chans: int, num_classes: int) -> float | None:
    """GMACs of the benchmarked model (its head included) from two agreeing counters, or
    None when they cannot count it: a missing count must not cost the training run."""
    from bench.models import create_model
    from bench.models.flops import count_flops

    model = create_model(name, scale, num_classes=num_classes, in_chans=in_chans, image_size=image_size)
    try:
        return round(count_flops(model.eval(), (1, in_chans, image_size, image_size)).gmacs, 6)
    except Exception as exc:  # noqa: BLE001 - FlopMismatchError, a missing fvcore, an op no counter knows
        log.warning("no GMACs for %s: %s: %s", name, type(exc).__name__, exc)
        return None


def train_one(suite: SuiteConfig, model_name: str, seed: int, data: LoadedDataset, paths: RunPaths,
              ctx: DistContext | None = None, force: bool = False, progress: bool = True, kind: str = "train") -> Path:
    """Train and evaluate one (model, seed) and write its result; rank 0 writes, others return.
    ``kind`` "budget" writes a budget-study run beside the suite's own, with its own checkpoint."""
    ctx = ctx or init_from_env()
    out = result_path(paths.results, env.machine_info()["id"], suite.name, kind, model_name, seed)
    # Under torchrun the launcher owns the job; alone, a lock keeps concurrent runs from duplicating it.
    with contextlib.nullcontext() if ctx.enabled else exclusive_lock(paths.lock_for(out)):
        return _train_one_locked(suite, model_name, seed, data, paths, out, ctx, force, progress, kind)


def _train_one_locked(suite: SuiteConfig, model_name: str, seed: int, data: LoadedDataset, paths: RunPaths,
                      out: Path, ctx: DistContext, force: bool, progress: bool, kind: str) -> Path:
    from bench.stages.train import Trainer, config_fingerprint

    ckpt = paths.checkpoint(suite.name if kind == "train" else f"{suite.name}-{kind}", model_name, seed)
    config_id = config_fingerprint(suite, model_name, seed)
    if not force and is_done(out, config_id):
        log.info("skip %s seed %d: %s exists", model_name, seed, out)
        return out
    if force and ckpt.exists() and ctx.is_main:
        ckpt.unlink()
    barrier(ctx)  # no rank may resume from a checkpoint that --force is discarding
    config = {**suite.to_dict(), "checkpoint": display_path(ckpt), "world_size": ctx.world_size, "fingerprint": config_id}
    num_classes = len(data.class_names)
    info = None
    try:
        trainer = Trainer(suite, model_name, seed, data, ckpt, ctx=ctx, progress=progress)
        gmacs = model_gmacs(model_name, suite.scale, suite.data.image_size, suite.data.in_chans, num_classes)
        info = model_info(model_name, suite.scale, trainer.model, suite.data.image_size, suite.data.in_chans,
                          num_classes, gmacs)
        metrics, error = trainer.run(), None
        if kind == "budget" and ctx.is_main:
            base = result_path(paths.results, env.machine_info()["id"], suite.name, "train", model_name, seed)
            metrics["budget_check"] = budget_check(metrics, base)
    except Exception as exc:  # noqa: BLE001 - any failure is recorded, not dropped
        metrics, error = {}, error_record(exc, "train")
        if ctx.enabled:  # the other ranks wait in a collective: end the job, after recording why
            if ctx.is_main:
                write_result(out, payload(kind, suite.name, info, seed, config, metrics, error,
                                          dataset=dataset_info(data)))
            raise
    if ctx.is_main:
        write_result(out, payload(kind, suite.name, info, seed, config, metrics, error, dataset=dataset_info(data)))
        log.info("wrote %s", out)
    return out


def budget_check(metrics: dict[str, Any], base: Path) -> dict[str, Any] | None:
    """A budget-study run's validation gain over the suite's run of the same seed (``base``), when
    that run is there to compare with; the comparison stage sets the two side by side either way."""
    try:
        base_val = load_result(base)["metrics"]["best_val_balanced_accuracy"]
    except (ResultError, KeyError, TypeError):
        return None
    if base_val is None or metrics.get("best_val_balanced_accuracy") is None:
        return None
    return {"base_result": base.name, "base_val_balanced_accuracy": base_val,
            "gain": round(metrics["best_val_balanced_accuracy"] - base_val, 6)}


_WORKER: dict[str, Any] = {}


def _exit_with_parent(parent: int, every_s: float = 2.0) -> None:
    """Ends this worker when the process that started it is gone (killed, say): its runs
    resume from their last epoch checkpoints next time, rather than train on unattended."""
    import os
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _worker_init(suite: SuiteConfig, threads: int, level: int, parent: int) -> None:
    """A training worker: its share of the cores, and the dataset loaded once."""
    import torch

    _exit_with_parent(parent)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(threads)
    # its share of the cores for reading too (the workers load side by side), unless the suite says
    data_cfg = suite.data if suite.data.load_workers else dataclasses.replace(suite.data, load_workers=threads)
    _WORKER["data"] = load_dataset(data_cfg, progress=False)


def _worker_train(suite: SuiteConfig, name: str, seed: int, paths: RunPaths, force: bool, kind: str) -> Path:
    return train_one(suite, name, seed, _WORKER["data"], paths, force=force, progress=False, kind=kind)


def train_parallel(suite: SuiteConfig, tasks: list[tuple[str, int]], paths: RunPaths, jobs: int,
                   force: bool = False, kind: str = "train") -> list[Path]:
    """Train (model, seed) tasks in ``jobs`` processes sharing the cores evenly.

    Small models use two threads poorly: on 2 cores, two one-thread runs side by side train
    faster than one two-thread run after the other. Each run is seeded as in one process;
    only the thread count, and with it the order of floating-point sums, differs.
    """
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, env.cpu_cores() // jobs)
    log.info("training %d runs in %d processes of %d thread(s)", len(tasks), jobs, threads)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                             initargs=(suite, threads, logging.getLogger().getEffectiveLevel(), os.getpid())) as pool:
        futures = [pool.submit(_worker_train, suite, name, seed, paths, force, kind) for name, seed in tasks]
        with RunProgress(len(tasks), kind) as progress:
            for future in as_completed(futures):
                progress.done(future.result())
        return [f.result() for f in futures]


class RunProgress:
    """Runs finished out of all, with an ETA: a bar on a terminal, and a log line per run for logs."""

    def __init__(self, total: int, kind: str, enabled: bool = True) -> None:
        import sys
        import time

        from tqdm import tqdm

        self.total, self.kind, self.enabled, self.clock, self.start = total, kind, enabled, time.monotonic, time.monotonic()
        self.finished = 0
        self.bar = tqdm(total=total, desc=f"{kind} runs", unit="run",
                        disable=not enabled or not sys.stderr.isatty())

    def done(self, path: Path) -> Path:
        self.finished += 1
        self.bar.update()
        if self.enabled:
            elapsed = self.clock() - self.start
            eta = elapsed / self.finished * (self.total - self.finished)
            log.info("%s runs: %d/%d done (%s), %.0f s elapsed, ETA %.0f s", self.kind, self.finished, self.total,
                     path.name, elapsed, eta)
        return path

    def __enter__(self) -> "RunProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


def _compare(suite: SuiteConfig, paths: RunPaths, force: bool) -> Path | None:
    from bench.stages.compare import ComparisonError, compare_suite

    try:
        return compare_suite(suite, paths, force=force)
    except ComparisonError as exc:  # a stale result must not cost the profiles
        log.error("no comparison for suite %s: %s", suite.name, exc)
        return None


def ensure_checkpoint(suite: SuiteConfig, name: str, seed: int, data: LoadedDataset, paths: RunPaths) -> Path:
    """The run's checkpoint; where this machine lacks it, retrained (training is deterministic
    per seed) and checked against the committed result's test predictions."""
    ckpt = paths.checkpoint(suite.name, name, seed)
    if ckpt.exists():
        return ckpt
    committed = load_result(result_path(paths.results, env.machine_info()["id"], suite.name, "train", name, seed))
    log.warning("retraining %s seed %d: this machine has no checkpoint of it (%s)", name, seed, ckpt)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = dataclasses.replace(paths, results=Path(tmp), locks=Path(tmp) / ".locks")
        retrained = load_result(train_one(suite, name, seed, data, scratch))
    if retrained["metrics"].get("test_predictions") != committed["metrics"].get("test_predictions"):
        raise RuntimeError(f"{ckpt}: the retrained {name} seed {seed} does not reproduce the committed result's "
                           "test predictions")
    log.info("retrained %s seed %d reproduces the committed result", name, seed)
    return ckpt


def shift_study(suite: SuiteConfig, models: list[str], seeds: list[int], data: LoadedDataset, paths: RunPaths,
                force: bool = False) -> list[Path]:
    """The shift study of every (model, seed), then the suite's summary over all of them."""
    from bench.stages.shift import shift_one, shifted_test_sets, summarise_shifts, write_examples

    sets = functools.cache(lambda: shifted_test_sets(suite, data))  # built once, and only if a run needs it
    examples = write_examples(suite, data, paths)
    written = []
    with RunProgress(len(models) * len(seeds), "shift") as bar:
        for name in models:
            for seed in seeds:
                ensure_checkpoint(suite, name, seed, data, paths)
                written.append(bar.done(shift_one(suite, name, seed, data, paths, sets, force=force)))
    return written + [summarise_shifts(suite, paths, examples)]


def run_suite(suite: SuiteConfig, *, models: list[str] | None = None, seeds: list[int] | None = None,
              stages: tuple[str, ...] = STAGES, force: bool = False,
              paths: RunPaths = RunPaths(), progress: bool = True, jobs: int = 1) -> list[Path]:
    """Run the suite's stages for the chosen models and seeds; returns the result files."""
    from bench.data.synthetic import write_sample_grid
    from bench.stages.profile_run import ensure_machine_record, profile_suite

    unknown = sorted(set(stages) - set(STAGES) - set(STUDIES))
    if unknown:
        raise ValueError(f"unknown stages {unknown}; valid stages: {', '.join(STAGES + STUDIES)}")
    models = models or list(suite.models)
    seeds = seeds if seeds is not None else list(suite.seeds)
    if set(stages) <= {"compare"}:  # results in, results out: no dataset needed
        return [p for p in [_compare(suite, paths, force)] if p is not None] if stages else []
    data = load_dataset(suite.data, progress=progress)
    if data.synthetic:
        write_sample_grid(data.root, paths.artifact_dir("dataset", data.name))
    ctx = init_from_env()  # one process: CUDA when available
    written: list[Path] = []
    if "profile" in stages:
        written.append(ensure_machine_record(paths, force=force))
    trainings = [("train", suite, [(name, seed) for seed in seeds for name in models])] if "train" in stages else []
    if "budget" in stages:
        from bench.stages.schedule import budget_suite

        trainings.append(("budget", budget_suite(suite), [(name, seeds[0]) for name in models]))
    for kind, recipe, tasks in trainings:
        if jobs > 1 and ctx.device.type == "cpu" and not ctx.enabled:
            written += train_parallel(recipe, tasks, paths, jobs, force, kind=kind)
        else:
            with RunProgress(len(tasks), kind, enabled=ctx.is_main) as bar:
                for name, seed in tasks:
                    written.append(bar.done(train_one(recipe, name, seed, data, paths, ctx=ctx, force=force,
                                                      progress=progress, kind=kind)))
    if "baselines" in stages:
        from bench.stages.baseline_run import run_baselines

        written += run_baselines(suite, data, paths, seed=suite.seeds[0], force=force)
    if "compare" in stages:
        written += [p for p in [_compare(suite, paths, force)] if p is not None]
    if "profile" in stages:
        from bench.stages.cost import cost_suite

        written += profile_suite(suite, models, paths, seed=seeds[0], num_classes=len(data.class_names), force=force)
        written += cost_suite(suite, models, paths, force=force)
    if "explain" in stages:
        from bench.explain.stage import explain_suite

        written += explain_suite(suite, models, data, paths, seed=seeds[0], force=force)
    if "shift" in stages:
        written += shift_study(suite, models, seeds, data, paths, force=force)
    if "export" in stages:
        from bench.export.stage import export_suite

        written += export_suite(suite, models, data, paths, seed=seeds[0], force=force)
    return written
