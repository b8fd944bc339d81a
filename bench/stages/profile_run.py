"""The profile stage: parameters, FLOPs, latency, memory, resolution sweep and roofline of one model.

Profiling reads only a checkpoint, never the dataset, so ``medbench profile
--from-checkpoints`` on a second machine adds that machine's hardware column
without retraining: results land under that machine's id and the site merges them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from bench.core import env
from bench.core.config import ProfileConfig, SuiteConfig
from bench.results.records import RunPaths, display_path, error_record, fingerprint, is_done, model_info, payload
from bench.results.store import exclusive_lock, load_result, result_path, write_result
from bench.stages.rounds import Timer
from bench.stages.timing import strict_fp32

log = logging.getLogger(__name__)

MACHINE_DTYPES = ("float32", "bfloat16")


def devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def dtypes_for(device: str, wanted: tuple[str, ...]) -> list[str]:
    """bf16 on a GPU, and on a CPU with native bf16 matmul instructions (AVX512-BF16, AMX-BF16):
    elsewhere the CPU emulates it, which says nothing about deployment speed."""
    return [d for d in wanted if device == "cuda" or d == "float32" or env.cpu_has_bf16()]


def first_grid_tokens(model: torch.nn.Module, image_size: int, in_chans: int) -> int:
    """Positions in the first token grid: the output of the model's first convolution (patch embed or stem)."""
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    shape: list[int] = []
    handle = first.register_forward_hook(lambda _m, _i, out: shape.extend(out.shape[-2:]))
    try:
        with torch.inference_mode():
            device = next(model.parameters()).device
            model.eval()(torch.zeros(1, in_chans, image_size, image_size, device=device))
    finally:
        handle.remove()
    return shape[0] * shape[1]


def ensure_machine_record(paths: RunPaths, force: bool = False) -> Path:
    """Measure this machine's matmul peak per device and dtype once, and store it."""
    from bench.stages.profile import matmul_peak_gflops

    machine_id = env.machine_info()["id"]
    out = result_path(paths.results, machine_id, "hardware", "machine", None, None)
    config = {"dtypes": {dev: dtypes_for(dev, MACHINE_DTYPES) for dev in devices()}, "tf32": False,
              "cpu_isa": env.cpu_isa(), "method": "best of timed square matmuls (n 2048 CPU, 8192 GPU), 2 n^3 FLOP"}
    config["fingerprint"] = fingerprint(config)
    with exclusive_lock(paths.lock_for(out)):
        if not force and is_done(out, config["fingerprint"]):
            return out
        strict_fp32()
        measured = {f"{dev}:{dt}": matmul_peak_gflops(dev, dt, samples=True)
                    for dev, dts in config["dtypes"].items() for dt in dts}
        peaks = {key: round(peak, 2) for key, (peak, _) in measured.items()}
        log.info("matmul peak on %s: %s GFLOP/s", machine_id, peaks)
        write_result(out, payload("machine", "hardware", None, None, config, {
            "matmul_peak_gflops_per_s": peaks, "cpu_isa": config["cpu_isa"],
            "matmul_samples_gflops_per_s": {key: [round(x, 2) for x in raw] for key, (_, raw) in measured.items()}}))
    return out


def cpu_threads(cfg: ProfileConfig) -> tuple[int, ...]:
    """The CPU thread counts to measure: the configured ones, else the process's own."""
    return cfg.threads or (torch.get_num_threads(),)


def configurations(cfg: ProfileConfig, threads: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """(threads, batch size, timed runs) to measure: batch 1 at every thread count, larger
    batches (throughput) at the most threads only."""
    return [(count, batch, cfg.runs if batch == 1 else (cfg.throughput_runs or cfg.runs))
            for count in threads for batch in cfg.batch_sizes if batch == 1 or count == max(threads)]


def gpu_latencies(model: torch.nn.Module, device: str, cfg: ProfileConfig, size: int, chans: int
                  ) -> list[dict[str, Any]]:
    """PyTorch latency entries on a GPU: every dtype and batch size, one after the other (CUDA events)."""
    from bench.stages.profile import measure_latency

    return [measure_latency(model, batch_size=batch, image_size=size, in_chans=chans, device=device, dtype=dtype,
                            warmup=cfg.warmup, runs=runs)
            for dtype in dtypes_for(device, cfg.dtypes) for _, batch, runs in configurations(cfg, (1,))]


def torch_cpu_timers(model: torch.nn.Module, cfg: ProfileConfig, size: int, chans: int) -> list[Timer]:
    """PyTorch on the CPU: a timer per dtype, thread count and batch size (``configurations``)."""
    from bench.stages.profile import example_input
    from bench.stages.rounds import torch_call

    timers = []
    for count, batch, runs in configurations(cfg, cpu_threads(cfg)):
        x = example_input(batch, chans, size)
        for dtype in dtypes_for("cpu", cfg.dtypes):
            timers.append(Timer({"runtime": "torch", "device": "cpu", "dtype": dtype, "batch_size": batch,
                                 "threads": count, "image_size": size},
                                torch_call(model, x, dtype), runs, prepare=lambda n=count: torch.set_num_threads(n)))
    return timers


def onednn_cpu_timers(model: torch.nn.Module, cfg: ProfileConfig, size: int, chans: int
                      ) -> tuple[list[Timer], dict[str, Any]]:
    """PyTorch float32 through oneDNN with weights packed once (``bench.models.onednn_packed``):
    a timer per thread count and batch size, each on a copy packed for its input shape under its
    thread count (oneDNN picks a convolution's weight layout for both)."""
    from bench.models.onednn_packed import packed_copy
    from bench.stages.profile import example_input
    from bench.stages.rounds import torch_call

    timers, infos = [], []
    before = torch.get_num_threads()
    try:
        for count, batch, runs in configurations(cfg, cpu_threads(cfg)):
            x = example_input(batch, chans, size)
            torch.set_num_threads(count)
            packed, info = packed_copy(model, x)
            infos.append(info)
            timers.append(Timer({"runtime": "torch_onednn", "device": "cpu", "dtype": "float32", "batch_size": batch,
                                 "threads": count, "image_size": size},
                                torch_call(packed, x, "float32"), runs, prepare=lambda n=count: torch.set_num_threads(n)))
    finally:
        torch.set_num_threads(before)
    worst = max(infos, key=lambda i: i["max_abs_logit_diff_vs_eager"])
    return timers, {"method": "eval copy with batch norm folded into convolutions (where torch.fx traces the model) "
                              "and linear and convolution weights packed once for oneDNN's float32 kernels, "
                              "one copy per batch size and thread count", **worst}


def profile_metrics(suite: SuiteConfig, name: str, num_classes: int, checkpoint: Path | None,
                    peaks: dict[str, float]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model info, metrics) of one model on this machine."""
    from bench.models import create_model
    from bench.models.flops import count_flops
    from bench.stages.profile import resolution_sweep, roofline, sweep_exponents
    from bench.stages.profile_ort import onnxruntime_timers
    from bench.stages.rounds import run_in_rounds
    from bench.stages.checkpoint import load_checkpoint

    cfg, size, chans = suite.profile, suite.data.image_size, suite.data.in_chans

    def build(image_size: int) -> torch.nn.Module:
        return create_model(name, suite.scale, num_classes=num_classes, in_chans=chans, image_size=image_size).eval()

    def gmacs_at(model: torch.nn.Module, image_size: int) -> float:
        return count_flops(model, (1, chans, image_size, image_size)).gmacs

    model = build(size)
    if checkpoint is not None:
        ckpt = load_checkpoint(checkpoint)
        model.load_state_dict(ckpt["best_state"] or ckpt["model"])
    flops = count_flops(model, (1, chans, size, size))
    strict_fp32()
    latency, runtimes = [], {}
    for dev in devices():
        dcfg = cfg.on(dev)
        model.to(dev)
        if dev != "cpu":
            latency += gpu_latencies(model, dev, dcfg, size, chans)
            continue
        # every CPU configuration, PyTorch and ONNX Runtime alike, timed in interleaved rounds
        timers = torch_cpu_timers(model, dcfg, size, chans)
        if "torch_onednn" in dcfg.runtimes:
            onednn_timers, runtimes["torch_onednn"] = onednn_cpu_timers(model, dcfg, size, chans)
            timers += onednn_timers
        if "onnxruntime" in dcfg.runtimes:
            ort_timers, runtimes["onnxruntime"] = onnxruntime_timers(model, image_size=size, in_chans=chans,
                                                                     configurations=configurations(dcfg, cpu_threads(dcfg)))
            timers += ort_timers
        before = torch.get_num_threads()
        try:
            latency += run_in_rounds(timers, dcfg.rounds, dcfg.warmup)
        finally:
            torch.set_num_threads(before)
    model.to("cpu")
    sweep_cfg = cfg.on(devices()[-1])
    sweep = resolution_sweep(build, sweep_cfg.resolutions, tokens_for=lambda m, r: first_grid_tokens(m, r, chans),
                             count_gmacs=gmacs_at, device=devices()[-1], dtype="float32", in_chans=chans,
                             batch_size=1, warmup=sweep_cfg.warmup, runs=sweep_cfg.sweep_runs)
    torch_fp32 = [e for e in latency if e["dtype"] == "float32" and e.get("runtime", "torch") == "torch"]
    throughput = max(torch_fp32, key=lambda e: (e["device"] != "cpu", e["batch_size"], e["threads"]))
    peak = peaks.get(f"{throughput['device']}:float32")
    gmacs = round(flops.gmacs, 6)
    metrics = {
        "params": sum(p.numel() for p in model.parameters()),
        "gmacs": gmacs, "gflops": round(flops.gflops, 6),
        "flop_counters": {"torch_gmacs": round(flops.torch_gmacs, 6), "fvcore_gmacs": round(flops.fvcore_gmacs, 6),
                          "rel_diff": round(flops.rel_diff, 6)},
        "latency": latency,
        "resolution_sweep": sweep,
        "resolution_exponents": sweep_exponents(sweep),
        "roofline": roofline(flops.gmacs, throughput, peak) if peak else None,
        **({"runtimes": runtimes} if runtimes else {}),
    }
    return model_info(name, suite.scale, model, size, chans, num_classes, gmacs), metrics


def profile_one(suite: SuiteConfig, name: str, num_classes: int, paths: RunPaths,
                checkpoint: Path | None = None, force: bool = False) -> Path:
    """Profile one model on this machine and write ``profile__<model>.json`` under its id."""
    out = result_path(paths.results, env.machine_info()["id"], suite.name, "profile", name, None)
    config = {**suite.to_dict()["profile"], "scale": suite.scale, "image_size": suite.data.image_size,
              "in_chans": suite.data.in_chans, "num_classes": num_classes, "tf32": False,
              "checkpoint": display_path(checkpoint) if checkpoint else None}
    config["fingerprint"] = fingerprint({k: v for k, v in config.items() if k != "checkpoint"})
    with exclusive_lock(paths.lock_for(out)):
        if not force and is_done(out, config["fingerprint"]):
            log.info("skip profile of %s: %s exists", name, out)
            return out
        peaks = load_result(ensure_machine_record(paths))["metrics"]["matmul_peak_gflops_per_s"]
        info, metrics, error = None, {}, None
        try:
            info, metrics = profile_metrics(suite, name, num_classes, checkpoint, peaks)
        except Exception as exc:  # noqa: BLE001 - recorded, not dropped
            error = error_record(exc, "profile")
        write_result(out, payload("profile", suite.name, info, None, config, metrics, error))
        log.info("wrote %s", out)
    return out


def profile_suite(suite: SuiteConfig, models: list[str], paths: RunPaths, *, seed: int, num_classes: int,
                  force: bool = False) -> list[Path]:
    """Profile each model with the checkpoint of ``seed`` when one exists (random weights otherwise)."""
    from bench.stages.checkpoint import load_checkpoint

    written = []
    for name in models:
        ckpt = paths.checkpoint(suite.name, name, seed)
        classes = len(load_checkpoint(ckpt)["class_names"]) if ckpt.exists() else num_classes
        written.append(profile_one(suite, name, classes, paths, checkpoint=ckpt if ckpt.exists() else None,
                                   force=force))
    return written


def profile_from_checkpoints(suite: SuiteConfig, checkpoint_dir: Path, paths: RunPaths,
                             force: bool = False) -> list[Path]:
    """Profile every model with a finished checkpoint of ``suite`` under ``checkpoint_dir`` (any depth)."""
    from bench.stages.checkpoint import load_checkpoint

    found: dict[str, tuple[Path, int]] = {}
    for ckpt_path in sorted(Path(checkpoint_dir).rglob("*.pt")):
        ckpt = load_checkpoint(ckpt_path)
        if ckpt["suite"] == suite.name and ckpt["finished"]:
            found.setdefault(ckpt["model_name"], (ckpt_path, len(ckpt["class_names"])))
    if not found:
        raise FileNotFoundError(f"{checkpoint_dir}: no finished checkpoints of suite {suite.name!r}")
    return [profile_one(suite, name, classes, paths, checkpoint=path, force=force)
            for name, (path, classes) in sorted(found.items())]
