"""The explain stage's suite summary: models compared per method and score, flagged methods, the
lead pair, and whether the scores agree with each other.

- **best and tied**: per method and score, the best model and every model tied with it (a paired
  bootstrap of the per-image difference on the same images contains zero; for the curve scores,
  on the images both models read clean, ``bench.explain.removal``);
- **flagged methods**: a method that fails the sanity checks for any model is flagged for all
  (``bench.explain.sanity``): its scores are shown, but it never leads;
- **lead**: the model–method pair the page may lead with: the highest pointing game among
  unflagged methods whose pointing game beats the strongest model-free baseline (paired
  bootstrap, ``bench.explain.faithfulness``); none when no pair qualifies;
- **metric correlations**: Spearman's ρ between every two scores over all model–method pairs
  (do the scores rank the pairs the same way?);
- **across seeds** (where ``explain.seeds`` names more than one): each score as the mean over the
  explained checkpoints, with a 95% interval from a two-level bootstrap (seeds, then the same
  images), so that it includes seed variation, beside the explained checkpoints' mean accuracy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bench.core import env
from bench.core.config import SuiteConfig
from bench.explain.attribution import METHODS
from bench.explain.faithfulness import SCORES
from bench.explain.scores import paired_tied, spearman
from bench.results.records import RunPaths, fingerprint, payload
from bench.results.store import load_result, result_path, write_result


def flagged_methods(results: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Method → the models for which it fails the sanity checks (only methods that fail somewhere)."""
    out: dict[str, list[str]] = {}
    for model, metrics in sorted(results.items()):
        for method, record in ((metrics.get("sanity") or {}).get("methods") or {}).items():
            if record.get("passed") is False:
                out.setdefault(method, []).append(model)
    return out


def lead_pair(results: dict[str, dict[str, Any]], flagged: dict[str, list[str]]) -> dict[str, Any] | None:
    candidates = []
    for model, metrics in sorted(results.items()):
        for method, s in metrics["faithfulness"]["scores"].items():
            verdict = s.get("vs_strongest_baseline", {}).get("pointing_game", {})
            if method not in flagged and verdict.get("beats"):
                candidates.append((s["pointing_game"]["value"], model, method))
    if not candidates:
        return None
    value, model, method = max(candidates)
    return {"model": model, "method": method, "pointing_game": value}


def metric_correlations(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Spearman's ρ between the scores over every model–method pair."""
    pairs = [(m, meth) for m in sorted(results) for meth in METHODS if meth in results[m]["faithfulness"]["scores"]]
    values = {score: np.array([results[m]["faithfulness"]["scores"][meth][score]["value"] for m, meth in pairs],
                              dtype=np.float64) for score in SCORES}
    matrix = [[1.0 if a == b else spearman(values[a], values[b]) for b in SCORES] for a in SCORES]
    return {"scores": list(SCORES), "pairs": len(pairs), "spearman": matrix}


def two_level_interval(per_seed: np.ndarray, n_resamples: int, seed: int) -> tuple[float, float, float]:
    """(mean, 2.5th, 97.5th percentile) of the mean of a (seeds × images) table, resampling seeds
    and then images (the same images for every seed, as the stage scores them)."""
    table = np.asarray(per_seed, dtype=np.float64)  # NaN: a cell not scored (``bench.explain.scores``)
    rng = np.random.default_rng(seed)
    n_seeds, n_images = table.shape
    means = np.empty(n_resamples)
    with np.errstate(all="ignore"):
        for b in range(n_resamples):
            sample = table[rng.integers(0, n_seeds, n_seeds)][:, rng.integers(0, n_images, n_images)]
            means[b] = np.nanmean(sample) if not np.isnan(sample).all() else np.nan
    lo, hi = np.nanpercentile(means, [2.5, 97.5])
    return float(np.nanmean(table)), float(lo), float(hi)


def across_seeds(by_seed: dict[str, dict[int, dict[str, Any]]], bootstrap: int, seed: int) -> dict[str, Any]:
    """Per model explained at two or more seeds: each method's scores over its seeds."""
    out: dict[str, Any] = {}
    for model, runs in sorted(by_seed.items()):
        seeds = sorted(runs)
        if len(seeds) < 2:
            continue
        accuracy = [runs[s].get("explained_checkpoint", {}).get("balanced_accuracy") for s in seeds]
        entry: dict[str, Any] = {"seeds": seeds, "balanced_accuracy": float(np.mean(accuracy))
                                 if all(a is not None for a in accuracy) else None, "methods": {}}
        for k, method in enumerate(METHODS):
            scores = [runs[s]["faithfulness"]["scores"].get(method) for s in seeds]
            if any(sc is None for sc in scores):
                continue
            entry["methods"][method] = {}
            for j, score in enumerate(SCORES):
                table = np.array([sc["per_image"][score] for sc in scores], dtype=np.float64)  # None → NaN
                value, lo, hi = two_level_interval(table, bootstrap, seed + 100 * k + j)
                entry["methods"][method][score] = {"value": value, "ci95": [lo, hi],
                                                   "per_seed": [float(np.nanmean(row)) for row in table]}
        out[model] = entry
    return out


def compare_models(results: dict[str, dict[str, Any]], bootstrap: int, seed: int) -> dict[str, Any]:
    """Per method and score: the best model and those tied with it."""
    summary: dict[str, Any] = {}
    for method in METHODS:
        for score in SCORES:
            values = {m: np.asarray(r["faithfulness"]["scores"][method]["per_image"][score], dtype=np.float64)
                      for m, r in results.items() if method in r["faithfulness"]["scores"]}
            values = {m: v for m, v in values.items() if not np.isnan(v).all()}  # None → NaN: not scored
            if not values:
                continue
            best = max(sorted(values), key=lambda m: np.nanmean(values[m]))
            summary.setdefault(method, {})[score] = {
                "best": best,
                "tied_with_best": sorted(m for m in values if m != best and
                                         paired_tied(values[m], values[best], bootstrap, seed)),
            }
    return summary


def summarise(suite: SuiteConfig, paths: RunPaths, results: list[Path]) -> Path | None:
    """Write the suite's ``explain.json`` from the models' explain results (None without scores)."""
    scored: dict[str, dict[str, Any]] = {}
    by_seed: dict[str, dict[int, dict[str, Any]]] = {}
    for path in results:
        r = load_result(path)
        if r["error"] is None and r["metrics"].get("faithfulness"):
            by_seed.setdefault(r["model"]["name"], {})[r["seed"]] = r["metrics"]
            if r["config"].get("primary", True):
                scored[r["model"]["name"]] = r["metrics"]
    if not scored:
        return None
    cfg = suite.explain
    flagged = flagged_methods(scored)
    beats = {score: sum(1 for r in scored.values() for s in r["faithfulness"]["scores"].values()
                        if s["vs_strongest_baseline"].get(score, {}).get("beats")) for score in SCORES}
    metrics = {
        "comparison": compare_models(scored, cfg.bootstrap, cfg.seed),
        "flagged_methods": flagged,
        "lead": lead_pair(scored, flagged),
        "beats_strongest_baseline": beats,
        "pairs": sum(len(r["faithfulness"]["scores"]) for r in scored.values()),
        "metric_correlations": metric_correlations(scored),
        "across_seeds": across_seeds(by_seed, cfg.bootstrap, cfg.seed),
        "explain_time_s": round(sum(m.get("explain_time_s") or 0.0 for runs in by_seed.values()
                                    for m in runs.values()), 3),
    }
    out = result_path(paths.results, env.machine_info()["id"], suite.name, "explain", None, None)
    config = {"models": sorted(scored), "bootstrap": cfg.bootstrap, "seed": cfg.seed}
    config["fingerprint"] = fingerprint({**config, "inputs": [load_result(p)["config"]["fingerprint"] for p in results]})
    write_result(out, payload("explain", suite.name, None, None, config, metrics))
    return out
