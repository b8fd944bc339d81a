"""The comparison stage: which models a suite's test split can tell apart.

Reads the train and baseline results of one (machine, suite), which carry their test
predictions, and writes ``comparison.json``:

- per model, the across-seed mean balanced accuracy with a 95% interval from a bootstrap
  over seeds and test images together (:func:`bench.core.stats.seed_image_bootstrap`);
- the best model, and for every other one the paired bootstrap of its difference from the
  best on the same test images; ``tied_with_best`` when that interval holds 0;
- against the pixel baseline, the same paired test, and ``better_than_pixel_baseline``
  when the two 95% intervals do not overlap and the model's mean is the higher;
- whether every seed of a model converged.

It reads results only, so it can be re-run on copied results without the dataset.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from bench.core import env
from bench.core.config import SuiteConfig
from bench.results.records import RunPaths, fingerprint, is_done, payload
from bench.results.store import ResultError, exclusive_lock, load_result, result_path, write_result

log = logging.getLogger(__name__)

PIXEL_BASELINE = "pixel_logreg"


class ComparisonError(ValueError):
    """The results of a suite cannot be compared (e.g. scored on different test splits)."""


def expected_fingerprints(suite: SuiteConfig) -> set[str]:
    """The config fingerprints of the suite's own runs: its models × seeds and its baselines."""
    from bench.stages.baseline_run import baseline_fingerprint
    from bench.stages.baselines import BASELINES
    from bench.stages.train import config_fingerprint

    return ({config_fingerprint(suite, m, s) for m in suite.models for s in suite.seeds}
            | {baseline_fingerprint(suite, name, suite.seeds[0]) for name in BASELINES})


def scored_results(results_dir: Path, expected: set[str] | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """Error-free train and baseline results that carry test predictions; with ``expected``,
    only those made with one of these config fingerprints (the others are named and left out:
    another recipe, a model or seed no longer in the suite)."""
    scored = []
    for path in sorted(results_dir.glob("*.json")):
        if not path.name.startswith(("train__", "baseline__")):
            continue
        try:
            result = load_result(path)
        except ResultError as exc:
            log.warning("%s; left out of the comparison", exc)
            continue
        metrics = result["metrics"]
        if result["error"] is not None or "test_predictions" not in metrics or "test_labels" not in metrics:
            continue
        if expected is not None and result["config"].get("fingerprint") not in expected:
            log.warning("%s was made with another config than the suite's; left out of the comparison", path)
            continue
        if len(metrics["test_predictions"]) != len(metrics["test_labels"]):
            raise ComparisonError(f"{path}: {len(metrics['test_predictions'])} test predictions for "
                                  f"{len(metrics['test_labels'])} test labels")
        scored.append((path, result))
    return scored


def gather_predictions(scored: list[tuple[Path, dict[str, Any]]]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per entry, its (seeds, test images) predictions, and the test labels they all share."""
    labels: np.ndarray | None = None
    by_name: dict[str, list[tuple[int, list[int]]]] = {}
    for path, result in scored:
        these = np.asarray(result["metrics"]["test_labels"], dtype=np.int64)
        if labels is None:
            labels = these
        elif not np.array_equal(labels, these):
            raise ComparisonError(f"{path}: scored on another test split than the other results of its suite; "
                                  "re-run it on the suite's current dataset")
        by_name.setdefault(result["model"]["name"], []).append((result["seed"], result["metrics"]["test_predictions"]))
    if labels is None:
        raise ComparisonError("no result with test predictions to compare")
    preds = {name: np.asarray([p for _, p in sorted(runs)], dtype=np.int64) for name, runs in by_name.items()}
    return preds, labels


def compare_results(scored: list[tuple[Path, dict[str, Any]]], n_resamples: int, seed: int = 0) -> dict[str, Any]:
    """The ``metrics`` of a comparison result (see the module docstring)."""
    from bench.core.stats import compare_models

    preds, labels = gather_predictions(scored)
    runs: dict[str, list[dict[str, Any]]] = {}
    for _, result in scored:
        runs.setdefault(result["model"]["name"], []).append(result)
    reference = PIXEL_BASELINE if PIXEL_BASELINE in preds else None
    trained = [name for name, group in runs.items() if group[0]["kind"] == "train"]
    compared = compare_models(preds, labels, n_resamples=n_resamples, seed=seed, reference=reference,
                              candidates=trained)
    for name, entry in compared["models"].items():
        group = runs[name]
        entry["baseline"] = group[0]["kind"] == "baseline"
        entry["seeds"] = sorted(r["seed"] for r in group)
        if not entry["baseline"]:
            entry["converged"] = all(r["metrics"].get("converged") is True for r in group)
        if "ci_overlaps_reference" in entry:  # the leaderboard's rule: intervals apart, and above
            entry["better_than_pixel_baseline"] = (not entry["ci_overlaps_reference"]
                                                   and entry["mean"] > compared["models"][reference]["mean"])
    return {**compared, "n_resamples": n_resamples, "num_test": int(len(labels)), "reference": reference,
            "method": "balanced accuracy; interval: bootstrap over seeds and test images together; "
                      "tie: 95% paired-bootstrap interval of the difference from the best holds 0"}


def compare_suite(suite: SuiteConfig, paths: RunPaths, force: bool = False) -> Path | None:
    """Write ``comparison.json`` for this machine's results of ``suite``; None when nothing is scored."""
    machine_id = env.machine_info()["id"]
    out = result_path(paths.results, machine_id, suite.name, "comparison", None, None)
    with exclusive_lock(paths.lock_for(out)):
        scored = scored_results(out.parent, expected_fingerprints(suite))
        if not scored:
            log.info("no scored results under %s; nothing to compare", out.parent)
            return None
        n_resamples = max(suite.train.bootstrap, 100)
        inputs = fingerprint([n_resamples, sorted((p.name, r["config"].get("fingerprint"), r["created_utc"])
                                                  for p, r in scored)])
        if not force and is_done(out, inputs):
            log.info("skip comparison: %s is up to date", out)
            return out
        metrics = compare_results(scored, n_resamples=n_resamples, seed=0)
        config = {"suite": suite.name, "fingerprint": inputs, "inputs": [p.name for p, _ in scored]}
        write_result(out, payload("comparison", suite.name, None, None, config, metrics))
        log.info("wrote %s (best: %s)", out, metrics["best"])
    return out


def load_comparison(path: Path) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """A comparison result and the train and baseline results it was computed from, by name."""
    comparison = load_result(path)
    runs: dict[str, list[dict[str, Any]]] = {}
    for name in comparison["config"]["inputs"]:
        result = load_result(Path(path).parent / name)
        runs.setdefault(result["model"]["name"], []).append(result)
    return comparison, runs


def leaderboard_markdown(comparison: dict[str, Any], runs: dict[str, list[dict[str, Any]]]) -> str:
    """The comparison as a Markdown table (the README's), models first, best mean first.

    ``runs`` maps a name to its train or baseline results, for steps and best epochs.
    """
    models = comparison["metrics"]["models"]
    order = sorted(models, key=lambda n: (models[n].get("baseline", False), -models[n]["mean"], n))
    lines = ["| model | balanced accuracy | 95% CI (seeds × images) | vs best | seeds | optimizer steps | "
             "best epochs | converged | beats pixel baseline |",
             "|---|---:|---|:-:|--:|--:|---|:-:|:-:|"]
    for name in order:
        entry, group = models[name], sorted(runs.get(name, []), key=lambda r: r["seed"])
        lo, hi = entry["ci95"]
        if entry.get("baseline"):
            lines.append(f"| *{name}* (baseline) | {entry['mean']:.3f} | {lo:.3f}–{hi:.3f} | "
                         f"{'=' if entry['tied_with_best'] else '<'} | {entry['num_seeds']} | — | — | — | — |")
            continue
        steps = [r["metrics"].get("optimizer_steps") for r in group]
        best = [str(r["metrics"].get("best_epoch")) for r in group]
        mark = "best" if name == comparison["metrics"]["best"] else ("=" if entry["tied_with_best"] else "<")
        beats = {True: "yes", False: "**no**", None: "—"}[entry.get("better_than_pixel_baseline")]
        lines.append(f"| `{name}` | {entry['mean']:.3f} | {lo:.3f}–{hi:.3f} | {mark} | {entry['num_seeds']} | "
                     f"{' / '.join(str(s) for s in steps)} | {' / '.join(best)} | "
                     f"{'yes' if entry.get('converged') else '**no**'} | {beats} |")
    return "\n".join(lines) + "\n"
