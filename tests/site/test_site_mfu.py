"""Training MFU on the site: 3 x forward FLOPs x images/s over the right peak."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from bench.site.load import LoadedResult
from bench.site.mfu import training_mfu, training_settings

CPU = {"id": "cpu-2c", "cpu": "x", "cores": 2, "threads": 1, "gpu": None}
GPU = {"id": "gpu-h100", "cpu": "x", "cores": 16, "threads": 16, "gpu": {"name": "NVIDIA H100"}}


def _train(machine: dict, seed: int, images_per_s: float, *, speed: dict | None = None, gmacs: float = 0.5,
           amp_bf16: bool = True, error: dict | None = None) -> LoadedResult:
    metrics = {"train_images_per_s": images_per_s}
    if speed is not None:
        metrics["speed"] = speed
    payload = {"kind": "train", "suite": "s", "seed": seed, "machine": machine, "error": error,
               "model": {"name": "m", "gmacs": gmacs}, "config": {"train": {"amp_bf16": amp_bf16}},
               "metrics": {} if error else metrics}
    return LoadedResult(Path(f"/r/{machine['id']}/{seed}.json"), Path(f"{machine['id']}/{seed}.json"),
                        copy.deepcopy(payload))


def test_a_one_thread_cpu_run_is_held_to_its_share_of_a_two_thread_peak():
    runs = [_train(CPU, 0, 100.0), _train(CPU, 1, 120.0)]
    row = training_mfu(runs, {"cpu-2c": {"cpu:float32": 200.0}}, {"cpu-2c": 2})[("cpu-2c", "s", "m")]
    assert (row.device, row.dtype, row.threads, row.seeds) == ("cpu", "float32", 1, 2)
    assert row.images_per_s == pytest.approx(110.0)
    assert row.achieved_gflops_per_s == pytest.approx(6 * 0.5 * 110.0)  # 3 passes x 2 FLOPs per MAC
    assert row.peak_gflops_per_s == pytest.approx(100.0)
    assert row.mfu == pytest.approx(330.0 / 100.0)


def test_a_gpu_run_under_autocast_is_held_to_the_bf16_peak():
    speed = {"device": "cuda", "autocast": "bfloat16", "fused_adamw": True, "channels_last": True,
             "compiled": False, "device_data": True}
    runs = [_train(GPU, 0, 2000.0, speed=speed)]
    peaks = {"gpu-h100": {"cuda:float32": 50_000.0, "cuda:bfloat16": 700_000.0}}
    row = training_mfu(runs, peaks, {"gpu-h100": 16})[("gpu-h100", "s", "m")]
    assert (row.dtype, row.threads, row.peak_gflops_per_s) == ("bfloat16", None, 700_000.0)
    assert row.mfu == pytest.approx(6 * 0.5 * 2000.0 / 700_000.0)


@pytest.mark.parametrize("amp_bf16, dtype", [(True, "bfloat16"), (False, "float32")])
def test_results_from_before_the_speed_record_read_their_dtype_from_the_recipe(amp_bf16, dtype):
    assert training_settings(_train(GPU, 0, 1.0, amp_bf16=amp_bf16).payload) == ("cuda", dtype)
    assert training_settings(_train(CPU, 0, 1.0, amp_bf16=amp_bf16).payload) == ("cpu", "float32")


def test_no_peak_no_mfu_and_failed_or_uncounted_runs_are_left_out():
    runs = [_train(CPU, 0, 100.0), _train(CPU, 1, 0.0, error={"type": "E", "message": "x"}),
            _train(GPU, 0, 10.0, gmacs=0.0)]
    rows = training_mfu(runs, {}, {})
    assert set(rows) == {("cpu-2c", "s", "m")}
    assert rows[("cpu-2c", "s", "m")].seeds == 1
    assert rows[("cpu-2c", "s", "m")].peak_gflops_per_s is None and rows[("cpu-2c", "s", "m")].mfu is None


def test_a_result_without_a_recorded_recipe_still_gets_a_row():
    run = _train(GPU, 0, 10.0)
    run.payload["config"] = {}
    assert training_settings(run.payload) == ("cuda", "float32")
    assert training_mfu([run], {"gpu-h100": {"cuda:float32": 60.0}}, {})[("gpu-h100", "s", "m")].mfu == pytest.approx(0.5)
