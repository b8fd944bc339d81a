"""The comparison stage and the leaderboard marks it feeds: ties, a clear loser, the pixel baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.core.config import suite_from_dict
from bench.core.metrics import classification_report
from bench.results.records import RunPaths, payload
from bench.results.store import load_result, result_path, write_result
from bench.stages.compare import ComparisonError, compare_suite

CLASSES = ["a", "b", "c", "d"]
N_TEST = 800
MACHINE = "test-machine"


def _predictions(labels: np.ndarray, accuracy: float, rng: np.random.Generator) -> np.ndarray:
    """Each image right with probability ``accuracy``, else a random wrong class."""
    right = rng.random(len(labels)) < accuracy
    wrong = (labels + rng.integers(1, len(CLASSES), len(labels))) % len(CLASSES)
    return np.where(right, labels, wrong)


def _fingerprint(suite, kind: str, name: str, seed: int) -> str:
    from bench.stages.baseline_run import baseline_fingerprint
    from bench.stages.schedule import budget_suite
    from bench.stages.train import config_fingerprint

    if kind == "budget":
        return config_fingerprint(budget_suite(suite), name, seed)
    return config_fingerprint(suite, name, seed) if kind == "train" else baseline_fingerprint(suite, name, seed)


def _write(paths: RunPaths, kind: str, name: str, seed: int, preds: np.ndarray, labels: np.ndarray,
           suite=None, val: tuple[np.ndarray, np.ndarray] | None = None, **extra) -> Path:
    probs = np.full((len(labels), len(CLASSES)), 0.1)
    probs[np.arange(len(labels)), preds] = 0.7
    metrics = classification_report(probs, labels, CLASSES, n_bootstrap=20, seed=seed)
    metrics["test_labels"] = labels.tolist()
    if kind in ("train", "budget"):
        metrics.update({"curves": {"epoch": [1, 2, 3], "train_loss": [2.0, 1.5, 1.4], "val_loss": [2.0, 1.6, 1.6],
                                   "val_balanced_accuracy": [0.3, 0.6, 0.6]},
                        "best_epoch": 2, "epochs_run": 3, "max_epochs": 10, "patience": 1, "optimizer_steps": 30,
                        "converged": True, **extra})
    if val is not None:
        metrics["val_predictions"], metrics["val_labels"] = val[0].tolist(), val[1].tolist()
    model = {"name": name, "scale": "quick", "params": 10, "gmacs": None, "image_size": 32, "in_chans": 1,
             "num_classes": len(CLASSES)}
    out = result_path(paths.results, MACHINE, "cmp", kind, name, seed)
    config = {"fingerprint": _fingerprint(suite or SUITE, kind, name, seed)}
    write_result(out, payload(kind, "cmp", model, seed, config, metrics,
                              dataset={"name": "fixture", "synthetic": True, "class_names": CLASSES}))
    return out


SUITE = suite_from_dict({"name": "cmp", "scale": "quick", "models": ["model_a", "model_b", "model_c", "weak_model",
                                                                   "one", "two"],
                         "seeds": [0, 1], "train": {"bootstrap": 500}})


@pytest.fixture()
def suite():
    return SUITE


@pytest.fixture()
def compared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suite) -> tuple[RunPaths, dict]:
    """Two models of equal accuracy (tied), one clearly worse, and the pixel baseline below all."""
    monkeypatch.setenv("MEDBENCH_MACHINE_ID", MACHINE)
    paths = RunPaths(results=tmp_path / "results", checkpoints=tmp_path / "ckpt", artifacts=tmp_path / "art",
                     locks=tmp_path / "locks")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, len(CLASSES), N_TEST)
    for name, accuracy in (("model_a", 0.80), ("model_b", 0.80), ("model_c", 0.60)):
        for seed in (0, 1):
            _write(paths, "train", name, seed, _predictions(labels, accuracy, rng), labels)
    _write(paths, "baseline", "pixel_logreg", 0, _predictions(labels, 0.45, rng), labels)
    out = compare_suite(suite, paths)
    return paths, load_result(out)["metrics"]


def test_comparison_marks_ties_losers_and_the_pixel_baseline(compared) -> None:
    _, metrics = compared
    models = metrics["models"]
    assert metrics["best"] in ("model_a", "model_b")
    assert models["model_a"]["tied_with_best"] and models["model_b"]["tied_with_best"]
    assert not models["model_c"]["tied_with_best"]
    assert models["model_c"]["vs_best"]["hi"] < 0
    for name in ("model_a", "model_b", "model_c"):
        assert models[name]["better_than_pixel_baseline"] is True
        assert models[name]["converged"] is True
        lo, hi = models[name]["ci95"]
        assert lo < models[name]["mean"] < hi
    assert models["pixel_logreg"]["baseline"] is True


def test_comparison_never_picks_a_baseline_as_best(tmp_path, monkeypatch, suite) -> None:
    monkeypatch.setenv("MEDBENCH_MACHINE_ID", MACHINE)
    paths = RunPaths(results=tmp_path / "r", checkpoints=tmp_path / "c", artifacts=tmp_path / "a", locks=tmp_path / "l")
    rng = np.random.default_rng(1)
    labels = rng.integers(0, len(CLASSES), N_TEST)
    _write(paths, "train", "weak_model", 0, _predictions(labels, 0.3, rng), labels)
    _write(paths, "baseline", "pixel_logreg", 0, _predictions(labels, 0.6, rng), labels)
    metrics = load_result(compare_suite(suite, paths))["metrics"]
    assert metrics["best"] == "weak_model"
    assert metrics["models"]["weak_model"]["better_than_pixel_baseline"] is False


def test_results_on_different_test_splits_are_refused(tmp_path, monkeypatch, suite) -> None:
    monkeypatch.setenv("MEDBENCH_MACHINE_ID", MACHINE)
    paths = RunPaths(results=tmp_path / "r", checkpoints=tmp_path / "c", artifacts=tmp_path / "a", locks=tmp_path / "l")
    rng = np.random.default_rng(2)
    labels = rng.integers(0, len(CLASSES), N_TEST)
    _write(paths, "train", "one", 0, labels, labels)
    other = _write(paths, "train", "two", 0, labels[::-1].copy(), labels[::-1].copy())
    with pytest.raises(ComparisonError, match=other.name):
        compare_suite(suite, paths)


def test_leaderboard_shows_ties_baselines_and_the_across_seed_interval(compared, tmp_path) -> None:
    from bench.site.aggregate import build_context
    from bench.site.load import load_results
    from bench.site.render import render_pages

    paths, metrics = compared
    ctx = build_context(load_results(paths.results), [])
    [group] = ctx.train_groups
    rows = {r.model: r for r in group.rows}
    assert set(rows) == {"model_a", "model_b", "model_c"}
    assert [b.model for b in group.baselines] == ["pixel_logreg"]
    assert rows["model_a"].tied_with_best and rows["model_b"].tied_with_best
    assert rows["model_c"].tied_with_best is False
    assert (rows["model_c"].ci95.lo, rows["model_c"].ci95.hi) == tuple(metrics["models"]["model_c"]["ci95"])
    assert group.best == metrics["best"] and group.not_better_than_pixel == ()
    index = render_pages(ctx, Path(__file__).resolve().parents[2] / "templates")["index.md"]
    line = {name: next(ln for ln in index.splitlines() if ln.startswith(f"| [{name}](")) for name in rows}
    assert "| best |" in line[metrics["best"]]
    tied = next(n for n in ("model_a", "model_b") if n != metrics["best"])
    assert "| = |" in line[tied] and "| < |" in line["model_c"]
    assert "*pixel_logreg* (baseline)" in index and "tied with the best model" in index


def test_results_table_prints_the_leaderboard(compared) -> None:
    from bench.stages.compare import leaderboard_markdown, load_comparison

    paths, metrics = compared
    table = leaderboard_markdown(*load_comparison(next(paths.results.rglob("comparison.json")))).splitlines()
    assert table[0].startswith("| model | test balanced accuracy (mean ± seed SD) | 95% CI")
    rows = {line.split("|")[1].strip(): line for line in table[2:]}
    assert "| best |" in rows[f"`{metrics['best']}`"] and "| < |" in rows["`model_c`"]
    assert "| 30 / 30 | 2 / 2 | — | yes (budget unchecked) | yes |" in rows["`model_c`"]
    sd = metrics["models"]["model_c"]["seed_sd"]
    assert f"{metrics['models']['model_c']['mean']:.3f} ± {sd:.3f}" in rows["`model_c`"]
    assert list(rows)[-1] == "*pixel_logreg* (baseline)"


def test_budget_study_flags_a_model_that_gains_from_twice_the_cap(tmp_path, monkeypatch, suite) -> None:
    """Seed 0 of each model again with a recipe twice as long: a gain above min_delta flags the model
    budget-limited (not converged) with its gain; an equal score leaves it converged. The
    validation leaderboard ranks on the val predictions alone."""
    from bench.stages.compare import budget_markdown, leaderboard_markdown, load_comparison, validation_comparison

    monkeypatch.setenv("MEDBENCH_MACHINE_ID", MACHINE)
    suite = suite_from_dict({**SUITE.to_dict(), "models": ["steady", "hungry"], "seeds": [0],
                             "train": {"bootstrap": 200, "min_delta": 0.01}})
    paths = RunPaths(results=tmp_path / "r", checkpoints=tmp_path / "c", artifacts=tmp_path / "a", locks=tmp_path / "l")
    rng = np.random.default_rng(5)
    labels, val_labels = rng.integers(0, len(CLASSES), N_TEST), np.repeat(np.arange(len(CLASSES)), 100)
    steady_val, hungry_val = val_labels.copy(), val_labels.copy()
    steady_val[:40] = (val_labels[:40] + 1) % len(CLASSES)  # class 0: 60% right
    hungry_val[:80] = (val_labels[:80] + 1) % len(CLASSES)  # class 0: 20% right
    for name, val in (("steady", steady_val), ("hungry", hungry_val)):
        _write(paths, "train", name, 0, _predictions(labels, 0.7, rng), labels, suite=suite, val=(val, val_labels),
               final_train_loss=0.9)
    _write(paths, "budget", "steady", 0, _predictions(labels, 0.7, rng), labels, suite=suite,
           val=(steady_val, val_labels), max_epochs=20, epochs_run=3)
    _write(paths, "budget", "hungry", 0, _predictions(labels, 0.7, rng), labels, suite=suite,
           val=(steady_val, val_labels), max_epochs=20, epochs_run=9)
    out = compare_suite(suite, paths)
    metrics = load_result(out)["metrics"]
    budget = metrics["budget"]["models"]
    assert budget["steady"]["gain"] == 0 and budget["steady"]["budget_limited"] is False
    assert budget["hungry"]["gain"] == pytest.approx(0.1) and budget["hungry"]["budget_limited"] is True
    assert (budget["hungry"]["epochs_cap"], budget["hungry"]["doubled_epochs_cap"]) == (10, 20)
    # the gain's interval is paired over the same validation images: none for identical predictions,
    # clear of zero for 40 of 1,000 images changed within one class of ten
    assert budget["steady"]["gain_ci95"] == [0.0, 0.0]
    lo, hi = budget["hungry"]["gain_ci95"]
    assert 0 < lo < 0.1 < hi < 0.2
    assert metrics["models"]["steady"]["converged"] is True
    assert metrics["models"]["hungry"]["converged"] is False and metrics["models"]["hungry"]["plateaued"] is True
    rows = {line.split("|")[1].strip(): line for line in leaderboard_markdown(*load_comparison(out)).splitlines()[2:]}
    assert "**budget-limited** (+0.100)" in rows["`hungry`"] and "| yes |" in rows["`steady`"]
    assert (f"| `hungry` | 10 | 3 | 0.800 | 20 | 9 | 0.900 | +0.100 | {lo:+.3f} to {hi:+.3f} | **yes** |"
            in budget_markdown(load_result(out)))

    from bench.site.aggregate import build_context
    from bench.site.load import load_results
    from bench.site.render import render_pages

    pages = render_pages(build_context(load_results(paths.results), []),
                         Path(__file__).resolve().parents[2] / "templates")
    index, methods = (" ".join(pages[name].split()) for name in ("index.md", "methods.md"))
    assert "hungry](models/hungry.md) ⚠ budget-limited (+0.100)" in index
    assert ("⚠ **Budget-limited, 1 of 2 models**: trained twice as long ([budget study](methods.md#recipe)), each "
            "gained more than 0.01 balanced accuracy on validation: hungry (+0.100). Their places could move with "
            "more training.") in index
    assert "order among them here is the budget's" not in index  # one limited model has no order to change
    assert "steady](models/steady.md) ⚠" not in index
    assert (f"| [hungry](models/hungry.md) | 10 | 3 | — | 0.800 | 20 | 9 | 0.900 | +0.100 | {lo:+.3f} to {hi:+.3f} "
            f"| ⚠ budget-limited |") in methods
    assert ("| [steady](models/steady.md) | 10 | 3 | — | 0.900 | 20 | 3 | 0.900 | +0.000 | +0.000 to +0.000 "
            "| converged |") in methods
    assert "⚠ **Budget-limited**" in pages["models/hungry.md"] and "Converged:" in pages["models/steady.md"]

    val_comparison, _ = validation_comparison(out)
    val = val_comparison["metrics"]
    assert val["split"] == "val" and val["best"] == "steady" and val["num_test"] == len(val_labels)
    assert val["models"]["steady"]["mean"] == pytest.approx(0.9) and val["models"]["hungry"]["mean"] == pytest.approx(0.8)


def test_a_baseline_scored_by_expected_values_joins_as_an_exact_line(tmp_path, monkeypatch, suite) -> None:
    from bench.core.metrics import expected_uniform_report

    monkeypatch.setenv("MEDBENCH_MACHINE_ID", MACHINE)
    paths = RunPaths(results=tmp_path / "r", checkpoints=tmp_path / "c", artifacts=tmp_path / "a", locks=tmp_path / "l")
    rng = np.random.default_rng(4)
    labels = rng.integers(0, len(CLASSES), N_TEST)
    _write(paths, "train", "model_a", 0, _predictions(labels, 0.8, rng), labels)
    metrics = {**expected_uniform_report(labels, CLASSES), "test_labels": labels.tolist()}
    model = {"name": "chance_uniform", "scale": "quick", "params": 0, "gmacs": None, "image_size": 32, "in_chans": 1,
             "num_classes": len(CLASSES)}
    config = {"fingerprint": _fingerprint(SUITE, "baseline", "chance_uniform", 0)}
    write_result(result_path(paths.results, MACHINE, "cmp", "baseline", "chance_uniform", 0),
                 payload("baseline", "cmp", model, 0, config, metrics,
                         dataset={"name": "fixture", "synthetic": True, "class_names": CLASSES}))
    entry = load_result(compare_suite(suite, paths))["metrics"]["models"]["chance_uniform"]
    assert entry["mean"] == 0.25 and entry["ci95"] == [0.25, 0.25] and entry["expected"] is True
    assert entry["baseline"] is True and entry["tied_with_best"] is False


def test_only_the_suites_own_runs_are_compared(tmp_path, monkeypatch, suite) -> None:
    """A run made with another recipe (say --set train.epochs=2) or a model outside the suite
    is left out; a new input redoes the comparison, an unchanged set skips it."""
    import dataclasses

    monkeypatch.setenv("MEDBENCH_MACHINE_ID", MACHINE)
    paths = RunPaths(results=tmp_path / "r", checkpoints=tmp_path / "c", artifacts=tmp_path / "a", locks=tmp_path / "l")
    rng = np.random.default_rng(3)
    labels = rng.integers(0, len(CLASSES), N_TEST)
    _write(paths, "train", "model_a", 0, _predictions(labels, 0.8, rng), labels)
    other_recipe = dataclasses.replace(suite, train=dataclasses.replace(suite.train, epochs=2))
    _write(paths, "train", "model_b", 0, _predictions(labels, 0.9, rng), labels, suite=other_recipe)
    _write(paths, "train", "not_in_suite", 0, _predictions(labels, 0.9, rng), labels)
    out = compare_suite(suite, paths)
    first = load_result(out)
    assert set(first["metrics"]["models"]) == {"model_a"} and first["config"]["inputs"] == ["train__model_a__seed0.json"]
    written = out.stat().st_mtime_ns
    assert compare_suite(suite, paths).stat().st_mtime_ns == written  # unchanged inputs: skipped, not rewritten
    _write(paths, "train", "model_c", 0, _predictions(labels, 0.6, rng), labels)
    assert set(load_result(compare_suite(suite, paths))["metrics"]["models"]) == {"model_a", "model_c"}


def test_a_compare_only_run_needs_no_dataset(compared, monkeypatch) -> None:
    """Results merged from another machine are compared here without that machine's dataset."""
    from bench.cli import runner

    paths, metrics = compared
    out = result_path(paths.results, MACHINE, "cmp", "comparison", None, None)
    out.unlink()
    monkeypatch.setattr(runner, "load_dataset", lambda *a, **k: pytest.fail("a comparison loaded the dataset"))
    assert runner.run_suite(SUITE, stages=("compare",), paths=paths) == [out]
    assert load_result(out)["metrics"]["best"] == metrics["best"]


def test_the_order_among_budget_limited_models_is_called_the_budgets_when_twice_the_budget_changes_it() -> None:
    from types import SimpleNamespace

    from bench.site.context import BudgetRow, TrainGroup

    def changes(doubled: dict[str, float]) -> bool:
        limited = tuple(SimpleNamespace(model=m) for m in ("a", "b", "c"))
        budget = tuple(BudgetRow(m, 60, 30, val, "plateau", 120, 60, doubled[m], doubled[m] - val, True)
                       for m, val in (("a", 0.80), ("b", 0.75), ("c", 0.70), ("d", 0.60)))
        return TrainGroup.budget_order_changes.fget(SimpleNamespace(budget_limited=limited, budget=budget))

    assert changes({"a": 0.85, "b": 0.80, "c": 0.75, "d": 0.99}) is False  # d is not budget-limited
    assert changes({"a": 0.82, "b": 0.86, "c": 0.75, "d": 0.60}) is True
