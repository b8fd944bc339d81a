"""Odd label sets end to end: two classes, a single-class test split, a class missing from train.

Each dataset is a CSV manifest of tiny PNGs whose brightness depends on the class, trained
for one epoch, then scored, compared and rendered. No written file may hold NaN or Infinity.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.cli.runner import run_suite
from bench.core.config import load_suite
from bench.data import DatasetError, load_dataset
from bench.results.records import RunPaths
from engine_helpers import REPO

pytestmark = pytest.mark.slow


def _manifest(root: Path, rows: list[tuple[str, str]]) -> Path:
    """``rows`` of (label, split): one 32-px PNG each, brighter for later classes."""
    rng = np.random.default_rng(0)
    names = sorted({label for label, _ in rows})
    lines = ["path,label,split"]
    for i, (label, split) in enumerate(rows):
        level = 60 + 120 * names.index(label) / max(1, len(names) - 1)
        pixels = np.clip(rng.normal(level, 25, (32, 32)), 0, 255).astype(np.uint8)
        (root / "img").mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / "img" / f"{i:04d}.png")
        lines.append(f"img/{i:04d}.png,{label},{split}")
    path = root / "manifest.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _suite_file(tmp: Path, manifest: Path) -> Path:
    path = tmp / "labels.toml"
    path.write_text(f"""
name = "labels"
scale = "quick"
models = ["pyramid_softmax"]
seeds = [0]
[data]
kind = "manifest"
root = "{manifest}"
image_size = 32
[train]
epochs = 2
patience = 1
batch_size = 16
warmup_epochs = 1
bootstrap = 50
""")
    return path


def _paths(root: Path) -> RunPaths:
    return RunPaths(results=root / "results", checkpoints=root / "ckpt", artifacts=root / "artifacts",
                    locks=root / "locks")


def _no_nan(path: Path) -> dict:
    def refuse(name: str) -> None:
        raise AssertionError(f"{path} holds {name}")

    return json.loads(path.read_text(), parse_constant=refuse)


def _run_and_render(tmp: Path, rows: list[tuple[str, str]], monkeypatch) -> dict[str, dict]:
    from bench.site.render import render_site

    monkeypatch.setenv("MEDBENCH_MACHINE_ID", "test-machine")
    suite = load_suite(str(_suite_file(tmp, _manifest(tmp / "data", rows))))
    paths = _paths(tmp)
    run_suite(suite, stages=("train", "baselines", "compare"), paths=paths, progress=False)
    results = {p.name: _no_nan(p) for p in sorted((tmp / "results").rglob("*.json"))}
    assert all(r["error"] is None for r in results.values()), {k: r["error"] for k, r in results.items()}
    render_site(paths.results, paths.artifacts, REPO / "templates", tmp / "site_src")
    index = (tmp / "site_src" / "index.md").read_text()
    assert not re.search(r"\b(nan|inf|infinity)\b", index.lower())
    return results


def test_two_classes_train_score_compare_and_render(tmp_path, monkeypatch):
    rows = [(label, split) for split, n in (("train", 24), ("val", 8), ("test", 8)) for label in ("a", "b")
            for _ in range(n // 2)]
    results = _run_and_render(tmp_path, rows, monkeypatch)
    train = results["train__pyramid_softmax__seed0.json"]["metrics"]
    assert train["top5"]["value"] is None and train["top5"]["reason"]
    assert train["macro_auc"]["value"] is not None  # binary AUC
    assert 0 <= train["balanced_accuracy"]["value"] <= 1
    assert len(train["test_predictions"]) == len(train["test_labels"]) == 8
    comparison = results["comparison.json"]["metrics"]
    assert set(comparison["models"]) >= {"pyramid_softmax", "pixel_logreg", "chance_majority"}


def test_single_class_test_split_is_scored(tmp_path, monkeypatch):
    rows = ([(label, "train") for label in ("a", "b", "c") for _ in range(8)]
            + [(label, "val") for label in ("a", "b", "c") for _ in range(2)] + [("b", "test")] * 6)
    results = _run_and_render(tmp_path, rows, monkeypatch)
    train = results["train__pyramid_softmax__seed0.json"]["metrics"]
    assert train["balanced_accuracy"]["value"] is not None
    assert train["macro_auc"]["value"] is None and train["macro_auc"]["reason"]
    assert train["per_class"]["a"]["sensitivity"] is None  # no test image of class a


def test_class_missing_from_train_is_a_clear_error_before_training(tmp_path):
    rows = ([(label, "train") for label in ("a", "b") for _ in range(6)]
            + [(label, split) for label in ("a", "b", "c") for split in ("val", "test")])
    suite = load_suite(str(_suite_file(tmp_path, _manifest(tmp_path / "data", rows))))
    with pytest.raises(DatasetError, match=r"\['c'\].*not in 'train'"):
        load_dataset(suite.data, progress=False)
