"""Regenerate the golden result files under tests/fixtures/ (run by hand, not by pytest).

    .venv/bin/python tests/site/make_fixtures.py

The numbers are invented but shaped exactly like the engine's output, and every file
goes through ``bench.results.store.write_result``, so it validates against the schema. The
seed values are round on purpose: tests check the leaderboard arithmetic against them.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from bench.results.store import result_path, write_result

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RESULTS = FIXTURES / "results"
BAD = FIXTURES / "bad"
ARTIFACTS = FIXTURES / "artifacts"

CLASS_NAMES = ["acute_infarct", "arteriovenous_anomaly", "chronic_infarct", "edema", "extra",
               "focal_flair_hyper", "intra", "normal", "pituitary_lesion", "white_matter_changes"]
PER_CLASS_TEST = 10
CPU = {"id": "cpu-fixture-2c", "cpu": "Fixture CPU @ 2.10GHz", "cores": 2, "ram_gb": 7.8, "threads": 2, "gpu": None}
GPU = {"id": "gpu-nvidia-h200", "cpu": "Fixture Xeon 8480", "cores": 16, "ram_gb": 128.0, "threads": 16,
       "gpu": {"name": "NVIDIA H200", "memory_gb": 139.8, "driver": "570.86", "count": 1}}
ENVIRONMENT = {"python": "3.11.7", "platform": "Linux-6.8-x86_64", "torch": "2.13.0+cpu", "cuda": None, "cudnn": None,
               "numpy": "2.4.6", "timm": "1.0.31", "torchvision": "0.28.0", "sklearn": "1.9.1"}
SUITE_CONFIG = {
    "name": "quick", "scale": "quick", "models": ["pyramid_softmax", "pyramid_swin", "pyramid_performer"],
    "seeds": [0, 1],
    "data": {"kind": "synthetic", "root": "data/datasets/synthetic-quick", "image_size": 64, "in_chans": 1,
             "num_images": 3000, "generator_size": 128, "seed": 0},
    "train": {"epochs": 5, "batch_size": 64, "lr": 0.001, "weight_decay": 0.05, "warmup_epochs": 1,
              "balance": "sampler", "augment": True, "bootstrap": 1000},
    "profile": {"batch_sizes": [1, 32], "warmup": 10, "runs": 30, "dtypes": ["float32", "bfloat16"],
                "resolutions": [64, 128, 224], "sweep_runs": 10},
}
# (model, params, gmacs, cpu p50 ms at batch 1)
MODELS = {"pyramid_softmax": (1_482_346, 0.1562, 4.2), "pyramid_swin": (1_497_810, 0.1498, 5.6),
          "pyramid_performer": (1_490_122, 0.1541, 6.1)}
# balanced accuracy per (model, seed): the test split is balanced, so 10 × this = correct images
BALANCED = {("pyramid_softmax", 0): 0.80, ("pyramid_softmax", 1): 0.84,
            ("pyramid_swin", 0): 0.70, ("pyramid_swin", 1): 0.76}


def provenance(machine: dict, day: int, command: str) -> dict:
    return {"created_utc": f"2025-11-{day:02d}T10:00:00Z", "git_sha": "3f2c9a1e5b7d4c6a8e0f1b2d3c4e5f6a7b8c9d0e",
            "git_dirty": False, "command": command, "machine": machine, "environment": ENVIRONMENT}


def model_record(name: str) -> dict:
    params, gmacs, _ = MODELS[name]
    return {"name": name, "scale": "quick", "params": params, "gmacs": gmacs, "image_size": 64, "in_chans": 1,
            "num_classes": 10}


def confusion(correct: int) -> list[list[int]]:
    """A 10×10 matrix with ``correct`` images on the diagonal; each error goes to the next class."""
    base, extra = divmod(correct, len(CLASS_NAMES))
    matrix = []
    for i in range(len(CLASS_NAMES)):
        hit = base + (1 if i < extra else 0)
        row = [0] * len(CLASS_NAMES)
        row[i] = hit
        row[(i + 1) % len(CLASS_NAMES)] = PER_CLASS_TEST - hit
        matrix.append(row)
    return matrix


def estimate(value: float, half_width: float) -> dict:
    return {"value": value, "ci95": [round(value - half_width, 4), round(value + half_width, 4)]}


def train_payload(name: str, seed: int) -> dict:
    acc = BALANCED[(name, seed)]
    matrix = confusion(round(acc * PER_CLASS_TEST * len(CLASS_NAMES)))
    total = PER_CLASS_TEST * len(CLASS_NAMES)
    per_class = {}
    for i, cls in enumerate(CLASS_NAMES):
        false_pos = sum(matrix[j][i] for j in range(len(CLASS_NAMES)) if j != i)
        per_class[cls] = {"sensitivity": matrix[i][i] / PER_CLASS_TEST,
                          "specificity": round(1 - false_pos / (total - PER_CLASS_TEST), 6), "support": PER_CLASS_TEST}
    rng = random.Random(f"{name}-{seed}")
    epochs = 5
    train_loss = [round(2.3 * 0.7**e + rng.uniform(0, 0.05), 4) for e in range(epochs)]
    val_loss = [round(2.3 * 0.75**e + rng.uniform(0, 0.08), 4) for e in range(epochs)]
    val_acc = [round(acc * (1 - 0.6 * 0.5**e) + rng.uniform(-0.02, 0.02), 4) for e in range(epochs)]
    return {
        "kind": "train", **provenance(CPU, 20, f"medbench train --suite quick --model {name} --seed {seed}"),
        "suite": "quick", "model": model_record(name), "config": SUITE_CONFIG, "seed": seed,
        "dataset": {"name": "synthetic-quick", "synthetic": True, "class_names": CLASS_NAMES},
        "metrics": {
            "top1": estimate(acc, 0.07), "top5": estimate(round(min(1.0, acc + 0.15), 4), 0.03),
            "balanced_accuracy": estimate(acc, 0.08), "macro_auc": estimate(round(acc + 0.12, 4), 0.04),
            "cohen_kappa": estimate(round((acc - 0.1) / 0.9, 4), 0.09), "ece": estimate(round(0.1 - acc / 20, 4), 0.02),
            "per_class": per_class, "confusion_matrix": matrix,
            "curves": {"epoch": list(range(1, epochs + 1)), "train_loss": train_loss, "val_loss": val_loss,
                       "val_balanced_accuracy": val_acc},
            "best_epoch": epochs - 2, "epochs_run": epochs, "max_epochs": 20, "patience": 2,
            "optimizer_steps": epochs * 22, "converged": True,
            "train_time_s": 61.5 + seed, "train_images_per_s": 170.2, "num_test": total,
            **predictions(matrix), "reliability": reliability(acc, total),
        },
        "error": None,
    }


def reliability(acc: float, total: int) -> dict[str, list]:
    """A 5-bin reliability diagram: a third of the images in each of the top three bins, over-confident."""
    count = [0, 0, total // 3, total // 3, total - 2 * (total // 3)]
    confidence = [0.0, 0.0, 0.5, 0.7, 0.9]
    correct = [round(c * min(1.0, conf * acc / 0.7)) for c, conf in zip(count, confidence)]
    return {"bin_edges": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], "count": count,
            "confidence_sum": [round(c * conf, 6) for c, conf in zip(count, confidence)], "correct": correct}


def predictions(matrix: list[list[int]]) -> dict[str, list[int]]:
    """Per-image test labels and predictions that reproduce a confusion matrix (rows = true class)."""
    labels, preds = [], []
    for true, row in enumerate(matrix):
        for pred, count in enumerate(row):
            labels += [true] * count
            preds += [pred] * count
    return {"test_labels": labels, "test_predictions": preds}


def baseline_payload(name: str, acc: float) -> dict:
    """A trivial baseline scored on the same test images as the models."""
    matrix = confusion(round(acc * PER_CLASS_TEST * len(CLASS_NAMES)))
    payload = train_payload("pyramid_swin", 0)
    payload.update({"kind": "baseline", "command": "medbench run --suite quick --stages baselines",
                    "model": {**model_record("pyramid_swin"), "name": name, "params": 0, "gmacs": None}})
    payload["metrics"] = {key: payload["metrics"][key] for key in ("top1", "top5", "macro_auc", "cohen_kappa", "ece")}
    payload["metrics"].update({"balanced_accuracy": estimate(acc, 0.09), "confusion_matrix": matrix,
                               "per_class": {}, "num_test": PER_CLASS_TEST * len(CLASS_NAMES), **predictions(matrix)})
    return payload


def latency_entry(device: str, dtype: str, batch: int, threads: int, p50: float, rng: random.Random) -> dict:
    samples = sorted(round(p50 * rng.uniform(0.95, 1.12), 4) for _ in range(30))
    mean = sum(samples) / len(samples)
    std = (sum((s - mean) ** 2 for s in samples) / (len(samples) - 1)) ** 0.5
    return {"device": device, "dtype": dtype, "batch_size": batch, "threads": threads, "image_size": 64,
            "samples_ms": samples, "p50_ms": samples[15], "p90_ms": samples[26], "p99_ms": samples[29],
            "mean_ms": round(mean, 4), "std_ms": round(std, 4), "cv": round(std / mean, 4),
            "throughput_images_per_s": round(1000 * batch / samples[15], 2),
            "peak_memory_mb": None if device == "cpu" else 212.5}


def profile_payload(name: str, machine: dict) -> dict:
    params, gmacs, cpu_p50 = MODELS[name]
    rng = random.Random(f"profile-{name}-{machine['id']}")
    if machine["gpu"] is None:
        latency = [latency_entry("cpu", "float32", 1, 2, cpu_p50, rng),
                   latency_entry("cpu", "float32", 32, 2, cpu_p50 * 9, rng)]
        device, dtype, peak = "cpu", "float32", 150.0
    else:
        latency = [latency_entry("cuda", dt, b, 16, p, rng) for dt, b, p in
                   (("float32", 1, 1.9), ("float32", 32, 2.4), ("bfloat16", 1, 2.1), ("bfloat16", 32, 1.6))]
        device, dtype, peak = "cuda", "bfloat16", 989_000.0
    best = max((e for e in latency if e["device"] == device and e["dtype"] == dtype), key=lambda e: e["batch_size"])
    achieved = round(2 * gmacs * best["throughput_images_per_s"], 2)
    sweep = []
    for s in (64, 128, 224):
        p50 = round(latency[0]["p50_ms"] * (s / 64) ** 2.1, 3)
        oom = name == "pyramid_swin" and s == 224  # one size that did not fit, as the engine records it
        sweep.append({"image_size": s, "tokens": (s // 4) ** 2, "device": device, "dtype": "float32", "batch_size": 1,
                      "status": "oom" if oom else "ok", "p50_ms": None if oom else p50,
                      "mean_ms": None if oom else round(p50 * 1.02, 3), "std_ms": None if oom else 0.05,
                      "gmacs": round(gmacs * (s / 64) ** 2, 4)})
    return {
        "kind": "profile", **provenance(machine, 21, f"medbench profile --suite quick --model {name}"),
        "suite": "quick", "model": model_record(name), "config": {**SUITE_CONFIG["profile"], "checkpoint": None},
        "seed": None,
        "metrics": {
            "params": params, "gmacs": gmacs, "gflops": round(2 * gmacs, 4),
            "flop_counters": {"torch_gmacs": gmacs, "fvcore_gmacs": round(gmacs * 1.004, 4), "rel_diff": 0.004},
            "latency": latency, "resolution_sweep": sweep,
            "roofline": {"device": device, "dtype": dtype, "peak_gflops_per_s": peak, "achieved_gflops_per_s": achieved,
                         "fraction_of_peak": round(achieved / peak, 6), "batch_size": best["batch_size"]},
        },
        "error": None,
    }


def attention_payload() -> dict:
    tokens = [256, 1024, 4096, 16384]
    slopes = {"softmax": 1.93, "linformer": 1.02, "performer": 1.05, "fastformer": 0.98, "xca": 1.01, "swin": 1.04}
    modules, fits = {}, {}
    for name, slope in slopes.items():
        entries = []
        for n in tokens:
            if name == "softmax" and n == 16384:
                entries.append({"tokens": n, "status": "oom", "time_ms": None, "peak_memory_mb": None})
                continue
            t = round(0.05 * (n / 256) ** slope, 4)
            time_ms = {"p50": t, "mean": round(t * 1.03, 4), "std": round(t * 0.04, 4)}
            entries.append({"tokens": n, "status": "ok", "time_ms": time_ms,
                            "peak_memory_mb": round(n * 0.01 * (n / 256 if name == "softmax" else 1), 2)})
        modules[name] = entries
        ran = [e["tokens"] for e in entries if e["status"] == "ok"]
        fits[name] = {"slope": slope, "fit_tokens": ran[-3:]}  # the engine fits the three largest that ran
    reference = [
        {"module": "linformer", "reference": "linformer 0.2.3", "tokens": 1024, "ours_ms": 0.21, "reference_ms": 0.24,
         "ratio": 0.875},
        {"module": "performer", "reference": "performer-pytorch 1.1.4", "tokens": 1024, "ours_ms": 0.22,
         "reference_ms": 0.2, "ratio": 1.1},
    ]
    return {
        "kind": "attention", **provenance(CPU, 22, "medbench attention"), "suite": "attention", "model": None,
        "config": {"tokens": tokens, "channels": 64, "batch_size": 1, "heads": 2}, "seed": None,
        "metrics": {"channels": 64, "batch_size": 1, "heads": 2, "device": "cpu", "dtype": "float32", "threads": 2,
                    "modules": modules, "fits": fits, "reference": reference},
        "error": None,
    }


def main() -> None:
    shutil.rmtree(RESULTS, ignore_errors=True)
    for (name, seed) in BALANCED:
        write_result(result_path(RESULTS, CPU["id"], "quick", "train", name, seed), train_payload(name, seed))
    failed = {
        "kind": "train", **provenance(CPU, 20, "medbench train --suite quick --model pyramid_performer --seed 0"),
        "suite": "quick", "model": model_record("pyramid_performer"), "config": SUITE_CONFIG, "seed": 0, "metrics": {},
        "error": {"type": "FloatingPointError", "message": "non-finite loss at epoch 3 (|grad| > 1e4); lower train.lr",
                  "stage": "train"},
    }
    write_result(result_path(RESULTS, CPU["id"], "quick", "train", "pyramid_performer", 0), failed)
    write_result(result_path(RESULTS, CPU["id"], "quick", "baseline", "pixel_logreg", 0),
                 baseline_payload("pixel_logreg", 0.4))
    write_comparison()
    for name in ("pyramid_softmax", "pyramid_swin"):
        write_result(result_path(RESULTS, CPU["id"], "quick", "profile", name, None), profile_payload(name, CPU))
    write_result(result_path(RESULTS, GPU["id"], "quick", "profile", "pyramid_softmax", None),
                 profile_payload("pyramid_softmax", GPU))
    write_result(RESULTS / CPU["id"] / "attention" / "attention.json", attention_payload())
    write_result(RESULTS / CPU["id"] / "hardware" / "machine.json", {
        "kind": "machine", **provenance(CPU, 19, "medbench machine"), "suite": "hardware", "model": None, "config": {},
        "seed": None, "metrics": {"matmul_peak_gflops_per_s": {"cpu:float32": 160.0}}, "error": None,
    })
    write_bad()
    write_artifacts()
    from make_explain_fixtures import write_explain  # the explain results, computed by bench.explain

    write_explain()


def write_comparison() -> None:
    """The comparison stage's output, computed by the engine from the files above."""
    from bench.stages.compare import scored_results, compare_results

    folder = RESULTS / CPU["id"] / "quick"
    scored = scored_results(folder)
    write_result(folder / "comparison.json", {
        "kind": "comparison", **provenance(CPU, 21, "medbench run --suite quick --stages compare"), "suite": "quick",
        "model": None, "seed": None, "config": {"suite": "quick", "inputs": [p.name for p, _ in scored]},
        "metrics": compare_results(scored, n_resamples=1000), "error": None,
    })


def write_artifacts() -> None:
    """A dataset record and a tiny sample strip per class, as the data pipeline leaves them."""
    from PIL import Image, ImageDraw

    folder = ARTIFACTS / "dataset" / "synthetic-quick"
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    folder.mkdir(parents=True)
    totals = [105, 90, 210, 90, 150, 135, 180, 1770, 90, 240]  # in CLASS_NAMES order; normal dominates
    info = {
        "generator": {"name": "medvit-synthetic-brain", "version": 1}, "num_images": sum(totals), "size": 128,
        "seed": 0,
        "synthetic": True, "class_names": CLASS_NAMES,
        "proportions": {c: round(n / sum(totals), 6) for c, n in zip(CLASS_NAMES, totals)},
        "counts": {c: {"train": n * 70 // 100, "val": n * 15 // 100, "test": n - n * 70 // 100 - n * 15 // 100,
                       "total": n} for c, n in zip(CLASS_NAMES, totals)},
    }
    (folder / "dataset.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    for i, name in enumerate(CLASS_NAMES):
        strip = Image.new("L", (4 * 32, 32))
        draw = ImageDraw.Draw(strip)
        for k in range(4):
            draw.ellipse((32 * k + 3, 2, 32 * k + 28, 30), fill=90)
            draw.ellipse((32 * k + 8 + i, 10, 32 * k + 14 + i, 16), fill=230)
        strip.save(folder / f"{name}.png", optimize=True)


def write_bad() -> None:
    shutil.rmtree(BAD, ignore_errors=True)
    BAD.mkdir(parents=True)
    good = json.loads((RESULTS / CPU["id"] / "hardware" / "machine.json").read_text())
    (BAD / "malformed.json").write_text('{"schema_version": 1, "kind": "machine",\n  "suite": \n}\n')
    (BAD / "newer.json").write_text(json.dumps({**good, "schema_version": 99}, indent=2, sort_keys=True) + "\n")
    (BAD / "invalid.json").write_text(json.dumps({**good, "kind": "train", "error": None, "machine": {"id": "x"}},
                                                 indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
