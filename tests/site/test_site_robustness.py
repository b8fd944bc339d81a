"""The Robustness page: the engine's shift summary as a score table with tie marks, drops with
their intervals, the two charts and the findings, all from the numbers in the result."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from bench.core.shift_stats import CLEAN, robustness
from bench.results.store import validation_errors

LABELS = np.arange(400) % 4


def _preds(rng: np.random.Generator, accuracy: float) -> np.ndarray:
    return np.where(rng.random((3, len(LABELS))) < accuracy, LABELS, (LABELS + 1) % 4)


def _summary(results: Path) -> dict:
    rng = np.random.default_rng(0)
    preds = {model: {CLEAN: _preds(rng, 0.9), "blur@1": _preds(rng, shifted), "blur@3": _preds(rng, shifted - 0.1),
                     "rotation@1": _preds(rng, shifted), "rotation@3": _preds(rng, shifted - 0.2)}
             for model, shifted in (("pyramid_softmax", 0.88), ("pyramid_swin", 0.875), ("resnet50", 0.6))}
    stats = robustness(preds, LABELS, n_resamples=300)
    for entry in stats["models"].values():
        for cell in entry["conditions"].values():
            cell["ece"] = 0.05
    template = json.loads((results / "cpu-fixture-2c" / "quick" / "comparison.json").read_text())
    payload = {**template, "kind": "shift", "model": None, "seed": None,
               "config": {"kinds": ["blur", "rotation"], "severities": [1, 3],
                          "parameters": {"blur@1": "Gaussian blur, sigma 0.5 px at 64 px",
                                         "blur@3": "Gaussian blur, sigma 1.2 px at 64 px",
                                         "rotation@1": "in-plane rotation by 15° (either sign)",
                                         "rotation@3": "<script>alert(1)</script>"}},
               "metrics": {**stats, "examples": ["shift/quick/examples-blur.png"]}}
    assert validation_errors(payload) == []
    (results / "cpu-fixture-2c" / "quick" / "shift.json").write_text(json.dumps(payload))
    return stats


def test_robustness_page_scores_ties_drops_and_charts(tmp_path: Path, results_copy: Path, paths,
                                                      render: Callable[..., list[Path]]) -> None:
    stats = _summary(results_copy)
    artifacts = tmp_path / "artifacts"
    shutil.copytree(paths.artifacts, artifacts)
    (artifacts / "shift" / "quick").mkdir(parents=True)
    (artifacts / "shift" / "quick" / "examples-blur.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    out = tmp_path / "docs"
    render(out, results=results_copy, artifacts=artifacts)
    page = (out / "robustness.md").read_text()
    most = stats["most_robust"]
    assert most in ("pyramid_softmax", "pyramid_swin")
    scores = page[page.index("### Robustness score"):page.index("### Drops from clean")]
    rows = {model: next(line for line in scores.splitlines() if line.startswith((f"| [{model}]", f"| {model} |")))
            for model in ("pyramid_softmax", "pyramid_swin", "resnet50")}  # resnet50 has no model page here
    other = "pyramid_swin" if most == "pyramid_softmax" else "pyramid_softmax"
    assert "| highest |" in rows[most] and "| = |" in rows[other] and "| < |" in rows["resnet50"]
    assert 'id="shift-drops-1-quick-cpu-fixture-2c"' in page and 'id="shift-drops-3-quick-cpu-fixture-2c"' in page
    assert 'id="shift-severity-quick-cpu-fixture-2c"' in page
    assert "Most robust: " + most in page and "resnet50 (the lowest score, clean 0.892) at severity 3" in page
    assert "The models differ most under rotation at severity 3" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page  # a result's strings are untrusted
    assert (out / "assets" / "shift" / "quick" / "examples-blur.png").is_file()
    assert "![blur: clean, then severities 1, 2 and 3](assets/shift/quick/examples-blur.png)" in page
    assert "examples-rotation.png" not in page  # no strip on disk, none on the page
    drop = stats["models"]["resnet50"]["conditions"]["rotation@3"]["drop"]
    assert f"**{drop['mean']:+.3f}**".replace("-", "−") in page  # a resolved drop is bold


def test_findings_say_there_is_no_ranking_when_every_score_ties():
    from bench.site.robustness import DropCell, RobustnessRow, _findings

    def row(model: str, score: float, drop: float) -> RobustnessRow:
        cells = tuple(DropCell(f"blur@{s}", "blur", s, 0.8 + drop, 0.05, drop, drop - 0.02, drop + 0.02, True)
                      for s in (1, 3))
        return RobustnessRow(model, 3, 0.8, 0.05, score, None, score == 0.85, True, cells)

    found = _findings((row("a", 0.85, -0.1), row("b", 0.84, -0.3)), ("blur",), (1, 3))
    assert found[0].startswith("No robustness ranking: every model's score ties with the highest (a, 0.850)")
    assert "from 0.840 to 0.850" in found[0] and not any(f.startswith("Most robust") for f in found)
    assert "drops from -0.100 (a) to -0.300 (b)" in found[2]
