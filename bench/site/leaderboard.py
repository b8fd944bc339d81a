"""Leaderboards: train runs summarised across seeds, with baselines and the suite's comparison.

Train runs are grouped per (machine, suite, model) and summarised across seeds; profiles
join them on the same key. Baselines become reference rows. The engine's comparison
result supplies what needs every seed's predictions at once: the interval of the
across-seed mean (a bootstrap over seeds and test images together), the seed standard
deviation, the Holm-adjusted "tied with the best" marks, the pixel-baseline test and the
budget study. Nothing here recomputes a statistic.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any, Iterable

from bench.site.context import (
    METRICS, BudgetRow, ClassRow, Interval, LeaderRow, MeanStd, ReliabilityBin, SeedCurve, TrainGroup, slug,
)
from bench.site.descriptions import MODEL_CAVEATS
from bench.site.load import LoadedResult, reading
from bench.site.perf_context import ProfileModel


def mean_std(values: Iterable[float | None]) -> MeanStd:
    """Across-seed mean and sample std, skipping None (a metric undefined for a seed)."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return MeanStd(None, None, 0)
    std = statistics.stdev(vals) if len(vals) > 1 else None
    return MeanStd(statistics.fmean(vals), std, len(vals))


def model_name(payload: dict[str, Any]) -> str | None:
    return payload["model"]["name"] if payload.get("model") else None


def batch1_latency(profile: ProfileModel | None) -> float | None:
    """p50 ms at batch 1 in PyTorch float32 on the machine's GPU when it profiled one, else on its
    CPU (at the most threads measured)."""
    if profile is None:
        return None
    rows = [r for r in profile.latency if r.batch_size == 1 and r.dtype == "float32" and r.runtime == "torch"]
    rows.sort(key=lambda r: (r.device == "cpu", r.image_size != profile.image_size, r.image_size, -r.threads))
    return rows[0].p50_ms if rows else None


def _cpu_latency(profile: ProfileModel | None) -> tuple[float | None, float | None, int | None, float | None]:
    """(p50 ms at batch 1, best-batch throughput, that batch, the top of its spread: the larger of
    its p90 and its rounds' p50s) on CPU in PyTorch float32 (the most threads)."""
    if profile is None:
        return None, None, None, None
    cpu = [r for r in profile.latency if r.device == "cpu" and r.dtype == "float32" and r.runtime == "torch"]
    single = sorted((r for r in cpu if r.batch_size == 1),
                    key=lambda r: (r.image_size != profile.image_size, r.image_size, -r.threads))
    largest = max(cpu, key=lambda r: (r.batch_size, r.image_size == profile.image_size), default=None)
    return (
        single[0].p50_ms if single else None,
        largest.throughput_images_per_s if largest else None,
        largest.batch_size if largest else None,
        max([single[0].p90_ms, *(single[0].round_p50_ms or ())]) if single else None,
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
    """Summed over seeds; empty for a baseline scored by expected values (it draws no predictions)."""
    matrices = [p["metrics"].get("confusion_matrix") for p in payloads]
    if not matrices or None in matrices:
        return ()
    size = len(matrices[0])
    return tuple(tuple(sum(m[i][j] for m in matrices) for j in range(size)) for i in range(size))


def _curve(payload: dict[str, Any]) -> SeedCurve:
    curves = payload["metrics"]["curves"]
    series = ("epoch", "train_loss", "val_loss", "val_balanced_accuracy")
    return SeedCurve(payload["seed"], *(tuple(curves[k]) for k in series))


def _metric_value(payload: dict[str, Any], metric: str) -> float | None:
    entry = payload["metrics"].get(metric)
    return entry.get("value") if isinstance(entry, dict) else None


def _seed_envelope(payloads: list[dict[str, Any]], metric: str) -> Interval | None:
    """From the lowest to the highest end of the seeds' own 95% bootstrap intervals."""
    ends = [(p["metrics"].get(metric) or {}).get("ci95") or [None, None] for p in payloads]
    los, his = [e[0] for e in ends if e[0] is not None], [e[1] for e in ends if e[1] is not None]
    return Interval(min(los), max(his)) if los and his else None


def _pooled_reliability(payloads: list[dict[str, Any]]) -> tuple[ReliabilityBin, ...]:
    """The seeds' reliability diagrams added bin by bin (empty when a seed lacks one)."""
    diagrams = [p["metrics"].get("reliability") for p in payloads]
    if not diagrams or any(d is None for d in diagrams) or len({tuple(d["bin_edges"]) for d in diagrams}) != 1:
        return ()
    edges = diagrams[0]["bin_edges"]
    bins = []
    for i in range(len(edges) - 1):
        count = sum(d["count"][i] for d in diagrams)
        if count:
            bins.append(ReliabilityBin(edges[i], edges[i + 1], count,
                                       sum(d["confidence_sum"][i] for d in diagrams) / count,
                                       sum(d["correct"][i] for d in diagrams) / count))
    return tuple(bins)


def _leader_row(machine: str, suite: str, payloads: list[dict[str, Any]], profile: ProfileModel | None,
                class_names: tuple[str, ...], compared: dict[str, Any] | None,
                latency: tuple[float | None, ...], budget: dict[str, Any] | None) -> LeaderRow:
    payloads = sorted(payloads, key=lambda p: p["seed"])
    model = payloads[0]["model"]
    baseline = payloads[0]["kind"] == "baseline"
    p50, throughput, batch, p90 = _cpu_latency(profile)
    key = slug(machine, suite, model["name"])
    steps = [p["metrics"].get("optimizer_steps") for p in payloads]
    converged = [p["metrics"].get("converged") for p in payloads]
    compared = compared or {}
    ci95 = Interval(*compared["ci95"]) if compared else None
    losses = [p["metrics"].get("final_train_loss") for p in payloads]
    intervals = {m: _seed_envelope(payloads, m) for m in METRICS}
    if ci95 is not None:
        intervals["balanced_accuracy"] = ci95
    return LeaderRow(
        model=model["name"],
        scale=model["scale"],
        params=profile.params if profile else model["params"],
        gmacs=profile.gmacs if profile else model.get("gmacs"),
        seeds=tuple(p["seed"] for p in payloads),
        metrics={m: mean_std(_metric_value(p, m) for p in payloads) for m in METRICS},
        cpu_p50_ms=p50,
        cpu_p90_ms=p90,
        throughput_images_per_s=throughput,
        throughput_batch=batch,
        per_class=_per_class(payloads, class_names),
        confusion=_summed_confusion(payloads),
        curves=() if baseline else tuple(_curve(p) for p in payloads),
        curves_chart=f"curves-{key}",
        confusion_chart=f"confusion-{key}",
        baseline=baseline,
        optimizer_steps=mean_std(steps).mean if None not in steps else None,
        best_epochs=tuple(p["metrics"].get("best_epoch") for p in payloads),
        converged=None if baseline else compared.get("converged", None if None in converged else all(converged)),
        plateaued=None if baseline else compared.get("plateaued"),
        budget_gain=budget["gain"] if budget else None,
        budget_limited=compared.get("budget_limited"),
        final_train_loss=None if baseline or None in losses else mean_std(losses),
        ci95=ci95,
        ci95_images=Interval(*compared["ci95_images"]) if "ci95_images" in compared else None,
        seed_sd=compared.get("seed_sd"),
        expected=compared.get("expected", False),
        tied_with_best=compared.get("tied_with_best"),
        p_holm=(compared.get("vs_best") or {}).get("p_holm"),
        better_than_pixel=compared.get("better_than_pixel_baseline") if not baseline else None,
        diagnosis=None if baseline else _diagnosis(payloads, len(class_names)),
        caveat=MODEL_CAVEATS.get(model["name"]),
        intervals=intervals,
        interval_kind={m: "exact" if compared.get("expected") else
                       "seeds × images" if m == "balanced_accuracy" and ci95 else "seed envelope" for m in METRICS},
        latency_p50_ms=latency,
        reliability=() if baseline else _pooled_reliability(payloads),
    )


def _recipe(config: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The training settings a reader needs to judge the numbers, as recorded in the suite config."""
    train, data = config.get("train") or {}, config.get("data") or {}
    plateau = train.get("schedule") == "plateau"
    shown = [("image size (px)", data.get("image_size")),
             ("LR schedule", "constant until a validation plateau, then a cosine decay" if plateau else
              "cosine over the cap" if train else None),
             ("epochs (cap)", train.get("epochs")), ("warm-up epochs", train.get("warmup_epochs")),
             ("decay after the plateau (epochs)", train.get("decay_epochs") if plateau else None),
             ("cool-down epochs", None if plateau else train.get("cooldown_epochs")),
             ("final LR (share of peak)", train.get("min_lr_ratio")),
             ("plateau patience (epochs)", train.get("patience")),
             ("smallest val gain that counts", train.get("min_delta")),
             ("earliest plateau (epoch)" if plateau else "earliest stop (epoch)", train.get("min_epochs")),
             ("batch size", train.get("batch_size")), ("learning rate", train.get("lr")),
             ("weight decay", train.get("weight_decay")), ("class balancing", train.get("balance")),
             ("augmentation", train.get("augment")), ("bootstrap resamples", train.get("bootstrap"))]
    return tuple((k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in shown if v is not None)


def _diagnosis(payloads: list[dict[str, Any]], num_classes: int) -> str | None:
    """Why a model may fall short, in words computed from its curves: how far the training loss
    fell from chance, and whether validation was still rising."""
    curves = [p["metrics"].get("curves") for p in payloads]
    if not all(c and c.get("train_loss") for c in curves) or num_classes < 2:
        return None
    chance = math.log(num_classes)
    first = statistics.fmean(c["train_loss"][0] for c in curves)
    last = statistics.fmean(c["train_loss"][-1] for c in curves)
    rising = any(p["metrics"].get("converged") is False for p in payloads)
    learned = ("barely learned" if last > 0.75 * chance else
               "learned slowly" if last > 0.4 * chance else "fit its training images")
    return (f"its training loss fell from {first:.2f} to {last:.2f} (chance: ln {num_classes} = {chance:.2f}), "
            f"so it {learned}; validation {'was still rising at the epoch cap' if rising else 'had stopped improving'}")


SKIPPED_SHOWN = 50  # the site lists this many skipped files; the result files hold them all


def _skipped(payloads: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    """The unreadable files the suite's runs skipped, each once (every run loads the same dataset)."""
    seen: dict[str, str] = {}
    for p in payloads:
        for entry in p["dataset"].get("skipped_files") or ():
            seen.setdefault(entry["path"], entry["reason"])
    return tuple(sorted(seen.items()))[:SKIPPED_SHOWN]


def _budget_rows(budget: dict[str, Any]) -> tuple[BudgetRow, ...]:
    return tuple(BudgetRow(name, b["epochs_cap"], b["epochs_run"], b["val_balanced_accuracy"], b.get("decay_trigger"),
                           b["doubled_epochs_cap"], b["doubled_epochs_run"], b["doubled_val_balanced_accuracy"],
                           b["gain"], b["budget_limited"],
                           Interval(*b["gain_ci95"]) if b.get("gain_ci95") else None)
                 for name, b in sorted((budget.get("models") or {}).items()))


def _half_widths(rows: list[LeaderRow]) -> Interval | None:
    """The narrowest and widest half-width of the models' 95% intervals (as the comparison gave them)."""
    widths = [(r.ci95.hi - r.ci95.lo) / 2 for r in rows if r.ci95 is not None]
    return Interval(min(widths), max(widths)) if widths else None


def _sort_key(row: LeaderRow) -> tuple[Any, ...]:
    acc = row.ci95 and (row.ci95.lo + row.ci95.hi) / 2
    return (row.baseline, -(row.metrics["balanced_accuracy"].mean or 0.0), acc or 0.0, row.model)


def train_groups(scored: list[LoadedResult], comparisons: list[LoadedResult],
                 profiles: dict[tuple[str, str, str], ProfileModel]) -> tuple[TrainGroup, ...]:
    """One leaderboard per (machine, suite) that has train results, paper-scale suites first;
    baselines join as reference rows."""
    by_group: dict[tuple[str, str], dict[str, list[LoadedResult]]] = defaultdict(lambda: defaultdict(list))
    for r in scored:
        by_group[(r.machine_id, r.payload["suite"])][model_name(r.payload)].append(r)
    comparison = {(r.machine_id, r.payload["suite"]): r for r in comparisons}
    groups = []
    profiled = defaultdict(set)
    for machine, suite, _ in profiles:
        profiled[suite].add(machine)
    for (machine, suite), models in sorted(by_group.items()):
        payloads = [r.payload for runs in models.values() for r in runs]
        trained = [p for p in payloads if p["kind"] == "train"]
        if not trained:
            continue
        first = min(trained, key=lambda p: (model_name(p), p["seed"]))
        class_names = tuple(first["dataset"].get("class_names") or ())
        compared_result = comparison.get((machine, suite))
        compared = compared_result.payload["metrics"] if compared_result else None
        budget = (compared or {}).get("budget") or {}
        rows = []
        for name, runs in sorted(models.items()):
            with reading(runs[0].path):
                entry = compared["models"].get(name) if compared else None
                latency = tuple(batch1_latency(profiles.get((m, suite, name))) for m in sorted(profiled[suite]))
                rows.append(_leader_row(machine, suite, [r.payload for r in runs],
                                        profiles.get((machine, suite, name)), class_names, entry, latency,
                                        (budget.get("models") or {}).get(name)))
        rows.sort(key=_sort_key)
        key = slug(machine, suite)
        models_only = [r for r in rows if not r.baseline]
        groups.append(TrainGroup(
            machine=machine,
            suite=suite,
            dataset=first["dataset"]["name"],
            synthetic=any(p["dataset"]["synthetic"] for p in payloads),
            class_names=class_names,
            recipe=_recipe(first["config"]),
            rows=tuple(models_only),
            baselines=tuple(r for r in rows if r.baseline),
            best=compared["best"] if compared else None,
            num_test=compared["num_test"] if compared else None,
            n_resamples=compared["n_resamples"] if compared else None,
            pixel_baseline=compared.get("reference") if compared else None,
            acc_gmacs_chart=f"acc-gmacs-{key}" if any(r.gmacs is not None for r in models_only) else None,
            acc_latency_chart=f"acc-latency-{key}" if any(r.cpu_p50_ms is not None for r in models_only) else None,
            latency_machines=tuple(sorted(profiled[suite])),
            acc_params_chart=f"acc-params-{key}" if any(r.params is not None for r in models_only) else None,
            metrics_chart=f"metrics-{key}",
            per_class_chart=f"per-class-{key}" if any(r.per_class for r in models_only) else None,
            calibration_chart=f"calibration-{key}" if any(r.reliability for r in models_only) else None,
            skipped_count=max((p["dataset"].get("skipped_count") or 0 for p in payloads), default=0),
            skipped_files=_skipped(payloads),
            scale=first["model"]["scale"],
            image_size=first["model"].get("image_size"),
            budget=_budget_rows(budget),
            budget_factor=budget.get("factor"),
            budget_delta=budget.get("delta"),
            half_widths=_half_widths(models_only),
        ))
    # the paper-scale study is the headline wherever it ran; the quick suite is its companion
    return tuple(sorted(groups, key=lambda g: (g.scale != "paper", g.machine, g.suite)))
