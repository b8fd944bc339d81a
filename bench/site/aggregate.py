"""From loaded result files to the site context: joins, profiles, provenance.

Leaderboards come from ``bench.site.leaderboard``; profiles join them on (machine,
suite, model). Failed runs are kept and listed, never dropped. Iteration is sorted
everywhere, so the same files always give the same context.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from typing import Any

from bench.results.store import safe_name
from bench.site.context import (
    SPLITS, DatasetClass, DatasetInfo, FailedRun, MachineInfo, ModelInfo, ParamSpread, SiteContext, slug,
)
from bench.site.costs import cost_tables
from bench.site.descriptions import ATTENTION_MECHANISMS, BUILTIN_GENERATOR, COMPLEXITY, SYNTHETIC_RULES
from bench.site.downloads import CSV_FILES, result_files
from bench.site.explain_pages import explain_groups
from bench.site.findings import group_findings
from bench.site.leaderboard import model_name, train_groups
from bench.site.load import DatasetArtifact, LoadedResult, payloads_by_machine, reading
from bench.site.mfu import MfuKey, training_mfu
from bench.site.pages import machine_records, model_pages, reproduce_groups
from bench.site.robustness import robustness_groups
from bench.site.perf_context import (
    AttentionBench, AttentionModule, AttentionPoint, ComplexityRow, LatencyRow, PerfMachine, PerfSuite, ProfileModel,
    ReferenceRow, Roofline, SweepPoint, TrainingMfu,
)

log = logging.getLogger(__name__)

SITE_TITLE = "MedViT-Bench"
SHOWN_LIBRARIES = ("python", "torch", "timm")


def attention_mechanism(name: str) -> str:
    if name in ATTENTION_MECHANISMS:
        return ATTENTION_MECHANISMS[name]
    if name.startswith("timm:"):
        return "as defined by the timm architecture"
    return "not recorded"


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


def _profile_model(r: LoadedResult, peaks: dict[str, dict[str, float]], mfu: dict[MfuKey, TrainingMfu]
                   ) -> ProfileModel:
    p = r.payload
    m = p["metrics"]
    latency = sorted(
        (LatencyRow(**{k: e.get(k) for k in LatencyRow.__dataclass_fields__}
                    | {"runtime": e.get("runtime") or "torch",
                       "round_p50_ms": tuple(e["round_p50_ms"]) if e.get("round_p50_ms") else None})
         for e in m["latency"]),
        key=lambda e: (e.device, e.runtime != "torch", e.runtime, e.dtype, e.batch_size, e.image_size, e.threads),
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
        training=mfu.get((r.machine_id, p["suite"], p["model"]["name"])),
        exponents=m.get("resolution_exponents"),
        int8_agreement=(((m.get("runtimes") or {}).get("onnxruntime") or {}).get("int8") or {})
        .get("agreement_with_fp32", {}).get("top1_agreement"),
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
        first = sections[0].profiles[0]
        suites.append(PerfSuite(suite, sections, f"latency-{slug(suite)}" if has_batch1 else None,
                                scale=first.scale, image_size=first.image_size))
    return tuple(sorted(suites, key=lambda s: (s.scale != "paper", s.suite)))  # the scale a reader deploys first


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
    machines = []
    for mid, payloads in payloads_by_machine(results):
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


def _complexity(benches: list[AttentionBench]) -> tuple[ComplexityRow, ...]:
    """The complexity table with every machine's fitted exponent beside each mechanism."""
    rows = []
    for module, (model, formula, note) in COMPLEXITY.items():
        exponents = tuple((b.machine, next((m.slope for m in b.modules if m.name == module), None))
                          for b in sorted(benches, key=lambda b: b.machine))
        rows.append(ComplexityRow(module, model, formula, note, exponents))
    return tuple(rows)


# --- the whole site ---------------------------------------------------------------------------


def build_context(results: list[LoadedResult], datasets: list[DatasetArtifact],
                  csv: dict[str, str | None] | None = None, artifacts: frozenset[str] | None = None) -> SiteContext:
    """The site context from every loaded result file and dataset artifact (``csv``: the CSV
    downloads that exist, by name; ``artifacts``: the files under the artifacts folder)."""
    results = sorted(results, key=lambda r: r.relpath.as_posix())
    by_kind: dict[str, list[LoadedResult]] = defaultdict(list)
    for r in results:
        if not r.failed:
            by_kind[r.kind].append(r)
    peaks: dict[str, dict[str, float]] = defaultdict(dict)
    peak_threads: dict[str, int] = {}
    for r in by_kind["machine"]:
        with reading(r.path):
            peaks[r.machine_id].update(r.payload["metrics"]["matmul_peak_gflops_per_s"])
            peak_threads[r.machine_id] = r.payload["machine"].get("threads")
    mfu = training_mfu(by_kind["train"], peaks, peak_threads)
    profiles = []
    for r in by_kind["profile"]:
        with reading(r.path):
            profiles.append(_profile_model(r, peaks, mfu))
    attention = []
    for r in by_kind["attention"]:
        with reading(r.path):
            attention.append(_attention_bench(r))
    groups = train_groups(by_kind["train"] + by_kind["baseline"], by_kind["comparison"],
                          {(p.machine, p.suite, p.model): p for p in profiles})
    groups = tuple(dataclasses.replace(g, findings=group_findings(g)) for g in groups)
    dataset_infos = []
    for artifact in sorted(datasets, key=lambda a: a.name):
        with reading(artifact.root / "dataset.json"):
            dataset_infos.append(_dataset(artifact))
    models = _models(results)
    files = result_files(results)
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
        model_pages=model_pages(results, groups, profiles, models, ATTENTION_MECHANISMS,
                                {f.source: f.path for f in files}),
        machine_records=machine_records(results, peaks),
        reproduce=reproduce_groups(results),
        downloads=files,
        csv={**{name: None for name in CSV_FILES}, **(csv or {})},
        class_chart={d.name: f"classes-{slug(d.name)}" for d in dataset_infos if d.classes},
        complexity=_complexity(attention),
        explain=explain_groups(by_kind["explain"], groups, artifacts),
        cost_tables=cost_tables(profiles, by_kind["cost"]),
        robustness=robustness_groups(by_kind["shift"], any(g.synthetic for g in groups), artifacts),
    )
