"""``medbench bench-site``: how long ``medbench site`` takes on a large results tree.

The tree is built from real result files (the committed ones by default): each model's
train results are copied to more seeds and machines, and each profile to more machines,
so every file has a real result's size and shape (per-image test predictions included).
The copies go to a temporary folder and are never mixed with ``data/``. Only rendering is
timed, not ``mkdocs build``; the figures are printed, not asserted.
"""

from __future__ import annotations

import copy
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.results.store import ResultError, iter_result_files, load_result, result_path, write_result

log = logging.getLogger(__name__)


def _templates(results_dir: Path) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]]]:
    """Per model: its successful train results (by seed) and one profile, from ``results_dir``."""
    train: dict[str, list[dict[str, Any]]] = {}
    profiles: dict[str, dict[str, Any]] = {}
    for path in iter_result_files(results_dir):
        payload = load_result(path)
        if payload["error"] is not None:
            continue
        if payload["kind"] == "train":
            train.setdefault(payload["model"]["name"], []).append(payload)
        elif payload["kind"] == "profile":
            profiles.setdefault(payload["model"]["name"], payload)
    return {k: sorted(v, key=lambda p: p["seed"]) for k, v in train.items()}, profiles


def build_tree(source: Path, out: Path, models: int, seeds: int, machines: int) -> int:
    """Write ``models × seeds × machines`` train results (plus a profile per model and machine) under ``out``."""
    train, profiles = _templates(source)
    names = sorted(train)[:models]
    if len(names) < models:
        raise ResultError(source, f"holds train results of {len(names)} models; the benchmark needs {models}")
    written = 0
    for m in range(machines):
        machine_id = f"bench-machine-{m}"
        for name in names:
            for seed in range(seeds):
                payload = copy.deepcopy(train[name][seed % len(train[name])])
                payload["machine"] = {**payload["machine"], "id": machine_id}
                payload["seed"] = seed
                payload.pop("schema_version", None)
                write_result(result_path(out, machine_id, payload["suite"], "train", name, seed), payload)
                written += 1
            if name in profiles:
                payload = copy.deepcopy(profiles[name])
                payload["machine"] = {**payload["machine"], "id": machine_id}
                payload.pop("schema_version", None)
                write_result(result_path(out, machine_id, payload["suite"], "profile", name, None), payload)
    return written


def run_site_bench(source: Path, artifacts: Path, templates: Path, models: int = 8, seeds: int = 5,
                   machines: int = 5, repeats: int = 3) -> dict[str, float]:
    """Render the generated tree ``repeats`` times into a fresh folder; print and return the timings."""
    from bench.site.render import render_site

    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "results"
        trains = build_tree(Path(source), tree, models, seeds, machines)
        files = sum(1 for _ in iter_result_files(tree))
        seconds = []
        for i in range(repeats):
            start = time.perf_counter()
            render_site(tree, Path(artifacts), Path(templates), Path(tmp) / f"site_src_{i}")
            seconds.append(time.perf_counter() - start)
    report = {"train_results": trains, "result_files": files, "median_s": statistics.median(seconds),
              "min_s": min(seconds), "max_s": max(seconds)}
    sys.stdout.write(
        f"medbench site over {trains} train results ({models} models × {seeds} seeds × {machines} machines), "
        f"{files} result files in all: median {report['median_s']:.2f} s, min {report['min_s']:.2f} s, "
        f"max {report['max_s']:.2f} s over {repeats} renders (mkdocs build not included)\n"
    )
    return report
