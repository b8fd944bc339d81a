"""The trainer: exact reproducibility, recorded failures, torchrun, and kill-and-resume."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench.cli.runner import train_one
from bench.core.config import load_suite
from bench.data import load_dataset
from bench.data.synthetic import ensure_dataset
from bench.results.records import RunPaths
from bench.results.store import ResultError, load_result
from engine_helpers import REPO, comparable, medbench, tiny_suite

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("engine")
    path = tiny_suite(tmp, tmp / "dataset")
    ensure_dataset(load_suite(str(path)).data)
    return path


def _paths(root: Path) -> RunPaths:
    return RunPaths(results=root / "results", checkpoints=root / "ckpt", artifacts=root / "artifacts",
                    locks=root / "locks")


def _only_result(root: Path) -> dict:
    files = sorted((root / "results").rglob("*.json"))
    assert len(files) == 1, files
    return load_result(files[0])


def test_same_seed_reproduces_test_metrics_exactly(suite_file, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDBENCH_MACHINE_ID", "test-machine")
    suite = load_suite(str(suite_file))
    data = load_dataset(suite.data, progress=False)
    runs = []
    for name in ("a", "b"):
        train_one(suite, "pyramid_softmax", 0, data, _paths(tmp_path / name), progress=False)
        runs.append(_only_result(tmp_path / name))
    first, second = runs
    assert first["error"] is None
    assert first["metrics"]["top1"] == second["metrics"]["top1"]
    assert comparable(first["metrics"]) == comparable(second["metrics"])
    assert first["metrics"]["num_test"] == len(data.splits["test"].labels)
    assert first["dataset"]["synthetic"] is True
    assert first["config"]["train"]["epochs"] == 2 and len(first["metrics"]["curves"]["epoch"]) == 2


def test_non_finite_loss_is_recorded_as_an_error(suite_file, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDBENCH_MACHINE_ID", "test-machine")
    monkeypatch.setattr(torch.nn.CrossEntropyLoss, "forward", lambda self, logits, y: logits.sum() * float("nan"))
    suite = load_suite(str(suite_file))
    data = load_dataset(suite.data, progress=False)
    train_one(suite, "pyramid_softmax", 0, data, _paths(tmp_path), progress=False)
    result = _only_result(tmp_path)
    assert result["error"]["type"] == "NonFiniteLossError"
    assert "epoch 1, step 1" in result["error"]["message"]
    assert result["metrics"] == {}


def test_torchrun_two_ranks_on_gloo(suite_file, tmp_path):
    env = {**os.environ, "MEDBENCH_MACHINE_ID": "test-machine", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "bench", "train", "--suite", str(suite_file), "--model", "pyramid_softmax", "--seed", "0",
           "--set", "train.epochs=1", "--device", "cpu",
           "--results-dir", str(tmp_path / "results"), "--checkpoint-dir", str(tmp_path / "ckpt")]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = _only_result(tmp_path)
    assert result["error"] is None and result["config"]["world_size"] == 2
    assert len(list((tmp_path / "ckpt").rglob("*.pt"))) == 1
    test_size = len(load_dataset(load_suite(str(suite_file)).data, progress=False).splits["test"].labels)
    assert result["metrics"]["num_test"] == test_size
    assert sum(map(sum, result["metrics"]["confusion_matrix"])) == test_size
    assert "rank 1/2 joined the gloo process group" in proc.stderr


def _assert_every_visible_json_is_valid(results: Path, seen: set[str]) -> None:
    for path in results.rglob("*.json"):
        try:
            load_result(path)
        except FileNotFoundError:
            continue
        except ResultError as exc:  # pragma: no cover - the assertion below reports it
            pytest.fail(f"invalid result visible during the run: {exc}")
        seen.add(path.name)


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(suite_file, tmp_path):
    common = ["train", "--suite", str(suite_file), "--model", "pyramid_softmax", "--seed", "1",
              "--set", "train.epochs=4", "--set", "train.batch_size=8"]  # small batches: epochs long enough to hit
    killed = tmp_path / "killed"
    args = [*common, "--results-dir", str(killed / "results"), "--checkpoint-dir", str(killed / "ckpt")]
    env = {**os.environ, "MEDBENCH_MACHINE_ID": "test-machine", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ckpt = killed / "ckpt" / "tiny" / "pyramid_softmax__seed1.pt"
    seen: set[str] = set()
    deadline = time.time() + 240
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        _assert_every_visible_json_is_valid(killed, seen)
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before its first checkpoint: " + proc.stderr.read()[-2000:]
    time.sleep(0.1)  # into the second epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list((killed / "results").rglob("*.json")), "a killed run must leave no result"
    first_epoch = torch.load(ckpt, weights_only=True)["epoch"]
    assert first_epoch < 3, "the kill came after the last epoch; nothing was resumed"

    resumed = medbench(*args)
    assert f"after epoch {first_epoch}" in resumed.stderr
    straight = tmp_path / "straight"
    medbench(*common, "--results-dir", str(straight / "results"), "--checkpoint-dir", str(straight / "ckpt"))
    a, b = _only_result(killed), _only_result(straight)
    assert a["error"] is None and comparable(a["metrics"]) == comparable(b["metrics"])
    assert list((killed / "results").rglob("*.tmp")) == []
    _assert_every_visible_json_is_valid(killed, seen)


def test_finished_runs_are_skipped_unless_forced(suite_file, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MEDBENCH_MACHINE_ID", "test-machine")
    suite = load_suite(str(suite_file))
    suite = dataclasses.replace(suite, train=dataclasses.replace(suite.train, epochs=1))
    data = load_dataset(suite.data, progress=False)
    out = train_one(suite, "pyramid_softmax", 0, data, _paths(tmp_path), progress=False)
    stamp = out.stat().st_mtime_ns
    caplog.set_level(logging.INFO, logger="bench")
    train_one(suite, "pyramid_softmax", 0, data, _paths(tmp_path), progress=False)
    assert "skip pyramid_softmax seed 0" in caplog.text and out.stat().st_mtime_ns == stamp
    caplog.clear()
    train_one(suite, "pyramid_softmax", 0, data, _paths(tmp_path), force=True, progress=False)
    assert "skip pyramid_softmax" not in caplog.text and out.stat().st_mtime_ns != stamp
    caplog.clear()
    other = dataclasses.replace(suite, train=dataclasses.replace(suite.train, lr=1e-4))
    train_one(other, "pyramid_softmax", 0, data, _paths(tmp_path), progress=False)
    assert "was made with another config" in caplog.text and "skip pyramid_softmax" not in caplog.text
    assert load_result(out)["config"]["train"]["lr"] == 1e-4


def test_two_concurrent_runs_train_each_job_once(suite_file, tmp_path):
    args = [sys.executable, "-m", "bench", "run", "--suite", str(suite_file), "--stages", "train",
            "--set", "train.epochs=1", "--results-dir", str(tmp_path / "results"),
            "--checkpoint-dir", str(tmp_path / "ckpt"), "--artifacts-dir", str(tmp_path / "artifacts")]
    env = {**os.environ, "MEDBENCH_MACHINE_ID": "test-machine", "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(args, cwd=REPO, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
             for _ in range(2)]
    logs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    assert sum("skip pyramid_softmax seed 0" in log for log in logs) == 1, logs
    assert _only_result(tmp_path)["error"] is None


def test_early_stopping_records_steps_best_epoch_and_convergence(suite_file, tmp_path, monkeypatch):
    """A learning rate too small to move the weights: val never gains more than min_delta, so
    training stops ``patience`` epochs after the first and the run counts as converged."""
    monkeypatch.setenv("MEDBENCH_MACHINE_ID", "test-machine")
    suite = load_suite(str(suite_file))
    frozen = dataclasses.replace(suite, train=dataclasses.replace(
        suite.train, epochs=6, patience=2, min_delta=0.01, min_epochs=0, lr=1e-12, warmup_epochs=0))
    data = load_dataset(suite.data, progress=False)
    train_one(frozen, "pyramid_softmax", 0, data, _paths(tmp_path / "frozen"), progress=False)
    metrics = _only_result(tmp_path / "frozen")["metrics"]
    steps_per_epoch = -(-len(data.splits["train"].labels) // frozen.train.batch_size)
    assert (metrics["best_epoch"], metrics["epochs_run"], metrics["max_epochs"]) == (1, 3, 6)
    assert metrics["converged"] is True and metrics["optimizer_steps"] == 3 * steps_per_epoch
    assert metrics["curves"]["epoch"] == [1, 2, 3]

    capped = dataclasses.replace(frozen, train=dataclasses.replace(frozen.train, epochs=2, patience=0))
    train_one(capped, "pyramid_softmax", 0, data, _paths(tmp_path / "capped"), progress=False)
    metrics = _only_result(tmp_path / "capped")["metrics"]
    assert metrics["epochs_run"] == 2 and metrics["converged"] is False  # no patience: never called converged

    late = dataclasses.replace(frozen, train=dataclasses.replace(frozen.train, min_epochs=5))
    train_one(late, "pyramid_softmax", 0, data, _paths(tmp_path / "late"), progress=False)
    assert _only_result(tmp_path / "late")["metrics"]["epochs_run"] == 5  # not stopped before min_epochs


def test_plateau_schedule_decays_after_a_plateau_and_a_higher_cap_changes_nothing(suite_file, tmp_path, monkeypatch):
    """Plateau schedule: a frozen model plateaus at constant LR, the decay follows and ends the
    run; the run counts as converged, and the same run under twice the cap (alone) is identical."""
    monkeypatch.setenv("MEDBENCH_MACHINE_ID", "test-machine")
    suite = load_suite(str(suite_file))
    frozen = dataclasses.replace(suite, train=dataclasses.replace(
        suite.train, schedule="plateau", epochs=8, decay_epochs=2, patience=2, min_delta=0.01, min_epochs=0,
        lr=1e-12, warmup_epochs=0))
    data = load_dataset(suite.data, progress=False)
    train_one(frozen, "pyramid_softmax", 0, data, _paths(tmp_path / "b"), progress=False)
    metrics = _only_result(tmp_path / "b")["metrics"]
    assert (metrics["decay_start_epoch"], metrics["decay_trigger"], metrics["epochs_run"]) == (3, "plateau", 5)
    assert metrics["converged"] is True and metrics["final_train_loss"] == metrics["curves"]["train_loss"][-1]
    lrs = metrics["curves"]["lr"]
    assert lrs[:3] == [pytest.approx(1e-12)] * 3 and lrs[3] < lrs[2] and lrs[4] == pytest.approx(0.0, abs=1e-20)

    doubled = dataclasses.replace(frozen, train=dataclasses.replace(frozen.train, epochs=16))
    train_one(doubled, "pyramid_softmax", 0, data, _paths(tmp_path / "2b"), progress=False)
    again = _only_result(tmp_path / "2b")["metrics"]
    assert comparable(again) == comparable({**metrics, "max_epochs": 16})

    from bench.stages.schedule import budget_suite

    longer = budget_suite(frozen).train
    assert (longer.epochs, longer.min_epochs, longer.patience, longer.decay_epochs) == (16, 0, 4, 4)
    assert (longer.lr, longer.warmup_epochs, longer.schedule) == (frozen.train.lr, 0, "plateau")

    capped = dataclasses.replace(frozen, train=dataclasses.replace(frozen.train, epochs=3, decay_epochs=1, patience=5))
    train_one(capped, "pyramid_softmax", 0, data, _paths(tmp_path / "cap"), progress=False)
    metrics = _only_result(tmp_path / "cap")["metrics"]
    assert (metrics["decay_start_epoch"], metrics["decay_trigger"], metrics["epochs_run"]) == (2, "cap", 3)
    assert metrics["converged"] is False


def test_the_budget_study_trains_the_first_seed_twice_as_long_and_records_its_gain(suite_file, tmp_path,
                                                                                   monkeypatch) -> None:
    from bench.cli.runner import run_suite

    monkeypatch.setenv("MEDBENCH_MACHINE_ID", "test-machine")
    suite = load_suite(str(suite_file))
    suite = dataclasses.replace(suite, train=dataclasses.replace(
        suite.train, schedule="plateau", epochs=3, decay_epochs=1, patience=1, min_delta=0.0, min_epochs=1))
    run_suite(suite, stages=("train", "budget"), paths=_paths(tmp_path), progress=False)
    folder = tmp_path / "results" / "test-machine" / "tiny"
    base, doubled = (load_result(folder / f"{kind}__pyramid_softmax__seed0.json")["metrics"] for kind in ("train", "budget"))
    assert (base["max_epochs"], doubled["max_epochs"], doubled["patience"]) == (3, 6, 2)
    check = doubled["budget_check"]
    assert check["base_result"] == "train__pyramid_softmax__seed0.json"
    assert check["gain"] == pytest.approx(doubled["best_val_balanced_accuracy"] - base["best_val_balanced_accuracy"])
    assert (tmp_path / "ckpt" / "tiny-budget" / "pyramid_softmax__seed0.pt").is_file()  # the suite's checkpoint stays


def test_plateau_schedule_is_constant_after_warm_up_then_decays():
    from bench.stages.schedule import plateau_then_decay

    ratios = [plateau_then_decay(step, 2, None, 4) for step in range(6)]
    assert ratios == [0.5, 1.0, 1.0, 1.0, 1.0, 1.0]
    decayed = [plateau_then_decay(step, 2, 6, 4, min_ratio=0.1) for step in range(12)]
    assert decayed[:7] == [0.5] + [1.0] * 6 and decayed[8] == pytest.approx(0.55)
    assert decayed[10:] == [pytest.approx(0.1)] * 2


def test_schedule_warms_up_decays_to_the_floor_then_cools_down():
    from bench.stages.schedule import cosine_with_warmup

    ratios = [cosine_with_warmup(step, warmup_steps=2, decay_steps=10, min_ratio=0.01) for step in range(16)]
    assert ratios[:2] == [0.5, 1.0] and ratios[2] == 1.0
    assert all(a >= b for a, b in zip(ratios[2:12], ratios[3:13]))  # monotone decay
    assert ratios[12:] == [pytest.approx(0.01)] * 4  # the cool-down holds the floor
    assert cosine_with_warmup(7, 2, 10) == pytest.approx(0.5)  # half-way through the cosine


def test_parallel_jobs_train_every_run_once(suite_file, tmp_path, monkeypatch):
    """``--jobs 2``: two worker processes share the runs; each result is written once, error-free."""
    from bench.cli.runner import run_suite

    monkeypatch.setenv("MEDBENCH_MACHINE_ID", "test-machine")
    suite = dataclasses.replace(load_suite(str(suite_file)), seeds=(0, 1))
    written = run_suite(suite, stages=("train",), paths=_paths(tmp_path), progress=False, jobs=2)
    assert sorted(p.name for p in written) == ["train__pyramid_softmax__seed0.json",
                                               "train__pyramid_softmax__seed1.json"]
    for path in written:
        result = load_result(path)
        assert result["error"] is None and result["seed"] in (0, 1)
