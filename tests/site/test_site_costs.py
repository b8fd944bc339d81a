"""The cost tables: paper scale first on the home page and the Efficiency page, every cost
labelled with its scale and machine, energy as an estimate with its band, formula and ratio."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from bench.results.store import validation_errors

ESTIMATE = "estimate, no hardware counter"


def _cost_row(dtype: str, images_per_s: float, joules: float | dict, mfu: float | None = 0.25) -> dict:
    label = ESTIMATE if isinstance(joules, dict) else "measured"
    return {"device": "cpu", "dtype": dtype, "threads": 2, "batch_size": 32, "images": 256, "wall_s": 256 / images_per_s,
            "cpu_s": 512 / images_per_s, "images_per_s": images_per_s, "cpu_s_per_image": 2 / images_per_s,
            "mfu": mfu, "energy": {"label": label, "joules_per_image": joules}}


def _write_cost(results: Path, suite: str, model: str, infer_joules: float | dict) -> None:
    """A cost result beside the fixture's profile of ``model``, under ``suite``."""
    machine = results / "cpu-fixture-2c"
    profile = json.loads((machine / "quick" / f"profile__{model}.json").read_text())
    band = {"low": 0.5, "central": 1.0, "high": 2.0} if isinstance(infer_joules, dict) else 1.0
    payload = {**profile, "kind": "cost", "suite": suite, "config": {"images": 256},
               "metrics": {"training": [_cost_row("float32", 9.5, band), _cost_row("bfloat16", 14.0, band)],
                           "inference": [_cost_row("float32", 30.0, infer_joules, None)],
                           "energy_model": {"formula": "CPU-seconds x watts_per_core + memory", "pue": 1.0,
                                            "watts_per_core": [2.5, 5.0, 10.0], "watts_per_gb": 0.3725}}}
    if suite == "paper":
        payload["model"] = {**payload["model"], "scale": "paper", "image_size": 224}
    assert validation_errors(payload) == []
    (machine / suite).mkdir(exist_ok=True)
    (machine / suite / f"cost__{model}.json").write_text(json.dumps(payload))


def _paper_profile(results: Path, model: str) -> None:
    """The fixture's quick profile of ``model`` again as a paper-scale profile (224 px)."""
    machine = results / "cpu-fixture-2c"
    profile = json.loads((machine / "quick" / f"profile__{model}.json").read_text())
    profile["suite"] = "paper"
    profile["model"] = {**profile["model"], "scale": "paper", "image_size": 224}
    (machine / "paper").mkdir(exist_ok=True)
    (machine / "paper" / f"profile__{model}.json").write_text(json.dumps(profile))


def test_paper_costs_lead_with_estimate_labels_and_ratios(tmp_path: Path, results_copy: Path,
                                                          render: Callable[..., list[Path]]) -> None:
    for model, joules in (("pyramid_softmax", {"low": 1.8, "central": 3.6, "high": 7.2}),
                          ("pyramid_swin", {"low": 0.9, "central": 1.8, "high": 3.6})):
        _paper_profile(results_copy, model)
        _write_cost(results_copy, "paper", model, joules)
        _write_cost(results_copy, "quick", model, joules)
    out = tmp_path / "docs"
    render(out, results=results_copy)

    index = (out / "index.md").read_text()
    costs = index[index.index("## What each model costs"):]
    assert "### Paper scale (224 px) on cpu-fixture-2c" in costs and "Quick scale" not in costs
    assert "quick-scale costs" in costs and "efficiency.md" in costs  # left to the Efficiency page, said so
    assert ESTIMATE in costs
    # 3.6 J per image = 1.0 Wh per 1,000 images, band 0.5-2.0; swin half of it: the lowest, softmax x2
    # the home page splits the costs into two narrow tables: latency and memory, then training and energy
    softmax = "\n".join(line for line in costs.splitlines() if line.startswith("| [pyramid_softmax]"))
    swin = "\n".join(line for line in costs.splitlines() if line.startswith("| [pyramid_swin]"))
    assert "| 1.0 (0.50–2.0) | ×2.00 |" in softmax and "| 0.50 (0.25–1.0) | ×1.00 |" in swin
    assert "| 9.50 · 14.0 |" in softmax  # training images/s in fp32 and bf16

    efficiency = (out / "efficiency.md").read_text()
    assert efficiency.index("## Paper scale: paper suite (224 px)") < efficiency.index("## Quick scale: quick suite")
    paper = efficiency[efficiency.index("## Paper scale"):efficiency.index("## Quick scale")]
    assert "CPU-seconds x watts_per_core + memory" in paper and "watts per core 5 (band 2.5–10)" in paper
    assert f"**Energy ({ESTIMATE}).**" in paper
    assert "| 25% · 25% |" in paper  # training MFU in both dtypes


def test_a_measured_energy_carries_no_band(tmp_path: Path, results_copy: Path,
                                           render: Callable[..., list[Path]]) -> None:
    _paper_profile(results_copy, "pyramid_softmax")
    _write_cost(results_copy, "paper", "pyramid_softmax", 7.2)
    out = tmp_path / "docs"
    render(out, results=results_copy)
    costs = (out / "index.md").read_text().split("## What each model costs", 1)[1]
    assert "Energy is read from the hardware counter." in costs and ESTIMATE not in costs
    rows = "\n".join(line for line in costs.splitlines() if line.startswith("| [pyramid_softmax]"))
    assert "| 2.0 | ×1.00 |" in rows
