"""The site's downloads: every result file as JSON, and flat CSV tables built with pandas.

Each CSV holds the rows behind one kind of table on the site, one row per result entry,
with the result file it came from, so a reader can check any number or plot it anew.
CSVs are written with fixed float formatting and sorted rows: the same results always
give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.site.context import METRICS
from bench.site.load import LoadedResult

DOWNLOADS = "downloads"
CSV_FILES = {
    "metrics": f"{DOWNLOADS}/all-metrics.csv",
    "per_class": f"{DOWNLOADS}/per-class.csv",
    "latency": f"{DOWNLOADS}/latency.csv",
    "attention": f"{DOWNLOADS}/attention-scaling.csv",
    "costs": f"{DOWNLOADS}/costs.csv",
    "robustness": f"{DOWNLOADS}/robustness.csv",
}
FLOAT_FORMAT = "%.6g"


@dataclass(frozen=True)
class ResultFile:
    path: str  # site path of the copy
    source: str  # path under the results root
    kind: str
    machine: str
    suite: str
    model: str | None
    seed: int | None


def result_download_path(relpath: str) -> str:
    return f"{DOWNLOADS}/results/{relpath}"


def result_files(results: list[LoadedResult]) -> tuple[ResultFile, ...]:
    return tuple(
        ResultFile(result_download_path(r.relpath.as_posix()), r.relpath.as_posix(), r.kind, r.machine_id,
                   r.payload["suite"], (r.payload.get("model") or {}).get("name"), r.payload.get("seed"))
        for r in sorted(results, key=lambda r: r.relpath.as_posix())
    )


def _metric_rows(results: list[LoadedResult]) -> list[dict[str, Any]]:
    """One row per (machine, suite, model, seed) of every train and baseline result."""
    rows = []
    for r in results:
        p = r.payload
        if r.kind not in ("train", "baseline"):
            continue
        m = (p.get("metrics") or {}) if not r.failed else {}
        model, dataset = p.get("model") or {}, p.get("dataset") or {}
        row: dict[str, Any] = {
            "machine": r.machine_id, "suite": p["suite"], "model": model.get("name"), "seed": p.get("seed"),
            "kind": r.kind, "scale": model.get("scale"), "params": model.get("params"), "gmacs": model.get("gmacs"),
            "dataset": dataset.get("name"), "synthetic": dataset.get("synthetic"),
            "error": p["error"]["type"] if r.failed else None,
        }
        for metric in METRICS:
            entry = m.get(metric) or {}
            lo, hi = (entry.get("ci95") or [None, None])[:2]
            row.update({metric: entry.get("value"), f"{metric}_ci95_lo": lo, f"{metric}_ci95_hi": hi})
        for key in ("num_test", "best_epoch", "epochs_run", "optimizer_steps", "converged", "train_time_s",
                    "train_images_per_s"):
            row[key] = m.get(key)
        row.update({"git_sha": p["git_sha"], "created_utc": p["created_utc"], "command": p["command"],
                    "result_file": result_download_path(r.relpath.as_posix())})
        rows.append(row)
    return rows


def _per_class_rows(results: list[LoadedResult]) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        if r.kind not in ("train", "baseline") or r.failed:
            continue
        p = r.payload
        for name, stats in sorted(p["metrics"]["per_class"].items()):
            rows.append({"machine": r.machine_id, "suite": p["suite"], "model": p["model"]["name"], "seed": p["seed"],
                         "class": name, "sensitivity": stats.get("sensitivity"),
                         "specificity": stats.get("specificity"), "support": stats.get("support"),
                         "result_file": result_download_path(r.relpath.as_posix())})
    return rows


def _latency_rows(results: list[LoadedResult]) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        if r.kind != "profile" or r.failed:
            continue
        p = r.payload
        for entry in p["metrics"]["latency"]:
            rows.append({"machine": r.machine_id, "suite": p["suite"], "model": p["model"]["name"],
                         **{k: v for k, v in entry.items() if not isinstance(v, (list, dict))},
                         "result_file": result_download_path(r.relpath.as_posix())})
    return rows


def _attention_rows(results: list[LoadedResult]) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        if r.kind != "attention" or r.failed:
            continue
        m = r.payload["metrics"]
        for module, entries in sorted(m.get("modules", {}).items()):
            for e in entries:
                rows.append({"machine": r.machine_id, "module": module, "tokens": e["tokens"], "status": e["status"],
                             "p50_ms": (e.get("time_ms") or {}).get("p50"), "peak_memory_mb": e.get("peak_memory_mb"),
                             "fitted_exponent": (m.get("fits", {}).get(module) or {}).get("slope"),
                             "result_file": result_download_path(r.relpath.as_posix())})
    return rows


def _cost_rows(results: list[LoadedResult]) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        if r.kind != "cost" or r.failed:
            continue
        p = r.payload
        for phase in ("training", "inference"):
            for entry in p["metrics"][phase]:
                energy = entry["energy"]
                joules = energy["joules_per_image"]
                bands = joules if isinstance(joules, dict) else {"central": joules}
                rows.append({"machine": r.machine_id, "suite": p["suite"], "model": p["model"]["name"],
                             "scale": p["model"]["scale"], "image_size": p["model"]["image_size"], "phase": phase,
                             **{k: v for k, v in entry.items() if not isinstance(v, (list, dict))},
                             "energy_label": energy["label"],
                             **{f"joules_per_image_{band}": value for band, value in bands.items()},
                             "result_file": result_download_path(r.relpath.as_posix())})
    return rows


def _robustness_rows(results: list[LoadedResult]) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        if r.kind != "shift" or r.failed or r.payload["model"] is not None:
            continue
        for model, entry in r.payload["metrics"]["models"].items():
            for condition, cell in entry["conditions"].items():
                drop = cell.get("drop") or {}
                rows.append({"machine": r.machine_id, "suite": r.payload["suite"], "model": model,
                             "condition": condition, "balanced_accuracy": cell["balanced_accuracy"],
                             "ece": cell.get("ece"), "drop": drop.get("mean"), "drop_lo": drop.get("lo"),
                             "drop_hi": drop.get("hi"), "robustness_score": entry["robustness"]["score"],
                             "tied_with_most_robust": entry["robustness"]["tied_with_most_robust"],
                             "seeds": entry["num_seeds"], "result_file": result_download_path(r.relpath.as_posix())})
    return rows


def _csv(rows: list[dict[str, Any]], keys: list[str]) -> bytes:
    import pandas as pd

    frame = pd.DataFrame(rows)
    if frame.empty:
        return b""
    frame = frame.sort_values([k for k in keys if k in frame.columns], kind="stable")
    return frame.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n").encode()


def download_outputs(results: list[LoadedResult]) -> dict[str, bytes]:
    """Site path → bytes of every download: the result files as written, and the CSV tables."""
    outputs = {result_download_path(r.relpath.as_posix()): r.path.read_bytes() for r in results}
    tables = {
        "metrics": (_metric_rows(results), ["machine", "suite", "model", "seed"]),
        "per_class": (_per_class_rows(results), ["machine", "suite", "model", "seed", "class"]),
        "latency": (_latency_rows(results), ["machine", "suite", "model", "device", "dtype", "batch_size",
                                              "image_size", "threads"]),
        "attention": (_attention_rows(results), ["machine", "module", "tokens"]),
        "costs": (_cost_rows(results), ["machine", "suite", "model", "phase", "dtype", "threads"]),
        "robustness": (_robustness_rows(results), ["machine", "suite", "model", "condition"]),
    }
    for name, (rows, keys) in tables.items():
        if rows:
            outputs[CSV_FILES[name]] = _csv(rows, keys)
    return outputs


def available_csvs(outputs: dict[str, bytes]) -> dict[str, str | None]:
    """CSV name → site path, or None where there were no rows for it."""
    return {name: path if path in outputs else None for name, path in CSV_FILES.items()}
