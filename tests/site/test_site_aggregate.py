"""The context built from the golden results: seed aggregates, joins and labels are right."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.results.store import ResultError
from bench.site.aggregate import build_context
from bench.site.context import SiteContext, slug
from bench.site.leaderboard import mean_std
from bench.site.load import load_datasets, load_results

CPU, GPU = "cpu-fixture-2c", "gpu-nvidia-h200"


@pytest.fixture(scope="module")
def ctx(paths: SimpleNamespace) -> SiteContext:
    return build_context(load_results(paths.results), load_datasets(paths.artifacts))


def _train_file(paths: SimpleNamespace, model: str, seed: int) -> dict:
    return json.loads((paths.results / CPU / "quick" / f"train__{model}__seed{seed}.json").read_text())


def test_mean_std_is_across_seeds_with_sample_std() -> None:
    two = mean_std([0.8, 0.84])
    assert (two.mean, two.std, two.n) == (pytest.approx(0.82), pytest.approx(statistics.stdev([0.8, 0.84])), 2)
    one = mean_std([0.7, None])
    assert (one.mean, one.std, one.n) == (0.7, None, 1)
    assert mean_std([None]).mean is None


@pytest.mark.parametrize("model", ["pyramid_softmax", "pyramid_swin"])
def test_leaderboard_row_aggregates_seeds_and_joins_the_profile(ctx: SiteContext, paths: SimpleNamespace,
                                                                model: str) -> None:
    [group] = ctx.train_groups
    row = next(r for r in group.rows if r.model == model)
    runs = [_train_file(paths, model, seed) for seed in (0, 1)]
    assert row.seeds == (0, 1) and row.n_seeds == 2
    for metric in ("balanced_accuracy", "top1", "top5", "macro_auc", "cohen_kappa", "ece"):
        values = [run["metrics"][metric]["value"] for run in runs]
        assert row.metrics[metric].mean == pytest.approx(statistics.fmean(values))
        assert row.metrics[metric].std == pytest.approx(statistics.stdev(values))
    compared = json.loads((paths.results / CPU / "quick" / "comparison.json").read_text())["metrics"]["models"][model]
    assert (row.ci95.lo, row.ci95.hi) == tuple(compared["ci95"])  # read from the comparison, never recomputed
    assert row.tied_with_best is compared["tied_with_best"] and row.converged is True
    profile = json.loads((paths.results / CPU / "quick" / f"profile__{model}.json").read_text())
    batch1 = next(e for e in profile["metrics"]["latency"] if e["device"] == "cpu" and e["batch_size"] == 1)
    batch32 = next(e for e in profile["metrics"]["latency"] if e["batch_size"] == 32)
    assert row.params == profile["metrics"]["params"]
    assert row.gmacs == profile["metrics"]["gmacs"]
    assert row.cpu_p50_ms == batch1["p50_ms"]
    assert (row.throughput_images_per_s, row.throughput_batch) == (batch32["throughput_images_per_s"], 32)
    assert row.confusion == tuple(tuple(a + b for a, b in zip(r0, r1)) for r0, r1 in
                                  zip(runs[0]["metrics"]["confusion_matrix"], runs[1]["metrics"]["confusion_matrix"]))
    assert len(row.curves) == 2 and row.curves[1].seed == 1


def test_leaderboard_is_best_first_and_labelled_synthetic(ctx: SiteContext) -> None:
    [group] = ctx.train_groups
    assert (group.machine, group.suite, group.dataset) == (CPU, "quick", "synthetic-quick")
    assert [r.model for r in group.rows] == ["pyramid_softmax", "pyramid_swin"]
    assert group.synthetic and ctx.synthetic
    assert group.acc_gmacs_chart == f"acc-gmacs-{slug(CPU, 'quick')}"
    assert ("epochs (cap)", "5") in group.recipe


def test_failed_run_is_listed_not_dropped(ctx: SiteContext) -> None:
    [failed] = ctx.failed
    assert (failed.model, failed.seed, failed.stage) == ("pyramid_performer", 0, "train")
    assert failed.error_type == "FloatingPointError"
    assert "non-finite loss" in failed.message
    assert failed.file == f"{CPU}/quick/train__pyramid_performer__seed0.json"
    assert "pyramid_performer" not in [r.model for g in ctx.train_groups for r in g.rows]


def test_profiles_form_one_hardware_column_per_machine(ctx: SiteContext) -> None:
    [suite] = ctx.perf_suites
    assert [m.machine for m in suite.machines] == [CPU, GPU]
    assert suite.latency_chart == "latency-quick"
    gpu = suite.machines[1].profiles[0]
    assert {(r.device, r.dtype, r.batch_size) for r in gpu.latency} == {
        ("cuda", "float32", 1), ("cuda", "float32", 32), ("cuda", "bfloat16", 1), ("cuda", "bfloat16", 32)}
    swin = next(p for p in suite.machines[0].profiles if p.model == "pyramid_swin")
    assert [pt.status for pt in swin.sweep] == ["ok", "ok", "oom"] and swin.sweep[-1].p50_ms is None


def test_roofline_share_uses_the_machine_record_peak(ctx: SiteContext, paths: SimpleNamespace) -> None:
    [suite] = ctx.perf_suites
    cpu_roof = suite.machines[0].profiles[0].roofline
    achieved = json.loads((paths.results / CPU / "quick" / "profile__pyramid_softmax.json").read_text())[
        "metrics"]["roofline"]["achieved_gflops_per_s"]
    assert (cpu_roof.peak_gflops_per_s, cpu_roof.peak_source) == (160.0, "machine record")
    assert cpu_roof.share_of_peak == pytest.approx(achieved / 160.0)
    gpu_roof = suite.machines[1].profiles[0].roofline
    assert gpu_roof.peak_source == "profile" and gpu_roof.peak_gflops_per_s == 989_000.0


def test_attention_benchmark(ctx: SiteContext) -> None:
    [bench] = ctx.attention
    assert (bench.machine, bench.device, bench.channels) == (CPU, "cpu", 64)
    softmax = next(m for m in bench.modules if m.name == "softmax")
    assert softmax.slope == 1.93 and softmax.first_failure == "oom at N=16384" and softmax.largest_ok == 4096
    assert (softmax.fit_lo, softmax.fit_hi) == (256, 4096)
    assert [r.module for r in bench.reference] == ["linformer", "performer"]


def test_machines_models_and_param_spread(ctx: SiteContext) -> None:
    cpu = ctx.machines[0]
    assert (cpu.id, cpu.matmul_peaks, cpu.result_files) == (CPU, (("cpu:float32", 160.0),), 14)
    assert (cpu.first_utc, cpu.last_utc) == ("2025-11-19T10:00:00Z", "2025-11-22T10:00:00Z")
    assert ctx.machines[1].gpu == "NVIDIA H200"
    assert [m.name for m in ctx.models] == ["pyramid_performer", "pyramid_softmax", "pyramid_swin"]
    assert ctx.models[1].attention.startswith("global softmax")
    [spread] = ctx.param_spreads
    assert spread.spread == pytest.approx(1_497_810 / 1_482_346 - 1)


def test_dataset_counts_rules_and_samples(ctx: SiteContext) -> None:
    [ds] = ctx.datasets
    assert ds.synthetic and ds.builtin_generator and ds.splits == ("train", "val", "test")
    normal = next(c for c in ds.classes if c.name == "normal")
    assert normal.total == 1770 and sum(normal.counts) == 1770
    assert normal.sample == "assets/dataset/synthetic-quick/normal.png"
    assert all(c.rule for c in ds.classes)
    assert ("generator", "medvit-synthetic-brain v1") in ds.settings


def test_empty_inputs_give_an_empty_context() -> None:
    ctx = build_context([], [])
    assert not ctx.has_results and not ctx.synthetic and ctx.train_groups == () and ctx.datasets == ()


def test_a_result_missing_what_the_site_needs_names_its_file(results_copy: Path) -> None:
    path = results_copy / CPU / "quick" / "profile__pyramid_swin.json"
    payload = json.loads(path.read_text())
    del payload["metrics"]["roofline"]["achieved_gflops_per_s"]  # the schema does not look inside roofline
    path.write_text(json.dumps(payload))
    with pytest.raises(ResultError, match="cannot summarise it for the site") as info:
        build_context(load_results(results_copy), [])
    assert info.value.path == path


def test_a_paper_scale_suite_is_the_headline_wherever_it_ran(results_copy: Path) -> None:
    paper = results_copy / GPU / "paper"
    paper.mkdir(parents=True)
    for path in sorted((results_copy / CPU / "quick").glob("train__*.json")):
        payload = json.loads(path.read_text())
        payload["suite"], payload["model"]["scale"] = "paper", "paper"
        payload["machine"] = json.loads(next((results_copy / GPU / "quick").glob("*.json")).read_text())["machine"]
        (paper / path.name).write_text(json.dumps(payload))
    groups = build_context(load_results(results_copy), []).train_groups
    assert [(g.machine, g.suite, g.scale) for g in groups][0] == (GPU, "paper", "paper")
    assert [g.scale for g in groups[1:]] == ["quick"] * (len(groups) - 1) and len(groups) >= 2
