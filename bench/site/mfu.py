"""Training MFU: the FLOP rate training achieved against the machine's measured matmul peak.

Achieved FLOP/s = 3 x forward FLOPs x training images/s, with forward FLOPs = 2 x GMACs per
image (a backward pass costs about two forward passes). The peak is the machine record's
for the device and the dtype training computed in: bfloat16 under autocast, else float32.
A CPU record's peak was measured with ``threads`` threads; runs that trained with fewer (two
one-thread runs side by side) are held to that share of it, since each had only its cores.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from bench.site.load import LoadedResult, reading
from bench.site.perf_context import TrainingMfu

MfuKey = tuple[str, str, str]  # (machine, suite, model)


def training_settings(payload: dict[str, Any]) -> tuple[str, str]:
    """(device, dtype) a train result computed in; results from before ``metrics.speed`` trained
    on the GPU when the machine had one, in bfloat16 there when ``amp_bf16`` was on."""
    device = "cuda" if payload["machine"].get("gpu") else "cpu"
    speed = payload["metrics"].get("speed")
    if isinstance(speed, dict):
        return speed.get("device", device), speed.get("autocast") or "float32"
    bf16 = device == "cuda" and (payload.get("config") or {}).get("train", {}).get("amp_bf16", False)
    return device, "bfloat16" if bf16 else "float32"


def _peak(peaks: dict[str, float], peak_threads: int | None, device: str, dtype: str,
          threads: int | None) -> float | None:
    peak = peaks.get(f"{device}:{dtype}")
    if peak is None or device != "cpu" or not peak_threads or not threads:
        return peak
    return peak * min(threads, peak_threads) / peak_threads


def training_mfu(train: list[LoadedResult], peaks: dict[str, dict[str, float]],
                 peak_threads: dict[str, int]) -> dict[MfuKey, TrainingMfu]:
    """One entry per (machine, suite, model) with successful runs that recorded their speed and GMACs."""
    groups: dict[tuple[MfuKey, str, str, int | None], list[dict[str, Any]]] = defaultdict(list)
    for r in train:
        if r.failed:
            continue
        with reading(r.path):
            p = r.payload
            if not p["model"].get("gmacs") or not p["metrics"].get("train_images_per_s"):
                continue
            device, dtype = training_settings(p)
            threads = p["machine"].get("threads") if device == "cpu" else None
            groups[((r.machine_id, p["suite"], p["model"]["name"]), device, dtype, threads)].append(p)
    rows: dict[MfuKey, TrainingMfu] = {}
    for (key, device, dtype, threads), payloads in sorted(groups.items(), key=lambda kv: str(kv[0])):
        images_per_s = statistics.fmean(p["metrics"]["train_images_per_s"] for p in payloads)
        achieved = 3 * 2 * payloads[0]["model"]["gmacs"] * images_per_s
        peak = _peak(peaks.get(key[0], {}), peak_threads.get(key[0]), device, dtype, threads)
        rows[key] = TrainingMfu(device=device, dtype=dtype, threads=threads, seeds=len(payloads),
                                images_per_s=images_per_s, achieved_gflops_per_s=achieved,
                                peak_gflops_per_s=peak, mfu=achieved / peak if peak else None)
    return rows
