"""The cost stage: one epoch through the recipe's trainer and a pass of inference, per dtype,
with MFU against the machine record and an energy estimate that states its formula."""

from __future__ import annotations

import pytest

from bench.core.config import ConfigError, load_suite, suite_from_dict
from bench.core.energy import ESTIMATE_LABEL, EnergyModel
from bench.results.records import RunPaths
from bench.results.store import load_result, validation_errors
from bench.stages.cost import cost_dataset, cost_one
from engine_helpers import tiny_suite


def _suite(tmp_path, **cost):
    path = tiny_suite(tmp_path, tmp_path / "unused")
    values = load_suite(str(path)).to_dict()
    values["cost"] = {"images": 24, "batch_size": 8, "warmup_batches": 1, "threads": [1], **cost}
    return suite_from_dict(values)


def _paths(tmp_path) -> RunPaths:
    return RunPaths(results=tmp_path / "results", checkpoints=tmp_path / "ckpt", artifacts=tmp_path / "art",
                    locks=tmp_path / "results" / ".locks")


def test_cost_result_has_training_and_inference_rows_with_mfu_and_an_estimate(tmp_path):
    suite = _suite(tmp_path)
    out = cost_one(suite, "pyramid_softmax", _paths(tmp_path))
    result = load_result(out)
    assert out.name == "cost__pyramid_softmax.json" and result["error"] is None
    assert validation_errors(result) == []
    metrics = result["metrics"]
    machine = result["machine"]["id"]  # the id env.machine_info() gave, cached by whichever test asked first
    peaks = load_result(tmp_path / "results" / machine / "hardware" / "machine.json")["metrics"]
    for kind, flops_per_forward in (("training", 3), ("inference", 1)):
        rows = metrics[kind]
        assert {r["dtype"] for r in rows} >= {"float32"} and all(r["threads"] == 1 for r in rows)
        for row in rows:
            # an epoch of 24 images at batch 8: three steps, every image once
            assert row["images"] == 24 and row["batch_size"] == 8
            assert row["images_per_s"] == pytest.approx(24 / row["wall_s"], rel=0.01)
            achieved = flops_per_forward * 2 * result["model"]["gmacs"] * row["images_per_s"]
            assert row["achieved_gflops_per_s"] == pytest.approx(achieved, rel=0.01)
            peak = peaks["matmul_peak_gflops_per_s"][f"cpu:{row['dtype']}"] / result["machine"]["threads"]
            assert row["mfu"] == pytest.approx(achieved / peak, rel=0.02)
            energy = row["energy"]
            if energy["label"] == ESTIMATE_LABEL:
                band = energy["joules_per_image"]
                assert 0 < band["low"] < band["central"] < band["high"]
    assert "formula" in metrics["energy_model"] and metrics["energy_model"]["watts_per_core"] == [2.5, 5.0, 10.0]
    # done work is skipped; a changed setting measures again
    mtime = out.stat().st_mtime_ns
    assert cost_one(suite, "pyramid_softmax", _paths(tmp_path)).stat().st_mtime_ns == mtime


def test_cost_dataset_follows_the_generator_proportions():
    suite = load_suite("paper")
    data = cost_dataset(suite, 64)
    train = data.splits["train"]
    assert train.images.shape == (64, 1, 224, 224)
    assert abs(float(train.images.mean())) < 1e-4  # normalised with its own statistics
    counts = train.labels.bincount(minlength=len(data.class_names)).tolist()
    assert sum(counts) == 64 and counts[data.class_names.index("normal")] == max(counts)


def test_energy_estimate_is_cpu_seconds_times_watts_plus_memory():
    model = EnergyModel(watts_per_core=(2.0, 4.0, 8.0), watts_per_gb=0.5)
    joules = model.joules(cpu_seconds=10.0, wall_seconds=6.0, resident_gb=2.0)
    assert joules == {"low": 26.0, "central": 46.0, "high": 86.0}
    assert "watts_per_core" in model.formula()


@pytest.mark.parametrize("cost, message", [
    ({"watts_per_core": [5.0, 2.0, 10.0]}, "watts_per_core"),
    ({"images": 10}, "two batches"),
    ({"dtypes": ["float16"]}, "cost.dtypes"),
])
def test_cost_config_rejects_bad_values(tmp_path, cost, message):
    with pytest.raises(ConfigError, match=message):
        _suite(tmp_path, **cost)
