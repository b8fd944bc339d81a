"""The benchmark commands of ``medbench``: attention scaling, latency check, trainer, training step,
site and readers."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bench.cli.args import _csv, _paths, _suite
from bench.core.paths import check_name

log = logging.getLogger("bench")


def cmd_bench_attention(args: argparse.Namespace) -> int:
    from bench.benchmarks.attention import run_attention_bench
    from bench.core import env
    from bench.results.records import payload
    from bench.results.store import result_path, write_result

    tokens = tuple(int(t) for t in _csv(args.tokens))
    metrics = run_attention_bench(_csv(args.modules) if args.modules else None, channels=args.channels,
                                  heads=args.heads, tokens=tokens, references=not args.no_references,
                                  device=_device(args.device), dtype=args.dtype)
    out = result_path(Path(args.results_dir) if args.results_dir else _paths(args).results,
                      env.machine_info()["id"], "attention", "attention", None, None)
    config = {"channels": args.channels, "heads": args.heads, "tokens": list(tokens), **metrics.get("settings", {})}
    write_result(out, payload("attention", "attention", None, None, config, metrics))
    for name, fit in sorted(metrics["fits"].items()):
        log.info("%-12s log-log slope %.2f over N=%s", name, fit["slope"], fit["fit_tokens"])
    for ref in metrics.get("reference", []):
        log.info("%-12s vs %-28s N=%-5d ours %.2f ms / ref %.2f ms = %.3f", ref["module"], ref["reference"],
                 ref["tokens"], ref["ours_ms"], ref["reference_ms"], ref["ratio"])
    log.info("wrote %s", out)
    return 0


def _device(name: str) -> str:
    """``auto``: the GPU when there is one."""
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cmd_check_latency(args: argparse.Namespace) -> int:
    from bench.stages.profile import check_latency_main

    check_latency_main(_csv(args.models), args.scale, device=args.device, dtype=args.dtype,
                       out=Path(args.json) if args.json else None)
    return 0


def cmd_bench_trainer(args: argparse.Namespace) -> int:
    from bench.benchmarks.trainer import run_trainer_bench

    run_trainer_bench(_suite(args), check_name(args.model, "model name"), epochs=args.epochs)
    return 0


def cmd_bench_step(args: argparse.Namespace) -> int:
    import json

    from bench.benchmarks.trainer import profile_training_step

    result = profile_training_step(_suite(args), check_name(args.model, "model name"), dtype=args.dtype,
                                   steps=args.steps)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def cmd_bench_site(args: argparse.Namespace) -> int:
    from bench.benchmarks.site import run_site_bench

    paths = _paths(args)
    repo = Path(__file__).resolve().parents[2]
    run_site_bench(paths.results, paths.artifacts, repo / "templates", models=args.models, seeds=args.seeds,
                   machines=args.machines, repeats=args.repeats)
    return 0


def cmd_bench_readers(args: argparse.Namespace) -> int:
    from bench.benchmarks.readers import run_reader_bench
    from bench.data.loading import resolve_workers

    run_reader_bench(n_images=args.images, workers=resolve_workers(args.workers, args.images), repeats=args.repeats,
                     trainer=args.trainer_images_per_s)
    return 0
