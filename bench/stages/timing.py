"""Timing and memory primitives shared by the profiler and the attention benchmark.

Each run is timed on its own (``perf_counter`` on CPU, CUDA events on GPU) so that the raw
samples are kept and percentiles mean something. Peak memory is the CUDA allocator's
high-water mark on GPU and the growth of the process's resident-set high-water mark on CPU.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
import logging
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from bench.core.env import cpu_cores

log = logging.getLogger(__name__)

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def summarize_ms(samples_ms: Sequence[float]) -> dict[str, float]:
    """Percentiles (linear interpolation), mean, sample std and coefficient of variation."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"summarize_ms needs a non-empty 1-D list of samples, got shape {a.shape}")
    p50, p90, p99 = np.percentile(a, [50, 90, 99], method="linear")
    mean = float(a.mean())
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    return {
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "mean_ms": mean,
        "std_ms": std,
        "cv": std / mean if mean > 0 else 0.0,
    }


def synchronize(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_runs(fn: Callable[[], Any], runs: int, device: str | torch.device = "cpu") -> list[float]:
    """Milliseconds of each of ``runs`` calls of ``fn``, timed one by one."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    if torch.device(device).type == "cuda":
        return _time_runs_cuda(fn, runs, device)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


def _time_runs_cuda(fn: Callable[[], Any], runs: int, device: str | torch.device) -> list[float]:
    # Events are recorded on the stream, so host-side launch overhead does not hide GPU time.
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    torch.cuda.synchronize(device)
    for start, end in zip(starts, ends):
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize(device)
    return [start.elapsed_time(end) for start, end in zip(starts, ends)]


_last_busy_warning = -math.inf


def warn_if_cpu_busy(min_interval_s: float = 60.0) -> float | None:
    """Warn (at most once a minute) when the 1-minute load average exceeds the cores + 1.

    Other processes competing for the cores inflate CPU latency far beyond their share:
    every OpenMP barrier waits for a descheduled thread. Returns the load average.
    """
    global _last_busy_warning
    try:
        load = os.getloadavg()[0]
        cores = cpu_cores()
    except OSError:
        return None
    now = time.monotonic()
    if load > cores + 1 and now - _last_busy_warning > min_interval_s:
        _last_busy_warning = now
        log.warning("CPU busy: load average %.1f on %d cores; other processes will inflate CPU timings", load, cores)
    return load


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA OOM and for the CPU allocator's "can't allocate memory"."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def strict_fp32() -> None:
    """float32 means float32: no TF32 tensor cores for matmuls or convolutions on GPU,
    which would otherwise speed up convolutions (the CNN) but not matmuls by default."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def free_memory(device: str | torch.device = "cpu", *, collect: bool = True) -> None:
    """Return cached memory, so that the next measurement starts from a clean baseline.

    ``collect=False`` skips the garbage collector (~0.3 s once timm is imported) where no
    reference cycles can hold tensors.
    """
    if collect:
        gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
    else:
        _malloc_trim()


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim  # noqa: B018 - glibc only; probe it once
        return libc
    except (OSError, AttributeError, TypeError):
        return None


def _malloc_trim() -> None:
    # glibc keeps freed medium-sized blocks mapped; without this, memory reused from an
    # earlier run never shows up as growth and the measured peak reads ~0.
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def keep_freed_memory(threshold_bytes: int = 1 << 30) -> bool:
    """Make glibc keep freed buffers below ``threshold_bytes`` for reuse (process-wide).

    By default glibc serves every buffer of 32 MB or more with a fresh mmap and unmaps it
    at free, so each timed step pays page faults to zero that memory again: at N = 16384
    this doubles a linear attention's step time and bends its scaling curve. Caching
    allocators (PyTorch's CUDA allocator, jemalloc, tcmalloc) do not pay it; with this set,
    CPU timings measure the algorithm rather than the allocator. Returns whether glibc
    accepted both settings.
    """
    libc = _libc()
    if libc is None:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, threshold_bytes)) and bool(libc.mallopt(m_trim_threshold, 2 * threshold_bytes))


def _status_mb(*keys: str) -> dict[str, float] | None:
    try:
        text = _STATUS.read_text()
    except OSError:
        return None
    values = {}
    for key in keys:
        match = re.search(rf"^{key}:\s+(\d+)\s+kB", text, flags=re.M)
        if match is None:
            return None
        values[key] = int(match.group(1)) / 1024
    return values


def _reset_rss_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")  # "5" resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


@dataclass
class PeakMemory:
    """Filled in when the :func:`track_peak_memory` block exits; ``mb`` is None if unavailable."""

    mb: float | None = None
    method: str | None = None


@contextlib.contextmanager
def track_peak_memory(device: str | torch.device = "cpu") -> Iterator[PeakMemory]:
    """Peak memory of the enclosed block.

    CUDA: ``torch.cuda.max_memory_allocated`` after resetting the peak (so weights and
    inputs already on the device count). CPU: growth of the resident-set high-water mark
    over the RSS at entry (weights and inputs already resident do not count); falls back to
    the RSS difference at exit when the high-water mark cannot be reset.
    """
    result = PeakMemory()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        yield result
        torch.cuda.synchronize(device)
        result.mb, result.method = torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
        return
    _malloc_trim()
    hwm_reset = _reset_rss_peak()
    before = _status_mb("VmRSS")
    yield result
    after = _status_mb("VmRSS", "VmHWM")
    if before is None or after is None:
        return
    if hwm_reset:
        result.mb, result.method = max(after["VmHWM"] - before["VmRSS"], 0.0), "rss_hwm_growth"
    else:
        result.mb, result.method = max(after["VmRSS"] - before["VmRSS"], 0.0), "rss_growth"
