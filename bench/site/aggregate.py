"""From loaded result files to the site context: seed aggregates, joins, provenance.

Train runs are grouped per (machine, suite, model) and summarised across seeds;
profiles join them on the same key. Failed runs are kept and listed, never dropped.
Iteration is sorted everywhere, so the same files always give the same context.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Iterator

from bench.results import ResultError, safe_name
from bench.site.context import (
    ATTENTION_MECHANISMS, BUILTIN_GENERATOR, METRICS, SPLITS, SYNTHETIC_RULES, AttentionBench, AttentionModule,
    AttentionPoint, ClassRow, DatasetClass, DatasetInfo, FailedRun, Interval, LatencyRow, LeaderRow, MachineInfo,
    MeanStd, ModelInfo, ParamSpread, PerfMachine, PerfSuite, ProfileModel, ReferenceRow, Roofline, SeedCurve,
    SiteContext, SweepPoint, TrainGroup, slug,
)
from bench.site.load import DatasetArtifact, LoadedResult

log = logging.getLogger(__name__)

SITE_TITLE = "MedViT-Bench"
SHOWN_LIBRARIES = ("python", "torch", "timm")


def mean_std(values: Iterable[float | None]) -> MeanStd:
    """Across-seed mean and sample std, skipping None (a metric undefined for a seed)."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return MeanStd(None, None, 0)
    std = statistics.stdev(vals) if len(vals) > 1 else None
    return MeanStd(statistics.fmean(vals), std, len(vals))


def mean_interval(intervals: Iterable[list[float | None] | None]) -> Interval | None:
    """The mean of per-seed bootstrap intervals (endpoint-wise), or None when no seed has one."""
    pairs = [iv for iv in intervals if iv and iv[0] is not None and iv[1] is not None]
    if not pairs:
        return None
    return Interval(statistics.fmean(p[0] for p in pairs), statistics.fmean(p[1] for p in pairs))


@contextlib.contextmanager
def reading(path: Path) -> Iterator[None]:
    """Name the file when a schema-valid result still lacks something the site needs."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as exc:
        raise ResultError(path, f"cannot summarise it for the site ({type(exc).__name__}: {exc})") from None


def model_name(payload: dict[str, Any]) -> str | None:
    return payload["model"]["name"] if payload.get("model") else None


def attention_mechanism(name: str) -> str:
    if name in ATTENTION_MECHANISMS:
        return ATTENTION_MECHANISMS[name]
    if name.startswith("timm:"):
        return "as defined by the timm architecture"
    return "not recorded"


# --- training -----------------------------------------------------------------------------


def _cpu_latency(profile: ProfileModel | None) -> tuple[float | None, float | None, int | None]:
    """(p50 ms at batch 1, best-batch throughput, that batch) on CPU in float32."""
    if profile is None:
        return None, None, None
    cpu = [r for r in profile.latency if r.device == "cpu" and r.dtype == "float32"]
    single = sorted((r for r in cpu if r.batch_size == 1),
                    key=lambda r: (r.image_size != profile.image_size, r.image_size))
    largest = max(cpu, key=lambda r: (r.batch_size, r.image_size == profile.image_size), default=None)
    return (
        single[0].p50_ms if single else None,
        largest.throughput_images_per_s if largest else None,
        largest.batch_size if largest else None,
    )


def _per_class(payloads: list[dict[str, Any]], class_names: tuple[str, ...]) -> tuple[ClassRow, ...]:
    rows = []
    for name in class_names:
        stats = [p["metrics"]["per_class"].get(name) for p in payloads]
        stats = [s for s in stats if s is not None]
        if not stats:
            continue
        rows.append(ClassRow(
            name,
            mean_std(s["sensitivity"] for s in stats),
            mean_std(s["specificity"] for s in stats),
            stats[0]["support"],  # the same test split for every seed
        ))
    return tuple(rows)


def _summed_confusion(payloads: list[dict[str, Any]]) -> tuple[tuple[int, ...], ...]:
    matrices = [p["metrics"]["confusion_matrix"] for p in payloads]
    size = len(matrices[0])
    return tuple(tuple(sum(m[i][j] for m in matrices) for j in range(size)) for i in range(size))


def _curve(payload: dict[str, Any]) -> SeedCurve:
    curves = payload["metrics"]["curves"]
    series = ("epoch", "train_loss", "val_loss", "val_balanced_accuracy")
    return SeedCurve(payload["seed"], *(tuple(curves[k]) for k in series))


def _leader_row(machine: str, suite: str, payloads: list[dict[str, Any]], profile: ProfileModel | None,
                class_names: tuple[str, ...]) -> LeaderRow:
    payloads = sorted(payloads, key=lambda p: p["seed"])
    model = payloads[0]["model"]
    metrics = {m: mean_std(p["metrics"][m]["value"] for p in payloads) for m in METRICS}
    cis = {m: mean_interval(p["metrics"][m].get("ci95") for p in payloads) for m in METRICS}
    p50, throughput, batch = _cpu_latency(profile)
    key = slug(machine, suite, model["name"])
    return LeaderRow(
        model=model["name"],
        scale=model["scale"],
        params=profile.params if profile else model["params"],
        gmacs=profile.gmacs if profile else model.get("gmacs"),
        seeds=tuple(p["seed"] for p in payloads),
        metrics=metrics,
        mean_ci=cis,
        cpu_p50_ms=p50,
        throughput_images_per_s=throughput,
        throughput_batch=batch,
        per_class=_per_class(payloads, class_names),
        confusion=_summed_confusion(payloads),
        curves=tuple(_curve(p) for p in payloads),
        curves_chart=f"curves-{key}",
        confusion_chart=f"confusion-{key}",
    )


def _recipe(config: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The training settings a reader needs to judge the numbers, as recorded in the suite config."""
    train, data = config.get("train") or {}, config.get("data") or {}
    shown = [("image size (px)", data.get("image_size")), ("epochs", train.get("epochs")),
             ("batch size", train.get("batch_size")), ("learning rate", train.get("lr")),
             ("weight decay", train.get("weight_decay")), ("class balancing", train.get("balance")),
             ("augmentation", train.get("augment")), ("bootstrap resamples", train.get("bootstrap"))]
    return tuple((k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in shown if v is not None)


def _train_groups(train: list[LoadedResult],
                  profiles: dict[tuple[str, str, str], ProfileModel]) -> tuple[TrainGroup, ...]:
    by_group: dict[tuple[str, str], dict[str, list[LoadedResult]]] = defaultdict(lambda: defaultdict(list))
    for r in train:
        by_group[(r.machine_id, r.payload["suite"])][model_name(r.payload)].append(r)
    groups = []
    for (machine, suite), models in sorted(by_group.items()):
        payloads = [r.payload for runs in models.values() for r in runs]
        first = min(payloads, key=lambda p: (model_name(p), p["seed"]))
        class_names = tuple(first["dataset"].get("class_names") or ())
        rows = []
        for name, runs in sorted(models.items()):
            with reading(runs[0].path):
                rows.append(_leader_row(machine, suite, [r.payload for r in runs],
                                        profiles.get((machine, suite, name)), class_names))
        rows.sort(key=lambda r: (-(r.metrics["balanced_accuracy"].mean or 0.0), r.model))
        key = slug(machine, suite)
        groups.append(TrainGroup(
            machine=machine,
            suite=suite,
            dataset=first["dataset"]["name"],
            synthetic=any(p["dataset"]["synthetic"] for p in payloads),
            class_names=class_names,
            recipe=_recipe(first["config"]),
            rows=tuple(rows),
            acc_gmacs_chart=f"acc-gmacs-{key}" if any(r.gmacs is not None for r in rows) else None,
            acc_latency_chart=f"acc-latency-{key}" if any(r.cpu_p50_ms is not None for r in rows) else None,
        ))
    return tuple(groups)


def _failed(results: list[LoadedResult]) -> tuple[FailedRun, ...]:
    runs = []
    for r in results:
        if not r.failed:
            continue
        err = r.payload["error"]
        runs.append(FailedRun(
            file=r.relpath.as_posix(), kind=r.kind, machine=r.machine_id, suite=r.payload["suite"],
            model=model_name(r.payload), seed=r.payload["seed"],
            error_type=err["type"], message=err["message"], stage=err.get("stage"),
        ))
    return tuple(runs)


# --- profiles -----------------------------------------------------------------------------


def _roofline(metrics: dict[str, Any], peaks: dict[str, dict[str, float]], machine: str) -> Roofline | None:
    roof = metrics.get("roofline")
    if not roof:
        return None
    recorded = peaks.get(machine, {}).get(f"{roof['device']}:{roof['dtype']}")
    peak = recorded if recorded is not None else roof.get("peak_gflops_per_s")
    achieved = roof["achieved_gflops_per_s"]
    return Roofline(
        device=roof["device"], dtype=roof["dtype"], batch_size=roof["batch_size"],
        achieved_gflops_per_s=achieved, peak_gflops_per_s=peak,
        share_of_peak=achieved / peak if peak else None,
        peak_source="machine record" if recorded is not None else "profile",
    )


def _profile_model(r: LoadedResult, peaks: dict[str, dict[str, float]]) -> ProfileModel:
    p = r.payload
    m = p["metrics"]
    latency = sorted(
        (LatencyRow(**{k: e.get(k) for k in LatencyRow.__dataclass_fields__}) for e in m["latency"]),
        key=lambda e: (e.device, e.dtype, e.batch_size, e.image_size, e.threads),
    )
    sweep = sorted(
        (SweepPoint(**{k: e.get(k) for k in SweepPoint.__dataclass_fields__} | {"status": e.get("status", "ok")})
         for e in m.get("resolution_sweep", [])),
        key=lambda e: (e.device, e.dtype, e.batch_size, e.image_size),
    )
    counters = m.get("flop_counters") or {}
    return ProfileModel(
        machine=r.machine_id, suite=p["suite"], model=p["model"]["name"], scale=p["model"]["scale"],
        image_size=p["model"]["image_size"],
        params=m.get("params", p["model"]["params"]), gmacs=m.get("gmacs", p["model"]["gmacs"]),
        gflops=m.get("gflops"), flop_rel_diff=counters.get("rel_diff"),
        latency=tuple(latency), sweep=tuple(sweep), roofline=_roofline(m, peaks, r.machine_id),
    )


def _perf_suites(profiles: list[ProfileModel]) -> tuple[PerfSuite, ...]:
    by_suite: dict[str, dict[str, list[ProfileModel]]] = defaultdict(lambda: defaultdict(list))
    for prof in profiles:
        by_suite[prof.suite][prof.machine].append(prof)
    suites = []
    for suite, machines in sorted(by_suite.items()):
        sections = tuple(
            PerfMachine(machine, tuple(sorted(profs, key=lambda x: x.model)),
                        f"sweep-{slug(suite, machine)}" if any(x.sweep for x in profs) else None)
            for machine, profs in sorted(machines.items())
        )
        has_batch1 = any(row.batch_size == 1 for s in sections for x in s.profiles for row in x.latency)
        suites.append(PerfSuite(suite, sections, f"latency-{slug(suite)}" if has_batch1 else None))
    return tuple(suites)


# --- attention scaling ----------------------------------------------------------------------


def _attention_module(name: str, entries: list[dict[str, Any]], fit: dict[str, Any] | None) -> AttentionModule:
    points = tuple(sorted(
        (AttentionPoint(e["tokens"], e["status"], (e.get("time_ms") or {}).get("p50"), e.get("peak_memory_mb"))
         for e in entries),
        key=lambda pt: pt.tokens,
    ))
    ok = [pt.tokens for pt in points if pt.status == "ok"]
    failure = next((pt for pt in points if pt.status != "ok"), None)
    return AttentionModule(
        name=name,
        slope=fit["slope"] if fit else None,
        fit_tokens=tuple(fit.get("fit_tokens", ())) if fit else (),
        points=points,
        largest_ok=max(ok) if ok else None,
        first_failure=f"{failure.status} at N={failure.tokens}" if failure else None,
    )


def _attention_bench(r: LoadedResult) -> AttentionBench:
    m = r.payload["metrics"]
    fits = m.get("fits", {})
    modules = tuple(_attention_module(name, entries, fits.get(name))
                    for name, entries in sorted(m.get("modules", {}).items()))
    reference = tuple(sorted(
        (ReferenceRow(e["module"], e["reference"], e["tokens"], e.get("ours_ms"), e.get("reference_ms"),
                      e.get("ratio")) for e in m.get("reference", [])),
        key=lambda row: (row.module, row.reference, row.tokens),
    ))
    return AttentionBench(
        machine=r.machine_id, suite=r.payload["suite"], device=m.get("device"), dtype=m.get("dtype"),
        threads=m.get("threads"), channels=m.get("channels"), batch_size=m.get("batch_size"), heads=m.get("heads"),
        modules=modules, reference=reference, chart=f"attention-{slug(r.machine_id, r.payload['suite'])}",
    )


# --- machines, models, datasets -------------------------------------------------------------


def _machines(results: list[LoadedResult], peaks: dict[str, dict[str, float]]) -> tuple[MachineInfo, ...]:
    by_machine: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        by_machine[r.machine_id].append(r.payload)
    machines = []
    for mid, payloads in sorted(by_machine.items()):
        hw = payloads[0]["machine"]
        gpu = hw.get("gpu")
        created = sorted(p["created_utc"] for p in payloads)
        versions = []
        for lib in SHOWN_LIBRARIES:
            seen = sorted({str(p["environment"][lib]) for p in payloads if p["environment"].get(lib)})
            versions.append((lib, ", ".join(seen) or "—"))
        machines.append(MachineInfo(
            id=mid, cpu=hw["cpu"], cores=hw["cores"], ram_gb=hw.get("ram_gb"), gpu=gpu["name"] if gpu else None,
            matmul_peaks=tuple(sorted(peaks.get(mid, {}).items())),
            git_shas=tuple(sorted({p["git_sha"] for p in payloads})),
            git_dirty=any(p["git_dirty"] for p in payloads),
            first_utc=created[0], last_utc=created[-1], versions=tuple(versions), result_files=len(payloads),
        ))
    return tuple(machines)


def _models(results: list[LoadedResult]) -> tuple[ModelInfo, ...]:
    """One row per (scale, model); profiles first, since they measured GMACs on the benchmarked model."""
    seen: dict[tuple[str, str], ModelInfo] = {}
    ordered = sorted((r for r in results if r.payload.get("model") and r.kind in ("profile", "train")),
                     key=lambda r: (r.kind != "profile", r.relpath.as_posix()))
    for r in ordered:
        m = r.payload["model"]
        if (m["scale"], m["name"]) not in seen:
            gmacs = r.payload["metrics"].get("gmacs", m.get("gmacs")) if r.kind == "profile" else m.get("gmacs")
            seen[(m["scale"], m["name"])] = ModelInfo(m["name"], m["scale"], m["params"], gmacs, m["image_size"],
                                                      attention_mechanism(m["name"]))
    return tuple(seen[k] for k in sorted(seen))


def _param_spreads(models: tuple[ModelInfo, ...]) -> tuple[ParamSpread, ...]:
    by_scale: dict[str, list[int]] = defaultdict(list)
    for m in models:
        if m.name.startswith("pyramid_"):
            by_scale[m.scale].append(m.params)
    return tuple(
        ParamSpread(scale, len(params), min(params), max(params), max(params) / min(params) - 1.0)
        for scale, params in sorted(by_scale.items()) if len(params) > 1 and min(params) > 0
    )


def sample_site_path(dataset: str, class_name: str) -> str:
    """Where a class's sample strip is copied in the generated site (relative to the docs root)."""
    return f"assets/dataset/{safe_name(dataset)}/{safe_name(class_name)}.png"


def _generator_settings(info: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    generator = info.get("generator")
    settings = []
    if isinstance(generator, dict):
        settings.append(("generator", f"{generator.get('name', '?')} v{generator.get('version', '?')}"))
    for key, label in (("num_images", "images"), ("size", "stored size (px)"), ("seed", "seed")):
        if key in info:
            settings.append((label, str(info[key])))
    return tuple(settings)


def _dataset(artifact: DatasetArtifact) -> DatasetInfo:
    """Counts per split come as class → {split: n} (generated) or only train counts (folders)."""
    info = artifact.info
    counts = info.get("counts") or {c: {"train": n} for c, n in (info.get("train_counts") or {}).items()}
    present = {s for per_class in counts.values() for s in per_class} - {"total"}
    splits = tuple(s for s in SPLITS if s in present) + tuple(sorted(present - set(SPLITS)))
    generator = info.get("generator")
    builtin = isinstance(generator, dict) and generator.get("name") == BUILTIN_GENERATOR
    rules = info.get("rules") or (SYNTHETIC_RULES if builtin else {})
    shares = info.get("proportions") or {}
    classes = []
    for name in artifact.class_names:
        per_class = counts.get(name, {})
        per_split = tuple(per_class.get(s) for s in splits)
        known = [c for c in per_split if c is not None]
        classes.append(DatasetClass(
            name=name, counts=per_split, total=per_class.get("total", sum(known) if known else None),
            share=shares.get(name), rule=rules.get(name),
            sample=sample_site_path(artifact.name, name) if name in artifact.samples else None,
        ))
    return DatasetInfo(artifact.name, info.get("synthetic", False), builtin, splits, tuple(classes),
                       _generator_settings(info))


# --- the whole site ---------------------------------------------------------------------------


def build_context(results: list[LoadedResult], datasets: list[DatasetArtifact]) -> SiteContext:
    """The site context from every loaded result file and dataset artifact."""
    results = sorted(results, key=lambda r: r.relpath.as_posix())
    by_kind: dict[str, list[LoadedResult]] = defaultdict(list)
    for r in results:
        if not r.failed:
            by_kind[r.kind].append(r)
    peaks: dict[str, dict[str, float]] = defaultdict(dict)
    for r in by_kind["machine"]:
        with reading(r.path):
            peaks[r.machine_id].update(r.payload["metrics"]["matmul_peak_gflops_per_s"])
    profiles = []
    for r in by_kind["profile"]:
        with reading(r.path):
            profiles.append(_profile_model(r, peaks))
    attention = []
    for r in by_kind["attention"]:
        with reading(r.path):
            attention.append(_attention_bench(r))
    groups = _train_groups(by_kind["train"], {(p.machine, p.suite, p.model): p for p in profiles})
    dataset_infos = []
    for artifact in sorted(datasets, key=lambda a: a.name):
        with reading(artifact.root / "dataset.json"):
            dataset_infos.append(_dataset(artifact))
    models = _models(results)
    return SiteContext(
        title=SITE_TITLE,
        synthetic=any(g.synthetic for g in groups) or any(d.synthetic for d in dataset_infos),
        train_groups=groups,
        failed=_failed(results),
        perf_suites=_perf_suites(profiles),
        attention=tuple(attention),
        machines=_machines(results, peaks),
        models=models,
        param_spreads=_param_spreads(models),
        datasets=tuple(dataset_infos),
    )
