"""Latency, memory, resolution scaling and roofline of one model (DESIGN.md §5).

Latency follows one recipe everywhere: eval mode under ``torch.inference_mode``, warm-up
runs first, then every run timed on its own (``perf_counter`` on CPU, CUDA events on
GPU), raw samples kept, percentiles reported. ``compare_with_torch_timer`` checks that
recipe against ``torch.utils.benchmark`` in the same process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from bench.core.config import DTYPES
from bench.results.store import atomic_write_text
from bench.stages.timing import (
    free_memory,
    is_out_of_memory,
    strict_fp32,
    summarize_ms,
    synchronize,
    time_runs,
    track_peak_memory,
    warn_if_cpu_busy,
)

__all__ = [
    "LATENCY_CHECK_TOLERANCE",
    "check_latency_main",
    "compare_with_torch_timer",
    "matmul_peak_gflops",
    "measure_latency",
    "resolution_sweep",
    "roofline",
    "summarize_ms",
    "sweep_exponents",
]

log = logging.getLogger(__name__)

LATENCY_CHECK_TOLERANCE = 0.10  # |ours - torch.utils.benchmark| / torch.utils.benchmark
_TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")


def example_input(batch_size: int, in_chans: int, image_size: int, device: str | torch.device = "cpu",
                  seed: int = 0) -> torch.Tensor:
    """The seeded standard-normal images every latency is measured on."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch_size, in_chans, image_size, image_size, generator=generator).to(device)


def autocast_for(device: torch.device, dtype: str) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on ``device``, or nothing for float32."""
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_TORCH_DTYPES[dtype])


def measure_latency(
    model: nn.Module,
    *,
    batch_size: int,
    image_size: int,
    in_chans: int = 1,
    device: str = "cpu",
    dtype: str = "float32",
    warmup: int = 10,
    runs: int = 30,
) -> dict[str, Any]:
    """Forward latency of ``model`` on random input: one ``latency`` entry of the result schema.

    The model is moved to ``device``; its train/eval mode is restored afterwards.
    ``bfloat16`` runs under ``torch.autocast``. Peak memory covers the timed runs only.
    """
    _check_dtype(dtype)
    if batch_size < 1 or image_size < 1 or runs < 1 or warmup < 0:
        raise ValueError(f"need batch_size, image_size, runs >= 1 and warmup >= 0, got "
                         f"{batch_size=}, {image_size=}, {runs=}, {warmup=}")
    dev = torch.device(device)
    if dev.type == "cpu":
        warn_if_cpu_busy()
    model = model.to(dev)
    x = example_input(batch_size, in_chans, image_size, dev)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast_for(dev, dtype):
            for _ in range(warmup):
                model(x)
            synchronize(dev)
            with track_peak_memory(dev) as peak:
                samples = time_runs(lambda: model(x), runs, dev)
    finally:
        model.train(was_training)
    stats = summarize_ms(samples)
    return {
        "runtime": "torch",
        "device": dev.type,
        "dtype": dtype,
        "batch_size": batch_size,
        "threads": torch.get_num_threads(),
        "image_size": image_size,
        "samples_ms": [round(s, 4) for s in samples],
        **stats,
        "throughput_images_per_s": batch_size / (stats["mean_ms"] / 1e3),
        "peak_memory_mb": None if peak.mb is None else round(peak.mb, 2),
    }


def resolution_sweep(
    build: Callable[[int], nn.Module],
    resolutions: Sequence[int],
    *,
    tokens_for: Callable[[nn.Module, int], int],
    count_gmacs: Callable[[nn.Module, int], float] | None,
    device: str = "cpu",
    dtype: str = "float32",
    batch_size: int = 1,
    in_chans: int = 1,
    warmup: int = 3,
    runs: int = 10,
) -> list[dict[str, Any]]:
    """Latency against input size; the model is rebuilt per size (position embeddings and
    Linformer projections depend on it).

    ``tokens_for(model, image_size)`` gives the token count the size makes and
    ``count_gmacs(model, image_size)`` the GMACs per image. A size that runs out of
    memory is recorded with ``status: "oom"`` and the sweep goes on.
    """
    entries = []
    for image_size in tqdm(resolutions, desc="resolution sweep", unit="size", disable=None):
        entry: dict[str, Any] = {
            "image_size": image_size, "tokens": None, "device": torch.device(device).type,
            "dtype": dtype, "batch_size": batch_size, "status": "ok",
            "p50_ms": None, "mean_ms": None, "std_ms": None, "gmacs": None,
        }
        model = None
        try:
            model = build(image_size)
            entry["tokens"] = int(tokens_for(model, image_size))
            if count_gmacs is not None:
                entry["gmacs"] = float(count_gmacs(model, image_size))
            latency = measure_latency(model, batch_size=batch_size, image_size=image_size, in_chans=in_chans,
                                      device=device, dtype=dtype, warmup=warmup, runs=runs)
            entry.update({k: latency[k] for k in ("p50_ms", "mean_ms", "std_ms")})
        except (RuntimeError, MemoryError) as exc:
            if not is_out_of_memory(exc):
                raise
            log.warning("resolution %d px ran out of memory on %s; recorded as oom", image_size, device)
            entry["status"] = "oom"
        finally:
            del model
            free_memory(device)
        entries.append(entry)
    return entries


def sweep_exponents(sweep: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Least-squares slopes of log p50 latency against log side length and log tokens over the
    sweep's measured sizes (None with fewer than two): time ∝ side^a ∝ tokens^b."""
    import numpy as np

    ok = [e for e in sweep if e.get("status") == "ok" and e.get("p50_ms")]
    if len(ok) < 2:
        return None
    latency = np.log([e["p50_ms"] for e in ok])
    out: dict[str, Any] = {"points": len(ok), "sizes": [e["image_size"] for e in ok]}
    for key, field_ in (("vs_side", "image_size"), ("vs_tokens", "tokens")):
        xs = [e.get(field_) for e in ok]
        out[key] = (round(float(np.polyfit(np.log(xs), latency, 1)[0]), 4)
                    if all(xs) and len(set(xs)) > 1 else None)
    return out


def matmul_peak_gflops(device: str = "cpu", dtype: str = "float32", size: int | None = None,
                       seconds: float = 1.0, samples: bool = False) -> float | tuple[float, list[float]]:
    """Measured peak GFLOP/s of a square matmul: the best of repeated timed runs (with
    ``samples``, also every run's GFLOP/s).

    The default size (2048 on CPU, 8192 on GPU) is large enough to be compute-bound.
    """
    _check_dtype(dtype)
    dev = torch.device(device)
    n = size or (8192 if dev.type == "cuda" else 2048)
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=generator).to(dev, _TORCH_DTYPES[dtype]) for _ in range(2))
    out = torch.empty_like(a)
    torch.mm(a, b, out=out)  # warm-up: thread pool, cuBLAS handle, caches
    runs_ms, start = [], time.perf_counter()
    while len(runs_ms) < 3 or time.perf_counter() - start < seconds:
        runs_ms.append(time_runs(lambda: torch.mm(a, b, out=out), 1, dev)[0])
    rates = [2 * n**3 / (ms / 1e3) / 1e9 for ms in runs_ms]
    gflops = max(rates)
    log.info("matmul peak on %s/%s (n=%d, best of %d): %.1f GFLOP/s", dev.type, dtype, n, len(rates), gflops)
    return (gflops, rates) if samples else gflops


def roofline(achieved_gmacs_per_image: float, latency_entry: dict[str, Any], peak: float) -> dict[str, Any]:
    """Achieved GFLOP/s (2 × GMACs × batch / p50 latency) against the measured matmul peak."""
    batch_size = latency_entry["batch_size"]
    achieved = 2 * achieved_gmacs_per_image * batch_size / (latency_entry["p50_ms"] / 1e3)
    return {
        "device": latency_entry["device"],
        "dtype": latency_entry["dtype"],
        "batch_size": batch_size,
        "peak_gflops_per_s": peak,
        "achieved_gflops_per_s": achieved,
        "fraction_of_peak": achieved / peak if peak > 0 else None,
    }


def compare_with_torch_timer(model: nn.Module, batch_size: int = 1, image_size: int = 64, runs: int = 30, *,
                             in_chans: int = 1, warmup: int = 10, min_run_time: float = 3.0,
                             rounds: int = 3, device: str = "cpu", dtype: str = "float32") -> dict[str, Any]:
    """Our p50 against the median of ``torch.utils.benchmark.Timer.blocked_autorange``.

    Both run on ``device`` in this process, on the same input, in ``dtype`` (bfloat16 under
    autocast), with the same thread count, in ``rounds`` alternating turns (ours, Timer,
    ours, ...) so that drift affects both alike. On a GPU the Timer synchronises CUDA itself.
    """
    import torch.utils.benchmark as benchmark

    _check_dtype(dtype)
    dev = torch.device(device)
    model = model.to(dev)
    x = example_input(batch_size, in_chans, image_size, dev)

    def forward() -> None:
        with torch.inference_mode(), autocast_for(dev, dtype):
            model(x)

    threads = torch.get_num_threads()
    # Timer defaults to one thread; match ours or the comparison is meaningless.
    timer = benchmark.Timer(stmt="forward()", globals={"forward": forward}, num_threads=threads)
    ours_ms: list[float] = []
    measurements = []
    was_training = model.training
    model.eval()
    try:
        for turn in range(rounds):
            entry = measure_latency(model, batch_size=batch_size, image_size=image_size, in_chans=in_chans,
                                    device=device, dtype=dtype, warmup=warmup if turn == 0 else 1,
                                    runs=max(1, runs // rounds))
            ours_ms += entry["samples_ms"]
            measurements.append(timer.blocked_autorange(min_run_time=min_run_time / rounds))
    finally:
        model.train(was_training)
    (reference,) = benchmark.Measurement.merge(measurements)
    ours = summarize_ms(ours_ms)
    reference_ms = reference.median * 1e3
    return {
        "runtime": "torch",
        "device": dev.type,
        "dtype": dtype,
        "batch_size": batch_size,
        "image_size": image_size,
        "threads": threads,
        "ours_p50_ms": ours["p50_ms"],
        "ours_cv": ours["cv"],
        "ours_runs": len(ours_ms),
        "torch_timer_median_ms": reference_ms,
        "torch_timer_iqr_ms": reference.iqr * 1e3,
        "torch_timer_blocks": len(reference.times),  # each block averages many calls
        "rel_diff": (ours["p50_ms"] - reference_ms) / reference_ms,
    }


def check_latency_main(models: list[str], scale: str, device: str = "cpu", dtype: str = "float32",
                       out: Path | None = None) -> list[dict[str, Any]]:
    """``medbench check-latency``: our latency recipe against torch.utils.benchmark, per model;
    the rows are also written to ``out`` as JSON when given."""
    from bench.models import create_model, default_image_size

    image_size = default_image_size(scale)
    if torch.device(device).type == "cuda":
        strict_fp32()  # float32 means float32: no TF32 in either measurement
    rows = []
    for name in tqdm(models, desc="check-latency", unit="model", disable=None):
        torch.manual_seed(0)
        model = create_model(name, scale)
        row = {"model": name, "scale": scale, **compare_with_torch_timer(model, batch_size=1, image_size=image_size,
                                                                          device=device, dtype=dtype)}
        row["within_tolerance"] = abs(row["rel_diff"]) <= LATENCY_CHECK_TOLERANCE
        rows.append(row)
        del model
        free_memory(device)
    header = f"{'model':<22} {'ours p50 ms':>12} {'torch ms':>10} {'rel diff':>9}  ok"
    lines = [header] + [
        f"{r['model']:<22} {r['ours_p50_ms']:>12.3f} {r['torch_timer_median_ms']:>10.3f} "
        f"{r['rel_diff']:>+9.1%}  {'yes' if r['within_tolerance'] else 'NO'}"
        for r in rows
    ]
    log.info("latency check (batch 1, %d px, %s %s, %d threads, tolerance %.0f%%):\n%s", image_size, device, dtype,
             torch.get_num_threads(), LATENCY_CHECK_TOLERANCE * 100, "\n".join(lines))
    if out is not None:
        atomic_write_text(Path(out), json.dumps(rows, indent=1) + "\n")
    for row in rows:
        if not row["within_tolerance"]:
            log.warning("%s: our p50 differs from torch.utils.benchmark by %+.1f%%", row["model"], row["rel_diff"] * 100)
    return rows
