"""``medbench``: parse the command line and dispatch; the work lives in the modules."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from bench.cli.args import _csv, _names, _paths, _positive_int, _suite
from bench.cli.benchmarks import (
    cmd_bench_attention, cmd_bench_readers, cmd_bench_site, cmd_bench_step, cmd_bench_trainer, cmd_check_latency,
)
from bench.core.config import BAD_FILE_POLICIES, DATA_KINDS, DTYPES, ConfigError
from bench.core.paths import check_name
from bench.results.store import ResultError

log = logging.getLogger("bench")


def cmd_data_synth(args: argparse.Namespace) -> int:
    from bench.data.synthetic import ensure_dataset, generate

    data = _suite(args).data
    if args.if_absent:
        log.info("dataset ready at %s", ensure_dataset(data))
        return 0
    root = Path(args.root) if args.root else data.root_path
    generate(root, num_images=args.num_images or data.num_images, size=args.size or data.generator_size,
             seed=data.seed if args.seed is None else args.seed, fractions=data.split_fractions)
    log.info("synthetic dataset written to %s", root)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bench.cli.runner import run_suite

    seeds = [int(s) for s in _csv(args.seeds)] if args.seeds else None
    written = run_suite(_suite(args), models=_names(args.models, "model name"), seeds=seeds,
                        stages=tuple(_csv(args.stages)), force=args.force, paths=_paths(args), jobs=args.jobs)
    log.info("%d result files up to date", len(written))
    return 0


def _one_stage(args: argparse.Namespace, stage: str) -> int:
    from bench.cli.runner import run_suite

    written = run_suite(_suite(args), models=_names(args.models, "model name"), stages=(stage,),
                        force=args.force, paths=_paths(args))
    log.info("%d result files up to date", len(written))
    return 0


def cmd_budget(args: argparse.Namespace) -> int:
    from bench.cli.runner import run_suite

    written = run_suite(_suite(args), models=_names(args.models, "model name"), stages=("budget",),
                        force=args.force, paths=_paths(args), jobs=args.jobs)
    log.info("%d budget-study results up to date; `medbench run --stages compare` sets them beside the suite's",
             len(written))
    return 0


def cmd_shift(args: argparse.Namespace) -> int:
    from bench.cli.runner import run_suite

    seeds = [int(s) for s in _csv(args.seeds)] if args.seeds else None
    written = run_suite(_suite(args), models=_names(args.models, "model name"), seeds=seeds, stages=("shift",),
                        force=args.force, paths=_paths(args))
    log.info("%d shift-study results up to date", len(written))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    return _one_stage(args, "explain")


def cmd_export(args: argparse.Namespace) -> int:
    return _one_stage(args, "export")


def cmd_train(args: argparse.Namespace) -> int:
    from bench.cli.runner import train_one
    from bench.core.distributed import barrier, init_from_env, shutdown
    from bench.data import load_dataset
    from bench.data.synthetic import ensure_dataset

    suite = _suite(args)
    check_name(args.model, "model name")
    ctx = init_from_env(args.device)
    try:
        if suite.data.kind == "synthetic" and ctx.is_main:
            ensure_dataset(suite.data)  # once, before the other ranks read it
        barrier(ctx)
        data = load_dataset(suite.data, progress=ctx.is_main)
        train_one(suite, args.model, args.seed, data, _paths(args), ctx=ctx, force=args.force)
    finally:
        shutdown(ctx)
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from bench.stages.cost import cost_suite
    from bench.stages.profile_run import profile_from_checkpoints, profile_suite

    suite, paths = _suite(args), _paths(args)
    if args.from_checkpoints:
        written = profile_from_checkpoints(suite, Path(args.from_checkpoints), paths, force=args.force)
    else:
        models = _names(args.models, "model name") or list(suite.models)
        written = []
        for name in models:  # one model at a time: its profile, then its costs (a resumable piece)
            written += profile_suite(suite, [name], paths, seed=suite.seeds[0], num_classes=args.num_classes,
                                     force=args.force)
            written += cost_suite(suite, [name], paths, force=args.force)
    log.info("%d profile results up to date", len(written))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from bench.models.table import models_table

    sys.stdout.write(models_table(args.scale, _csv(args.models) if args.models else None))
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    from bench.site.render import render_site

    paths = _paths(args)
    repo = Path(__file__).resolve().parents[2]
    written = render_site(paths.results, paths.artifacts, repo / "templates", Path(args.out))
    log.info("rendered %d files into %s", len(written), args.out)
    return 0


def cmd_results_table(args: argparse.Namespace) -> int:
    from bench.core import env
    from bench.results.store import result_path
    from bench.stages.compare import budget_markdown, leaderboard_markdown, load_comparison, validation_comparison

    machine = args.machine_id or env.machine_info()["id"]
    path = result_path(_paths(args).results, machine, check_name(args.suite, "suite name"), "comparison", None, None)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no comparison; run `medbench run --suite {args.suite}` first")
    comparison, runs = validation_comparison(path) if args.split == "val" else load_comparison(path)
    sys.stdout.write(leaderboard_markdown(comparison, runs))
    if args.budget:
        sys.stdout.write("\n" + budget_markdown(comparison))
    return 0


def cmd_results_validate(args: argparse.Namespace) -> int:
    from bench.results.store import iter_result_files, load_result

    files = [Path(p) for p in args.paths] or list(iter_result_files(_paths(args).results))
    bad = 0
    for path in files:
        try:
            load_result(path)
        except ResultError as exc:
            bad += 1
            log.error("%s", exc)
    log.info("%d of %d result files valid", len(files) - bad, len(files))
    return 1 if bad else 0


def cmd_results_pack(args: argparse.Namespace) -> int:
    from bench.results.pack import pack_results

    paths = _paths(args)
    summary = pack_results(paths.results, Path(args.out), artifacts_root=None if args.no_artifacts else paths.artifacts,
                           machines=_names(args.machines, "machine id"), suites=_names(args.suites, "suite name"))
    log.info("packed %d result file(s) and %d artifact(s) into %s (%.1f MiB); %d artifact(s) left out", summary.results,
             summary.artifacts, summary.archive, summary.bytes / 2**20, len(summary.skipped))
    return 0


def cmd_results_unpack(args: argparse.Namespace) -> int:
    from bench.results.pack import unpack_results

    paths = _paths(args)
    summary = unpack_results(Path(args.archive), paths.results,
                             artifacts_root=None if args.no_artifacts else paths.artifacts,
                             force=args.force, dry_run=args.dry_run)
    log.info("%s%s: %d written, %d unchanged, %d overwritten, %d skipped", "dry run, " if args.dry_run else "",
             args.archive, len(summary.written), len(summary.unchanged), len(summary.overwritten),
             len(summary.skipped))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medbench", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--machine-id", help="record results under this machine id (default: derived from the hardware)")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable[[argparse.Namespace], int], help: str, suite: bool = True,
            dirs: bool = True, parent: Any = sub, data: bool = False) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help, description=help)
        p.set_defaults(fn=fn)
        if suite:
            p.add_argument("--suite", default="quick", help="suite name (suites/<name>.toml) or path")
            p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                           help="override a suite value, e.g. --set train.epochs=2")
        if data:
            p.add_argument("--data", metavar="PATH",
                           help="dataset to use instead of the suite's: a class-per-folder tree, a RadImageNet "
                                "folder (radiology_ai/ and its split CSVs; pick a part with --set "
                                "data.subset=MR/brain) or a CSV manifest; the kind is detected and logged")
            p.add_argument("--data-kind", choices=DATA_KINDS, help="the dataset kind, instead of detecting it")
            p.add_argument("--on-bad-file", choices=BAD_FILE_POLICIES,
                           help="an image the reader rejects: skip it and record it in the results (the "
                                "default, data.on_bad_file) or fail the load naming it")
        if dirs:
            p.add_argument("--results-dir", help="default: data/results")
            p.add_argument("--checkpoint-dir", help="default: data/checkpoints")
            p.add_argument("--artifacts-dir", help="default: data/artifacts")
        return p

    data = sub.add_parser("data", help="datasets").add_subparsers(dest="data_command", required=True)
    p = add("synth", cmd_data_synth, "generate the synthetic brain-MRI dataset", dirs=False, parent=data)
    p.add_argument("--root", help="output folder (default: the suite's data.root)")
    p.add_argument("--num-images", type=int)
    p.add_argument("--size", type=int, help="stored resolution in pixels")
    p.add_argument("--seed", type=int)
    p.add_argument("--if-absent", action="store_true", help="generate the suite's dataset only if it is missing")

    p = add("run", cmd_run, "train, evaluate and profile a suite (skips finished work)", data=True)
    p.add_argument("--models", help="comma-separated subset of the suite's models")
    p.add_argument("--seeds", help="comma-separated subset of the suite's seeds")
    p.add_argument("--stages", default="train,baselines,compare,profile,explain,export",
                   help="comma-separated subset of train,baselines,compare,profile,explain,export; "
                        "also budget (the budget study, never run by default)")
    p.add_argument("--force", action="store_true", help="redo finished work")
    p.add_argument("--jobs", type=_positive_int, default=1,
                   help="train this many runs at once on CPU, sharing the cores (default 1)")

    p = add("budget", cmd_budget, "the budget study: each model's first seed trained again with every length "
            "of the recipe doubled (cap, least epochs, patience, decay), to show whether more training changes "
            "its validation score", data=True)
    p.add_argument("--models", help="comma-separated subset of the suite's models")
    p.add_argument("--force", action="store_true", help="redo finished work")
    p.add_argument("--jobs", type=_positive_int, default=1,
                   help="train this many runs at once on CPU, sharing the cores (default 1)")

    p = add("shift", cmd_shift, "the shift study: every kept checkpoint predicts the test split under "
            "acquisition shifts (contrast, bias field, noise, blur, resolution, scale, rotation) at 3 severities, "
            "then the suite's robustness summary; a missing checkpoint is retrained and checked first", data=True)
    p.add_argument("--models", help="comma-separated subset of the suite's models")
    p.add_argument("--seeds", help="comma-separated subset of the suite's seeds")
    p.add_argument("--force", action="store_true", help="redo finished work")

    p = add("explain", cmd_explain, "attribution galleries and faithfulness of a suite's trained models", data=True)
    p.add_argument("--models", help="comma-separated subset of the suite's models")
    p.add_argument("--force", action="store_true", help="redo finished work")

    p = add("export", cmd_export, "ONNX exports of a suite's trained models for the in-browser demo", data=True)
    p.add_argument("--models", help="comma-separated subset of the suite's models")
    p.add_argument("--force", action="store_true", help="redo finished work")

    p = add("train", cmd_train, "train one (model, seed); works under torchrun", data=True)
    p.add_argument("--model", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--force", action="store_true")

    p = add("profile", cmd_profile, "profile models on this machine")
    p.add_argument("--models")
    p.add_argument("--from-checkpoints", metavar="DIR", help="profile the finished checkpoints in DIR")
    p.add_argument("--num-classes", type=int, default=10, help="head size when a model has no checkpoint")
    p.add_argument("--force", action="store_true")

    p = add("bench-attention", cmd_bench_attention, "time attention modules against token count", suite=False)
    p.add_argument("--modules", help="comma-separated subset")
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--tokens", default="256,1024,4096,16384")
    p.add_argument("--no-references", action="store_true")
    p.add_argument("--device", default="auto", help="cpu, cuda, or auto (the GPU when there is one)")
    p.add_argument("--dtype", default="float32", choices=DTYPES,
                   help="bfloat16: forwards under autocast; global softmax on a GPU then runs through flash alone")

    p = add("check-latency", cmd_check_latency, "compare our latency with torch.utils.benchmark", suite=False, dirs=False)
    p.add_argument("--models", default="resnet50,pyramid_softmax")
    p.add_argument("--scale", default="quick")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--dtype", default="float32", choices=DTYPES, help="bfloat16 runs under autocast")
    p.add_argument("--json", metavar="PATH", help="also write the rows here")

    p = add("bench-trainer", cmd_bench_trainer, "trainer throughput vs a minimal PyTorch loop", dirs=False,
            data=True)
    p.add_argument("--model", default="pyramid_softmax")
    p.add_argument("--epochs", type=int, default=3)

    p = add("bench-step", cmd_bench_step, "where a training step's time goes (torch.profiler): the cost stage's "
            "trainer at cost.batch_size, self CPU time by op category", dirs=False)
    p.add_argument("--model", default="pyramid_softmax")
    p.add_argument("--dtype", default="bfloat16", choices=DTYPES, help="bfloat16 trains under autocast")
    p.add_argument("--steps", type=_positive_int, default=3)
    p.add_argument("--json", metavar="PATH", help="also write the breakdown here")

    p = add("bench-site", cmd_bench_site, "time medbench site on a large tree copied from real results",
            suite=False)
    p.add_argument("--models", type=int, default=8)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--machines", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)

    p = add("bench-readers", cmd_bench_readers, "images/s of the dataset loader on PNG and DICOM files, "
            "against the quick trainer's", suite=False, dirs=False)
    p.add_argument("--images", type=int, default=4000)
    p.add_argument("--workers", type=int, default=0, help="loader processes (default 0: one per core)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--trainer-images-per-s", type=float,
                   help="the trainer's throughput to compare with (default: measured, quick suite, pyramid_softmax)")

    p = add("models", cmd_models, "table of parameters and GMACs", suite=False, dirs=False)
    p.add_argument("--scale", default="paper")
    p.add_argument("--models")

    p = add("site", cmd_site, "render the report pages into site_src/", suite=False)
    p.add_argument("--out", default="site_src")

    results = sub.add_parser("results", help="result files").add_subparsers(dest="results_command", required=True)
    p = add("validate", cmd_results_validate, "validate result files against the schema", suite=False, parent=results)
    p.add_argument("paths", nargs="*")
    p = add("table", cmd_results_table, "print a suite's leaderboard (its comparison) as Markdown",
            suite=False, parent=results)
    p.add_argument("--suite", default="quick", help="suite name")
    p.add_argument("--split", choices=("test", "val"), default="test",
                   help="the split to rank on: val for recipe, width and ablation choices (test never picks anything)")
    p.add_argument("--budget", action="store_true", help="also print the budget study")
    p = add("pack", cmd_results_pack, "pack result files (and small artifacts) into one .tar.gz", suite=False,
            parent=results)
    p.add_argument("out", help="the archive to write, e.g. results.tar.gz")
    p.add_argument("--machines", help="only these machine ids, comma-separated")
    p.add_argument("--suites", help="only these suites, comma-separated")
    p.add_argument("--no-artifacts", action="store_true", help="result files only")
    p = add("unpack", cmd_results_unpack, "validate an archive and merge it into the results (all or nothing)",
            suite=False, parent=results)
    p.add_argument("archive")
    p.add_argument("--force", action="store_true", help="overwrite files that differ from the archive's")
    p.add_argument("--dry-run", action="store_true", help="check and report, write nothing")
    p.add_argument("--no-artifacts", action="store_true", help="merge result files only")
    return parser


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Problems with the user's input or files: one line each, no traceback (``-v`` shows it)."""
    errors: list[type[BaseException]] = [ConfigError, ResultError, FileNotFoundError, FileExistsError, KeyError]
    try:  # the data errors need the engine's dependencies, which a site-only install lacks
        from bench.data.policy import DatasetError
        from bench.data.readers import ImageReadError

        errors += [DatasetError, ImageReadError]
    except ImportError:
        pass
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("PIL", "matplotlib", "fvcore", "iopath"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.machine_id is not None:
            os.environ["MEDBENCH_MACHINE_ID"] = check_name(args.machine_id, "--machine-id")
        elif os.environ.get("MEDBENCH_MACHINE_ID"):
            check_name(os.environ["MEDBENCH_MACHINE_ID"], "$MEDBENCH_MACHINE_ID")
        return args.fn(args)
    except _expected_errors() as exc:
        if args.verbose:
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        log.error("%s", message)
        return 2
