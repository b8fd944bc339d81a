"""CPU latency of several configurations timed in interleaved rounds.

A shared or virtual CPU drifts: on the 2-core reference machine the same model's batch-1
latency moved by a fifth between minutes while each run of 30 samples had a CV of 2-4%.
Timed one after the other, two configurations (PyTorch against ONNX Runtime, 1 against 2
threads) would then differ by when they ran. So the profile times every configuration of a
model in ``rounds`` rounds, each round visiting every configuration for its share of the runs
(after one warm-up run; the full warm-up before the first round), as asv repeats its
benchmarks in rounds. Every sample is kept; each entry also records its p50 per round, whose
spread shows the drift that the within-round percentiles do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from bench.stages.profile import autocast_for
from bench.stages.timing import summarize_ms, time_runs, track_peak_memory, warn_if_cpu_busy


@dataclass
class Timer:
    """One configuration: what it records (``meta``: runtime, device, dtype, batch_size, threads,
    image_size), the call to time, its timed runs in all, and what to set before it runs."""

    meta: dict[str, Any]
    call: Callable[[], Any]
    runs: int
    prepare: Callable[[], None] = field(default=lambda: None)


def torch_call(model: torch.nn.Module, x: torch.Tensor, dtype: str) -> Callable[[], Any]:
    """One eval forward under ``torch.inference_mode`` (and bfloat16 autocast where asked)."""
    def call() -> Any:
        with torch.inference_mode(), autocast_for(x.device, dtype):
            return model(x)
    return call


def _share(runs: int, rounds: int, index: int) -> int:
    """Round ``index``'s share of ``runs`` (the first rounds take the remainder)."""
    return runs // rounds + (1 if index < runs % rounds else 0)


def run_in_rounds(timers: list[Timer], rounds: int, warmup: int) -> list[dict[str, Any]]:
    """A ``latency`` entry per timer, its samples gathered over ``rounds`` interleaved rounds."""
    if rounds < 1 or warmup < 0:
        raise ValueError(f"need rounds >= 1 and warmup >= 0, got {rounds=}, {warmup=}")
    warn_if_cpu_busy()
    samples: list[list[float]] = [[] for _ in timers]
    per_round: list[list[float]] = [[] for _ in timers]
    peaks: list[float | None] = [None for _ in timers]
    for index in range(rounds):
        for k, timer in enumerate(timers):
            count = _share(timer.runs, rounds, index)
            if count == 0:
                continue
            timer.prepare()
            with track_peak_memory("cpu") as peak:
                for _ in range(warmup if index == 0 else 1):
                    timer.call()
                taken = time_runs(timer.call, count, "cpu")
            samples[k] += taken
            per_round[k].append(round(summarize_ms(taken)["p50_ms"], 4))
            if peak.mb is not None:
                peaks[k] = max(peak.mb, peaks[k] or 0.0)
    entries = []
    for timer, taken, p50s, peak_mb in zip(timers, samples, per_round, peaks):
        stats = summarize_ms(taken)
        entries.append({
            **timer.meta, "samples_ms": [round(s, 4) for s in taken], **stats,
            "throughput_images_per_s": timer.meta["batch_size"] / (stats["mean_ms"] / 1e3),
            "peak_memory_mb": None if peak_mb is None else round(peak_mb, 2),
            "rounds": rounds, "round_p50_ms": p50s,
        })
    return entries
