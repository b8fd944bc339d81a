"""Interleaved rounds: every configuration is visited once per round, its runs split across rounds."""

from __future__ import annotations

import pytest
import torch

from bench.stages.rounds import Timer, run_in_rounds, torch_call


def test_rounds_interleave_configurations_and_split_their_runs():
    calls: list[str] = []
    prepared: list[str] = []
    timers = [Timer({"runtime": "torch", "device": "cpu", "dtype": "float32", "batch_size": b, "threads": 1,
                     "image_size": 8}, lambda name=name: calls.append(name), runs,
                    prepare=lambda name=name: prepared.append(name))
              for name, b, runs in (("a", 1, 7), ("b", 4, 3))]
    entries = run_in_rounds(timers, rounds=3, warmup=2)
    # round 1: full warm-up then a's 3 runs, b's 1; rounds 2 and 3: one warm run, then the share
    assert calls == ["a"] * (2 + 3) + ["b"] * (2 + 1) + (["a"] * (1 + 2) + ["b"] * (1 + 1)) * 2
    assert prepared == ["a", "b"] * 3
    a, b = entries
    assert len(a["samples_ms"]) == 7 and len(b["samples_ms"]) == 3
    assert a["rounds"] == 3 and len(a["round_p50_ms"]) == 3 and len(b["round_p50_ms"]) == 3
    assert b["throughput_images_per_s"] == pytest.approx(4 / (b["mean_ms"] / 1e3))


def test_a_configuration_with_fewer_runs_than_rounds_skips_the_last_rounds():
    timer = Timer({"runtime": "torch", "device": "cpu", "dtype": "float32", "batch_size": 1, "threads": 1,
                   "image_size": 8}, lambda: None, runs=2)
    (entry,) = run_in_rounds([timer], rounds=3, warmup=0)
    assert len(entry["samples_ms"]) == 2 and len(entry["round_p50_ms"]) == 2
    with pytest.raises(ValueError, match="rounds"):
        run_in_rounds([timer], rounds=0, warmup=0)


def test_torch_call_runs_in_inference_mode_and_bfloat16_under_autocast():
    model = torch.nn.Linear(4, 2)
    x = torch.randn(3, 4)
    assert torch_call(model, x, "float32")().dtype == torch.float32
    out = torch_call(model, x, "bfloat16")()
    assert out.dtype == torch.bfloat16 and out.is_inference()
