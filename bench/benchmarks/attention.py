"""``medbench bench-attention``: how each attention module's cost grows with token count.

Every module in ``bench.models.attention.ATTENTION`` runs forward + backward at fixed
channels and heads on square token grids (N = g², default g = 16 … 128). A point is
skipped before it runs when the previous point, scaled by the module's expected growth,
would overrun the time or memory budget; out-of-memory errors are caught. The log-log
slope of time against N over the largest points that ran shows the empirical complexity.
Reference implementations (timm, ``linformer``, ``performer-pytorch``) are timed against
ours at the same shapes, interleaved (AB BA …) so that drift cancels.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from bench.benchmarks.attention_refs import MODULE_OPTIONS, REFERENCE_SETUP, REFERENCES
from bench.benchmarks.attention_refs import square_grid as _grid
from bench.core.config import DTYPES
from bench.stages.timing import (
    free_memory,
    is_out_of_memory,
    keep_freed_memory,
    summarize_ms,
    synchronize,
    time_runs,
    track_peak_memory,
    warn_if_cpu_busy,
)

log = logging.getLogger(__name__)

DEFAULT_TOKENS = (256, 1024, 4096, 16384)
REFERENCE_TOKENS = (1024, 4096)
REFERENCE_TOLERANCE = 1.10  # ours / reference, forward + backward
FIT_POINTS = 3  # the slope is fitted over this many of the largest token counts that ran

# Expected exponent of time (and, conservatively, memory) in N, used to project the next point.
GROWTH = {"softmax": 2.0}
FLASH_MODULES = ("softmax",)  # global attention through SDPA, no mask: FlashAttention applies

Step = Callable[[], None]


def default_memory_budget_mb(device: str = "cpu") -> float:
    """Half of the memory free now: the projected peak of a point must stay under it."""
    if torch.device(device).type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free / 2**20 / 2
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024 / 2
    except OSError:
        pass
    return 4096.0


def fit_loglog_slope(tokens: Sequence[int], times_ms: Sequence[float], points: int = FIT_POINTS) -> dict[str, Any] | None:
    """Least-squares slope of log(time) against log(N) over the ``points`` largest N; None with < 2."""
    pairs = sorted(zip(tokens, times_ms))[-points:]
    if len(pairs) < 2:
        return None
    n, t = np.array(pairs, dtype=np.float64).T
    slope = np.polyfit(np.log(n), np.log(t), 1)[0]
    return {"slope": float(slope), "fit_tokens": [int(v) for v in n]}


def _train_step(fn: Callable[[torch.Tensor], torch.Tensor], module: nn.Module, x: torch.Tensor,
                grad: torch.Tensor, dtype: str = "float32") -> Step:
    """One forward (under bf16 autocast for ``dtype="bfloat16"``) + backward; gradients are
    dropped each time so that none accumulate."""

    def step() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
            out = fn(x)
        out.backward(grad.to(out.dtype))

    return step


def flash_only(name: str, device: str, dtype: str) -> contextlib.AbstractContextManager:
    """Global softmax attention on a GPU in bf16 runs through SDPA's flash kernel alone, so its
    curve is FlashAttention's (a point flash cannot run fails instead of falling back)."""
    if name in FLASH_MODULES and torch.device(device).type == "cuda" and dtype == "bfloat16":
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel(SDPBackend.FLASH_ATTENTION)
    return contextlib.nullcontext()


def _inputs(batch_size: int, tokens: int, channels: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, tokens, channels, generator=generator).to(device).requires_grad_()
    grad = torch.randn(batch_size, tokens, channels, generator=generator).to(device)
    return x, grad


def _build_ours(registry: Any, name: str, channels: int, heads: int, grid: tuple[int, int], device: str) -> nn.Module:
    torch.manual_seed(0)
    cls = registry.get(name)
    return cls(channels, heads, grid_size=grid, qkv_bias=True, **MODULE_OPTIONS.get(name, {})).to(device).train()


def _measure_point(step: Step, device: str, *, warmup: int, runs: int, min_runs: int,
                   time_budget_s: float) -> tuple[list[float], float | None]:
    """Time ``step``: the first warm-up call sizes how many runs fit in the budget."""
    start = time.perf_counter()
    step()
    synchronize(device)
    first_s = time.perf_counter() - start
    fit = int(time_budget_s / max(first_s, 1e-6))
    timed = min(max(fit - warmup, min_runs), runs)
    for _ in range(min(max(fit - timed, 1), warmup) - 1):
        step()
    synchronize(device)
    with track_peak_memory(device) as peak:
        samples = time_runs(step, timed, device)
    return samples, peak.mb


def _run_point(registry: Any, name: str, tokens: int, *, channels: int, heads: int, batch_size: int, device: str,
               dtype: str = "float32", **timing: Any) -> dict[str, Any]:
    """One ``modules`` entry that ran: median/mean/std of forward + backward, and peak memory."""
    grid = _grid(tokens)
    module = _build_ours(registry, name, channels, heads, grid, device)
    x, grad = _inputs(batch_size, tokens, channels, device)
    with flash_only(name, device, dtype):
        samples, peak_mb = _measure_point(_train_step(lambda t: module(t, grid), module, x, grad, dtype), device,
                                          **timing)
    stats = summarize_ms(samples)
    return {
        "tokens": tokens,
        "status": "ok",
        "time_ms": {"p50": stats["p50_ms"], "mean": stats["mean_ms"], "std": stats["std_ms"]},
        "peak_memory_mb": None if peak_mb is None else round(peak_mb, 2),
    }


def _scale_module(registry: Any, name: str, tokens: Sequence[int], bar: tqdm, *, time_budget_s: float,
                  memory_budget_mb: float, device: str, **options: Any) -> list[dict[str, Any]]:
    """All token counts for one module; once a point times out or runs out of memory, larger ones are skipped."""
    if torch.device(device).type == "cpu":
        warn_if_cpu_busy()
    growth = GROWTH.get(name, 1.0)
    entries: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    skip: str | None = None  # once set, this and every larger N is recorded without running
    reason = ""
    for n in tokens:
        bar.set_postfix_str(f"{name} N={n}")
        if previous is not None and skip is None:
            scale = (n / previous["tokens"]) ** growth
            projected_s = previous["time_ms"]["p50"] / 1e3 * scale * (1 + options["min_runs"])
            projected_mb = (previous["peak_memory_mb"] or 0.0) * scale
            if projected_s > time_budget_s:
                skip, reason = "timeout", f"projected {projected_s:.0f} s at N={n} > budget {time_budget_s:g} s"
            elif projected_mb > memory_budget_mb:
                skip, reason = "oom", f"projected {projected_mb:.0f} MB at N={n} > budget {memory_budget_mb:.0f} MB"
            if skip is not None:
                log.info("%s: %s; not run at this or larger N", name, reason)
        entry: dict[str, Any] = {"tokens": n, "status": skip, "time_ms": None, "peak_memory_mb": None}
        if skip is not None:
            entry["message"] = reason
        else:
            try:
                entry = previous = _run_point(registry, name, n, device=device, time_budget_s=time_budget_s,
                                              **options)
            except Exception as exc:  # noqa: BLE001 - one failing point must not end the benchmark
                if is_out_of_memory(exc):
                    skip, reason = "oom", f"ran out of memory at N={n}"
                    entry["status"], entry["message"] = skip, reason
                    log.warning("%s: %s; not run at larger N", name, reason)
                else:
                    entry["status"], entry["message"] = "error", f"{type(exc).__name__}: {exc}"
                    log.warning("%s N=%d failed: %s", name, n, entry["message"])
            finally:
                free_memory(device, collect=False)  # a step leaves no reference cycles behind
        entries.append(entry)
        bar.update()
    return entries


def interleaved_ms(steps: Sequence[Step], runs: int, warmup: int, device: str) -> list[list[float]]:
    """Time several steps alternately, one call each per round, so that drift hits all alike.

    The order flips every round (AB BA AB …) so that neither always runs second, on caches
    the other has just warmed.
    """
    for step in steps:
        for _ in range(warmup):
            step()
    samples: list[list[float]] = [[] for _ in steps]
    order = list(range(len(steps)))
    for round_ in range(runs):
        for i in order if round_ % 2 == 0 else order[::-1]:
            samples[i].extend(time_runs(steps[i], 1, device))
    return samples


def _compare_reference(registry: Any, name: str, tokens: int, *, channels: int, heads: int, batch_size: int,
                       device: str, warmup: int, runs: int, min_runs: int, time_budget_s: float,
                       dtype: str = "float32") -> dict[str, Any]:
    label, build = REFERENCES[name]
    grid = _grid(tokens)
    ours = _build_ours(registry, name, channels, heads, grid, device)
    torch.manual_seed(0)
    ref = build(channels, heads, tokens).to(device).train()
    x, grad = _inputs(batch_size, tokens, channels, device)
    steps = [_train_step(lambda t: ours(t, grid), ours, x, grad, dtype), _train_step(ref, ref, x, grad, dtype)]
    # one untimed call of each sizes the number of rounds that fit in the budget
    pair_s = sum(sum(time_runs(step, 1, device)) for step in steps) / 1e3
    runs = min(max(int(time_budget_s / max(pair_s, 1e-6)) - warmup, min_runs), runs)
    ours_ms, ref_ms = (float(np.median(s)) for s in interleaved_ms(steps, runs, warmup, device))
    ratio = ours_ms / ref_ms
    if ratio > REFERENCE_TOLERANCE:
        log.warning("%s at N=%d is %.2fx slower than %s", name, tokens, ratio, label)
    return {"module": name, "reference": label, "tokens": tokens, "ours_ms": ours_ms, "reference_ms": ref_ms,
            "ratio": ratio}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _default_registry() -> Any:
    from bench.models.attention import ATTENTION

    return ATTENTION


def run_attention_bench(
    names: list[str] | None = None,
    channels: int = 64,
    heads: int = 2,
    tokens: Sequence[int] = DEFAULT_TOKENS,
    batch_size: int = 1,
    time_budget_s: float = 30.0,
    memory_budget_mb: float | None = None,
    references: bool = True,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    warmup: int = 3,
    runs: int = 15,
    min_runs: int = 3,
    reference_tokens: Sequence[int] = REFERENCE_TOKENS,
    registry: Any = None,
) -> dict[str, Any]:
    """Forward + backward time and peak memory of each attention module against token count.

    Returns the ``attention`` metrics layout of the result schema, plus ``settings`` (module
    options such as Linformer's k, budgets, runs), which belongs in the result's config too.
    ``time_budget_s`` bounds one point or one reference pair, warm-up included;
    ``memory_budget_mb`` defaults to half the memory free now. A point projected over either
    budget is not run and is recorded as "timeout" or "oom" with a ``message``, as is a
    point that ran out of memory; larger N of that module are then skipped. ``registry``
    defaults to ``bench.models.attention.ATTENTION``. ``dtype="bfloat16"`` runs every forward
    under autocast; on a GPU, global softmax then runs through the flash kernel alone.
    """
    registry = registry if registry is not None else _default_registry()
    names = list(names) if names else registry.names()
    for name in names:
        registry.get(name)  # unknown names fail now, listing the valid ones
    tokens = sorted(tokens)
    for n in tokens:
        _grid(n)
    if memory_budget_mb is None:
        memory_budget_mb = default_memory_budget_mb(device)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    common = {"channels": channels, "heads": heads, "batch_size": batch_size, "device": device, "dtype": dtype}
    allocator_cache = keep_freed_memory() if torch.device(device).type == "cpu" else None
    load_at_start = _rounded(warn_if_cpu_busy())

    modules: dict[str, list[dict[str, Any]]] = {}
    with tqdm(total=len(names) * len(tokens), desc="attention scaling", unit="point", disable=None) as bar:
        for name in names:
            modules[name] = _scale_module(registry, name, tokens, bar, time_budget_s=time_budget_s,
                                          memory_budget_mb=memory_budget_mb, warmup=warmup, runs=runs,
                                          min_runs=min_runs, **common)
    fits = {}
    for name, entries in modules.items():
        ok = [e for e in entries if e["status"] == "ok"]
        fit = fit_loglog_slope([e["tokens"] for e in ok], [e["time_ms"]["p50"] for e in ok])
        if fit is not None:
            fits[name] = fit
            log.info("%s: time ~ N^%.2f over N = %s", name, fit["slope"], fit["fit_tokens"])

    reference = []
    if references:
        pairs = [(name, n) for name in names if name in REFERENCES for n in reference_tokens]
        for name, n in tqdm(pairs, desc="reference implementations", unit="pair", disable=None):
            try:
                reference.append(_compare_reference(registry, name, n, warmup=warmup, runs=runs, min_runs=min_runs,
                                                    time_budget_s=time_budget_s, **common))
            except Exception as exc:  # noqa: BLE001 - a missing or failing reference is reported, not fatal
                log.warning("reference for %s at N=%d failed: %s: %s", name, n, type(exc).__name__, exc)
            finally:
                free_memory(device, collect=False)

    return {
        "channels": channels,
        "heads": heads,
        "batch_size": batch_size,
        "device": torch.device(device).type,
        "dtype": dtype,
        "threads": torch.get_num_threads(),
        # competing processes inflate CPU timings many-fold; this says whether they were around
        "load_avg_1m": {"start": load_at_start, "end": _rounded(warn_if_cpu_busy())},
        "modules": modules,
        "fits": fits,
        "reference": reference,
        "settings": {
            "module_options": {name: MODULE_OPTIONS.get(name, {}) for name in names},
            "tokens": list(tokens),
            "time_budget_s": time_budget_s,
            "memory_budget_mb": round(memory_budget_mb, 1),
            "warmup": warmup,
            "runs": runs,
            "min_runs": min_runs,
            "fit_points": FIT_POINTS,
            "glibc_keeps_freed_buffers": allocator_cache,
            "reference_tokens": list(reference_tokens),
            "flash_only": [n for n in names if n in FLASH_MODULES]
            if torch.device(device).type == "cuda" and dtype == "bfloat16" else [],
            "reference_setup": {name: REFERENCE_SETUP[name] for name in names if name in REFERENCES}
            if references else {},
        },
    }
