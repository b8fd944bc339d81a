"""Latency recipe, resolution sweep, matmul peak and roofline on tiny stand-in models."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest
import torch
from torch import nn

import bench.models
from bench.results.store import SCHEMA_DIR
from bench.stages import profile, timing
from bench.stages.timing import is_out_of_memory, summarize_ms, track_peak_memory


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_cnn(in_chans: int = 1, num_classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_chans, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, num_classes),
    )


@pytest.fixture(scope="module")
def latency_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / "result.v1.schema.json").read_text())
    return jsonschema.Draft202012Validator({"$ref": "#/$defs/latency", "$defs": schema["$defs"]})


def test_summarize_ms_matches_numpy() -> None:
    samples = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 7.0, 6.0, 9.0, 8.0]
    stats = summarize_ms(samples)
    a = np.array(samples)
    assert stats["p50_ms"] == pytest.approx(np.percentile(a, 50))
    assert stats["p90_ms"] == pytest.approx(9.1)  # linear interpolation between 9 and 10
    assert stats["p99_ms"] == pytest.approx(np.percentile(a, 99))
    assert stats["mean_ms"] == pytest.approx(5.5)
    assert stats["std_ms"] == pytest.approx(a.std(ddof=1))
    assert stats["cv"] == pytest.approx(a.std(ddof=1) / 5.5)


def test_summarize_ms_rejects_empty() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        summarize_ms([])


def test_measure_latency_returns_schema_entry(latency_validator: jsonschema.Draft202012Validator) -> None:
    model = tiny_cnn().train()
    entry = profile.measure_latency(model, batch_size=2, image_size=16, warmup=2, runs=7)
    # every field the schema names but the two of interleaved rounds (bench.stages.rounds)
    assert set(entry) == set(latency_validator.schema["$defs"]["latency"]["properties"]) - {"rounds", "round_p50_ms"}
    assert len(entry["samples_ms"]) == 7 and all(s > 0 for s in entry["samples_ms"])
    assert entry["p50_ms"] > 0 and entry["p99_ms"] >= entry["p50_ms"]
    assert (entry["device"], entry["dtype"], entry["batch_size"], entry["image_size"]) == ("cpu", "float32", 2, 16)
    assert entry["threads"] == torch.get_num_threads()
    assert entry["throughput_images_per_s"] == pytest.approx(2 / (entry["mean_ms"] / 1e3))
    assert entry["peak_memory_mb"] is None or entry["peak_memory_mb"] >= 0
    assert model.training, "the caller's train/eval mode is restored"
    latency_validator.validate(entry)


def test_measure_latency_bfloat16_runs_under_autocast(latency_validator: jsonschema.Draft202012Validator) -> None:
    entry = profile.measure_latency(tiny_cnn(), batch_size=1, image_size=16, dtype="bfloat16", warmup=1, runs=3)
    assert entry["dtype"] == "bfloat16" and len(entry["samples_ms"]) == 3
    latency_validator.validate(entry)


def test_measure_latency_rejects_unknown_dtype() -> None:
    with pytest.raises(ValueError, match="dtype"):
        profile.measure_latency(tiny_cnn(), batch_size=1, image_size=16, dtype="int8")


def test_cpu_peak_memory_sees_a_large_temporary() -> None:
    with track_peak_memory("cpu") as peak:
        x = torch.ones(32, 2**20)  # 128 MiB, touched
        del x
    if peak.mb is None:
        pytest.skip("no /proc/self/status here")
    assert peak.mb > 100


def test_resolution_sweep_builds_per_size_and_records_oom() -> None:
    built = []

    def build(size: int) -> nn.Module:
        built.append(size)
        if size == 48:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes")
        return tiny_cnn()

    sweep = profile.resolution_sweep(build, [16, 32, 48], tokens_for=lambda _m, s: (s // 4) ** 2,
                                     count_gmacs=lambda model, size: size * 1e-3, warmup=1, runs=3)
    assert built == [16, 32, 48]
    assert [e["tokens"] for e in sweep] == [16, 64, None]  # a model that could not be built has no token count
    assert [e["status"] for e in sweep] == ["ok", "ok", "oom"]
    assert sweep[1]["gmacs"] == pytest.approx(0.032) and sweep[1]["p50_ms"] > 0
    assert sweep[2]["p50_ms"] is None
    assert {k for e in sweep for k in e} >= {"image_size", "tokens", "device", "dtype", "batch_size", "p50_ms",
                                            "mean_ms", "std_ms", "gmacs"}


def test_resolution_sweep_propagates_real_errors() -> None:
    def build(size: int) -> nn.Module:
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        profile.resolution_sweep(build, [16], tokens_for=lambda _m, s: s, count_gmacs=None, warmup=1, runs=3)


def test_is_out_of_memory() -> None:
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("[enforce fail at alloc_cpu.cpp:117] can't allocate memory"))
    assert not is_out_of_memory(RuntimeError("size mismatch"))


def test_matmul_peak_and_roofline() -> None:
    peak = profile.matmul_peak_gflops(size=128, seconds=0.01)
    assert peak > 0
    entry = {"device": "cpu", "dtype": "float32", "batch_size": 4, "p50_ms": 10.0}
    roof = profile.roofline(0.5, entry, peak=1000.0)
    # 2 FLOPs per MAC x 0.5 GMACs x 4 images in 10 ms = 400 GFLOP/s
    assert roof["achieved_gflops_per_s"] == pytest.approx(400.0)
    assert roof["fraction_of_peak"] == pytest.approx(0.4)
    assert roof["peak_gflops_per_s"] == 1000.0 and roof["batch_size"] == 4


def test_compare_with_torch_timer_reports_both() -> None:
    result = profile.compare_with_torch_timer(tiny_cnn(), 1, 16, 6, warmup=1, min_run_time=0.06)
    assert result["ours_p50_ms"] > 0 and result["torch_timer_median_ms"] > 0
    assert result["rel_diff"] == pytest.approx(
        (result["ours_p50_ms"] - result["torch_timer_median_ms"]) / result["torch_timer_median_ms"])
    assert result["threads"] == torch.get_num_threads()
    assert result["ours_runs"] == 6 and result["torch_timer_blocks"] >= 3  # three alternating turns each


def test_compare_with_torch_timer_records_device_and_dtype() -> None:
    result = profile.compare_with_torch_timer(tiny_cnn(), 1, 16, 3, warmup=1, min_run_time=0.03, dtype="bfloat16")
    assert (result["device"], result["dtype"]) == ("cpu", "bfloat16")
    with pytest.raises(ValueError):
        profile.compare_with_torch_timer(tiny_cnn(), 1, 16, 3, dtype="float16")


def test_check_latency_main_builds_through_the_zoo(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    created = []

    def create_model(name: str, scale: str = "quick", **kwargs: object) -> nn.Module:
        created.append((name, scale))
        return tiny_cnn()

    monkeypatch.setattr(bench.models, "create_model", create_model, raising=False)
    monkeypatch.setattr(bench.models, "default_image_size", lambda scale: 16, raising=False)
    calls = []

    def compare(model: nn.Module, batch_size: int, image_size: int, **kwargs: str) -> dict:
        calls.append(kwargs)
        return {"ours_p50_ms": 1.05, "torch_timer_median_ms": 1.0, "rel_diff": 0.05 if len(calls) == 1 else 0.2}

    monkeypatch.setattr(profile, "compare_with_torch_timer", compare)
    out = tmp_path / "check.json"
    rows = profile.check_latency_main(["a", "b"], "quick", dtype="bfloat16", out=out)
    assert created == [("a", "quick"), ("b", "quick")]
    assert calls == [{"device": "cpu", "dtype": "bfloat16"}] * 2
    assert [r["model"] for r in rows] == ["a", "b"] and [r["within_tolerance"] for r in rows] == [True, False]
    assert json.loads(out.read_text()) == rows


def test_busy_cpu_is_warned_once(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(timing, "_last_busy_warning", -float("inf"))
    monkeypatch.setattr(timing.os, "getloadavg", lambda: (99.0, 0.0, 0.0))
    with caplog.at_level("WARNING", logger="bench.stages.timing"):
        assert timing.warn_if_cpu_busy() == 99.0
        timing.warn_if_cpu_busy()
    assert len([r for r in caplog.records if "CPU busy" in r.message]) == 1


def test_matmul_peak_keeps_every_run() -> None:
    peak, rates = profile.matmul_peak_gflops(size=128, seconds=0.01, samples=True)
    assert len(rates) >= 3 and peak == max(rates) and min(rates) > 0


def test_cpu_bf16_is_profiled_only_where_the_isa_has_it(monkeypatch) -> None:
    from bench.core import env
    from bench.stages.profile_run import dtypes_for

    monkeypatch.setattr(env, "cpu_isa", lambda: ["avx2", "avx512f", "avx512_bf16"])
    assert dtypes_for("cpu", ("float32", "bfloat16")) == ["float32", "bfloat16"]
    monkeypatch.setattr(env, "cpu_isa", lambda: ["avx2", "fma"])  # bf16 would be emulated
    assert dtypes_for("cpu", ("float32", "bfloat16")) == ["float32"]
    assert dtypes_for("cuda", ("float32", "bfloat16")) == ["float32", "bfloat16"]


def test_the_machine_record_holds_each_peak_its_runs_and_the_isa(tmp_path, monkeypatch) -> None:
    from bench.core import env
    from bench.results.records import RunPaths
    from bench.results.store import load_result
    from bench.stages import profile_run

    monkeypatch.setenv("MEDBENCH_MACHINE_ID", "test-machine")
    monkeypatch.setattr(env, "cpu_isa", lambda: ["avx512f", "avx512_bf16"])
    monkeypatch.setattr(profile_run, "devices", lambda: ["cpu"])
    monkeypatch.setattr(profile, "matmul_peak_gflops",
                        lambda dev, dt, samples=False: ({"float32": 100.0, "bfloat16": 700.0}[dt], [90.0, 100.0, 95.0]))
    paths = RunPaths(results=tmp_path / "r", checkpoints=tmp_path / "c", artifacts=tmp_path / "a", locks=tmp_path / "l")
    m = load_result(profile_run.ensure_machine_record(paths))["metrics"]
    assert m["matmul_peak_gflops_per_s"] == {"cpu:float32": 100.0, "cpu:bfloat16": 700.0}
    assert m["matmul_samples_gflops_per_s"]["cpu:bfloat16"] == [90.0, 100.0, 95.0]
    assert m["cpu_isa"] == ["avx512f", "avx512_bf16"]


def test_sweep_exponents_recover_a_power_law() -> None:
    sweep = [{"status": "ok", "image_size": s, "tokens": (s // 4) ** 2, "p50_ms": 0.01 * s ** 2} for s in (112, 224, 448)]
    sweep.append({"status": "oom", "image_size": 896, "tokens": None, "p50_ms": None})
    fit = profile.sweep_exponents(sweep)
    assert fit["points"] == 3 and fit["sizes"] == [112, 224, 448]
    assert fit["vs_side"] == pytest.approx(2.0) and fit["vs_tokens"] == pytest.approx(1.0)
    assert profile.sweep_exponents(sweep[:1]) is None
