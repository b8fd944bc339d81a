"""The comparison stage: which models a suite's test split can tell apart.

Reads the train and baseline results of one (machine, suite), which carry their test
predictions, and writes ``comparison.json``:

- per model, the across-seed mean balanced accuracy with a 95% interval from a bootstrap
  over seeds and test images together (:func:`bench.core.stats.seed_image_bootstrap`, seed
  draws corrected for few seeds), the images-only interval and the seed standard deviation;
- the best model, and for every other one the paired bootstrap of its difference from the
  best on the same test images; ``tied_with_best`` unless its p-value, adjusted by Holm
  over every comparison with the best, is at most 0.05;
- against the pixel baseline, the same paired test, and ``better_than_pixel_baseline``
  when the two 95% intervals do not overlap and the model's mean is the higher;
- the budget study (``medbench budget``): each model's first seed with a recipe twice as
  long, its validation score beside the suite's, and ``budget_limited`` when doubling
  gained more than the suite's ``min_delta``;
- whether a model converged: every seed reached a validation plateau that began its LR
  decay, and the budget study (where run) found no gain above ``min_delta``.

``split="val"`` compares the chosen weights' validation predictions instead (a leaderboard
for choices that must not read the test split); baselines have none and are left out.

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


SPLITS = ("test", "val")


def expected_fingerprints(suite: SuiteConfig) -> set[str]:
    """The config fingerprints of the suite's own runs: its models × seeds, its baselines, and
    its budget-study runs."""
    from bench.stages.baseline_run import baseline_fingerprint
    from bench.stages.baselines import BASELINES
    from bench.stages.schedule import budget_suite
    from bench.stages.train import config_fingerprint

    return ({config_fingerprint(suite, m, s) for m in suite.models for s in suite.seeds}
            | {baseline_fingerprint(suite, name, suite.seeds[0]) for name in BASELINES}
            | {config_fingerprint(budget_suite(suite), m, suite.seeds[0]) for m in suite.models})


def scored_results(results_dir: Path, expected: set[str] | None = None, split: str = "test",
                   kinds: tuple[str, ...] = ("train", "baseline")) -> list[tuple[Path, dict[str, Any]]]:
    """Error-free results of these kinds that carry predictions on ``split``; with ``expected``,
    only those made with one of these config fingerprints (the others are named and left out:
    another recipe, a model or seed no longer in the suite)."""
    scored = []
    for path in sorted(results_dir.glob("*.json")):
        if not path.name.startswith(tuple(f"{kind}__" for kind in kinds)):
            continue
        try:
            result = load_result(path)
        except ResultError as exc:
            log.warning("%s; left out of the comparison", exc)
            continue
        metrics = result["metrics"]
        preds, labels = f"{split}_predictions", f"{split}_labels"
        expected_values = metrics.get("expected") is True and split == "test"  # exact: nothing to resample
        if result["error"] is not None or labels not in metrics or preds not in metrics and not expected_values:
            continue
        if expected is not None and result["config"].get("fingerprint") not in expected:
            log.warning("%s was made with another config than the suite's; left out of the comparison", path)
            continue
        if not expected_values and len(metrics[preds]) != len(metrics[labels]):
            raise ComparisonError(f"{path}: {len(metrics[preds])} {split} predictions for "
                                  f"{len(metrics[labels])} {split} labels")
        scored.append((path, result))
    return scored


def gather_predictions(scored: list[tuple[Path, dict[str, Any]]],
                       split: str = "test") -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per entry, its (seeds, images) predictions on ``split``, and the labels they all share."""
    labels: np.ndarray | None = None
    by_name: dict[str, list[tuple[int, list[int]]]] = {}
    for path, result in scored:
        these = np.asarray(result["metrics"][f"{split}_labels"], dtype=np.int64)
        if labels is None:
            labels = these
        elif not np.array_equal(labels, these):
            raise ComparisonError(f"{path}: scored on another {split} split than the other results of its suite; "
                                  "re-run it on the suite's current dataset")
        by_name.setdefault(result["model"]["name"], []).append((result["seed"], result["metrics"][f"{split}_predictions"]))
    if labels is None:
        raise ComparisonError(f"no result with {split} predictions to compare")
    preds = {name: np.asarray([p for _, p in sorted(runs)], dtype=np.int64) for name, runs in by_name.items()}
    return preds, labels


METHOD = ("balanced accuracy; interval: bootstrap over seeds and images together, each resample's seed draw "
          "stretched by sqrt(S/(S-1)) so that few seeds do not shrink the seed variance; tie with the best: "
          "paired bootstrap p-value of the difference, Holm-adjusted over every comparison with the best, above 0.05")


def compare_results(scored: list[tuple[Path, dict[str, Any]]], n_resamples: int, seed: int = 0,
                    split: str = "test", budget: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``metrics`` of a comparison result (see the module docstring)."""
    from bench.core.stats import compare_models

    exact = [(path, r) for path, r in scored if r["metrics"].get("expected") is True]
    preds, labels = gather_predictions([item for item in scored if item not in exact], split)
    runs: dict[str, list[dict[str, Any]]] = {}
    for _, result in scored:
        runs.setdefault(result["model"]["name"], []).append(result)
    reference = PIXEL_BASELINE if PIXEL_BASELINE in preds else None
    trained = [name for name, group in runs.items() if group[0]["kind"] == "train"]
    compared = compare_models(preds, labels, n_resamples=n_resamples, seed=seed, reference=reference,
                              candidates=trained)
    for _, result in exact:  # a baseline scored by its expected values: a line, not a sample
        value = result["metrics"]["balanced_accuracy"]["value"]
        compared["models"][result["model"]["name"]] = {
            "mean": value, "ci95": [value, value], "ci95_images": [value, value], "seed_sd": None, "num_seeds": 1,
            "is_best": False, "tied_with_best": False, "expected": True}
    for name, entry in compared["models"].items():
        group = runs[name]
        entry["baseline"] = group[0]["kind"] == "baseline"
        entry["seeds"] = sorted(r["seed"] for r in group)
        if not entry["baseline"]:
            entry["plateaued"] = all(r["metrics"].get("converged") is True for r in group)
            checked = (budget or {}).get("models", {}).get(name)
            entry["budget_limited"] = None if checked is None else checked["budget_limited"]
            entry["converged"] = entry["plateaued"] and entry["budget_limited"] is not True
            entry["final_train_loss"] = [r["metrics"].get("final_train_loss") for r in sorted(group, key=_seed)]
        if "ci_overlaps_reference" in entry:  # the leaderboard's rule: intervals apart, and above
            entry["better_than_pixel_baseline"] = (not entry["ci_overlaps_reference"]
                                                   and entry["mean"] > compared["models"][reference]["mean"])
    return {**compared, "n_resamples": n_resamples, "num_test": int(len(labels)), "reference": reference,
            "split": split, "budget": budget, "method": METHOD}


def _seed(result: dict[str, Any]) -> int:
    return result["seed"]


def _best_val(result: dict[str, Any]) -> float:
    """The chosen weights' validation balanced accuracy: what the run selected them on."""
    from bench.core.stats import balanced_accuracy

    m = result["metrics"]
    return balanced_accuracy(np.asarray(m["val_predictions"]), np.asarray(m["val_labels"]))


def budget_study(scored: list[tuple[Path, dict[str, Any]]], delta: float, n_resamples: int = 1000
                 ) -> dict[str, Any] | None:
    """Each model's budget-study run beside the suite run of the same seed: the validation
    score under the recipe and under one twice as long, the gain with a paired 95% interval
    over the validation images (both runs predict the same images), and ``budget_limited`` when
    the gain is above ``delta``. None when no budget-study run exists."""
    from bench.core.stats import paired_difference
    from bench.stages.schedule import BUDGET_FACTOR

    runs = {(r["kind"], r["model"]["name"], r["seed"]): r for _, r in scored}
    models = {}
    for (kind, name, seed), doubled in sorted(runs.items()):
        base = runs.get(("train", name, seed))
        if kind != "budget" or base is None:
            continue
        b, d = base["metrics"], doubled["metrics"]
        gain = _best_val(doubled) - _best_val(base)
        paired = paired_difference(np.asarray([d["val_predictions"]]), np.asarray([b["val_predictions"]]),
                                   np.asarray(b["val_labels"]), n_resamples, seed=0)
        models[name] = {
            "seed": seed,
            "epochs_cap": b["max_epochs"], "val_balanced_accuracy": round(_best_val(base), 6),
            "epochs_run": b["epochs_run"], "decay_trigger": b.get("decay_trigger"),
            "doubled_epochs_cap": d["max_epochs"], "doubled_val_balanced_accuracy": round(_best_val(doubled), 6),
            "doubled_epochs_run": d["epochs_run"], "doubled_decay_trigger": d.get("decay_trigger"),
            "gain": round(gain, 6), "gain_ci95": [paired["lo"], paired["hi"]], "budget_limited": bool(gain > delta),
        }
    return {"factor": BUDGET_FACTOR, "delta": delta, "models": models} if models else None


def compare_suite(suite: SuiteConfig, paths: RunPaths, force: bool = False) -> Path | None:
    """Write ``comparison.json`` for this machine's results of ``suite``; None when nothing is scored."""
    machine_id = env.machine_info()["id"]
    out = result_path(paths.results, machine_id, suite.name, "comparison", None, None)
    with exclusive_lock(paths.lock_for(out)):
        expected = expected_fingerprints(suite)
        scored = scored_results(out.parent, expected)
        if not scored:
            log.info("no scored results under %s; nothing to compare", out.parent)
            return None
        budget_runs = scored_results(out.parent, expected, split="val", kinds=("budget",))
        n_resamples = max(suite.train.bootstrap, 100)
        inputs = fingerprint([n_resamples, sorted((p.name, r["config"].get("fingerprint"), r["created_utc"])
                                                  for p, r in scored + budget_runs)])
        if not force and is_done(out, inputs):
            log.info("skip comparison: %s is up to date", out)
            return out
        budget = budget_study(scored + budget_runs, delta=suite.train.min_delta, n_resamples=n_resamples)
        metrics = compare_results(scored, n_resamples=n_resamples, seed=0, budget=budget)
        config = {"suite": suite.name, "fingerprint": inputs, "inputs": [p.name for p, _ in scored],
                  "budget_inputs": [p.name for p, _ in budget_runs]}
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


def validation_comparison(path: Path) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The comparison's trained models compared on their validation predictions instead (for
    choices that must not read the test split); baselines, which have none, are left out."""
    comparison, runs = load_comparison(path)
    scored = [(Path(path).parent / name, r) for name in comparison["config"]["inputs"]
              for r in [load_result(Path(path).parent / name)]
              if r["kind"] == "train" and "val_predictions" in r["metrics"]]
    if not scored:
        raise ComparisonError(f"{path}: its runs carry no validation predictions; re-run them with this version")
    metrics = compare_results(scored, n_resamples=comparison["metrics"]["n_resamples"], split="val",
                              budget=comparison["metrics"].get("budget"))
    return {**comparison, "metrics": metrics}, {name: group for name, group in runs.items() if name in metrics["models"]}


def _converged_cell(entry: dict[str, Any], budget: dict[str, Any] | None) -> str:
    if entry.get("budget_limited"):
        gain = budget["models"][entry["name"]]["gain"] if budget else None
        return f"**budget-limited** (+{gain:.3f})" if gain is not None else "**budget-limited**"
    if not entry.get("plateaued", entry.get("converged")):
        return "**no** (cap)"
    return "yes" if entry.get("budget_limited") is False else "yes (budget unchecked)"


def leaderboard_markdown(comparison: dict[str, Any], runs: dict[str, list[dict[str, Any]]]) -> str:
    """The comparison as a Markdown table (the README's), models first, best mean first.

    ``runs`` maps a name to its train or baseline results, for steps, best epochs and losses.
    """
    metrics = comparison["metrics"]
    models, budget = metrics["models"], metrics.get("budget")
    order = sorted(models, key=lambda n: (models[n].get("baseline", False), -models[n]["mean"], n))
    split = metrics.get("split", "test")
    lines = [f"| model | {split} balanced accuracy (mean ± seed SD) | 95% CI (seeds × images) | vs best (Holm) | "
             "seeds | optimizer steps | best epochs | final train loss | converged | beats pixel baseline |",
             "|---|---:|---|:-:|--:|--:|---|---|:-:|:-:|"]
    for name in order:
        entry, group = {**models[name], "name": name}, sorted(runs.get(name, []), key=_seed)
        lo, hi = entry["ci95"]
        sd = "" if entry.get("seed_sd") is None else f" ± {entry['seed_sd']:.3f}"
        if entry.get("baseline"):
            lines.append(f"| *{name}* (baseline) | {entry['mean']:.3f}{sd} | {lo:.3f}–{hi:.3f} | "
                         f"{'=' if entry['tied_with_best'] else '<'} | {entry['num_seeds']} | — | — | — | — | — |")
            continue
        steps = [str(r["metrics"].get("optimizer_steps")) for r in group]
        best = [str(r["metrics"].get("best_epoch")) for r in group]
        losses = [f"{r['metrics']['final_train_loss']:.2f}" for r in group
                  if r["metrics"].get("final_train_loss") is not None]
        mark = "best" if name == metrics["best"] else ("=" if entry["tied_with_best"] else "<")
        beats = {True: "yes", False: "**no**", None: "—"}[entry.get("better_than_pixel_baseline")]
        lines.append(f"| `{name}` | {entry['mean']:.3f}{sd} | {lo:.3f}–{hi:.3f} | {mark} | {entry['num_seeds']} | "
                     f"{' / '.join(steps)} | {' / '.join(best)} | {' / '.join(losses) or '—'} | "
                     f"{_converged_cell(entry, budget)} | {beats} |")
    return "\n".join(lines) + "\n"


def budget_markdown(comparison: dict[str, Any]) -> str:
    """The budget study as a Markdown table: validation balanced accuracy at budgets B and 2B."""
    budget = comparison["metrics"].get("budget")
    if not budget:
        return "No budget study: run `medbench budget` for this suite, then `medbench run --stages compare`.\n"
    lines = [f"| model | cap B (epochs) | epochs run | val at B | cap {budget['factor']}B | epochs run | "
             f"val at {budget['factor']}B | gain | gain 95% CI (paired, val images) | "
             f"budget-limited (gain > {budget['delta']}) |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|:-:|"]
    for name, row in sorted(budget["models"].items()):
        lines.append(f"| `{name}` | {row['epochs_cap']} | {row['epochs_run']} | {row['val_balanced_accuracy']:.3f} | "
                     f"{row['doubled_epochs_cap']} | {row['doubled_epochs_run']} | "
                     f"{row['doubled_val_balanced_accuracy']:.3f} | {row['gain']:+.3f} | {_ci(row.get('gain_ci95'))} | "
                     f"{'**yes**' if row['budget_limited'] else 'no'} |")
    return "\n".join(lines) + "\n"


def _ci(bounds: list[float] | None) -> str:
    return "—" if not bounds else f"{bounds[0]:+.3f} to {bounds[1]:+.3f}"
