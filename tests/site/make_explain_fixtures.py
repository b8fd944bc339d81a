"""Regenerate the golden explain results under tests/fixtures/ (run by hand, not by pytest).

    PYTHONPATH=. .venv/bin/python tests/site/make_explain_fixtures.py

Two models' explain results and the suite summary, shaped exactly like the engine's output.
The per-image values are invented; every mean, interval, paired verdict and the summary are
computed from them by the engine's own functions (``bench.explain``), so the verdicts shown on
the page are consistent with the numbers. Integrated Gradients has the highest pointing game
and fails the sanity check (absolute values at full randomisation): it must not lead.
"""

from __future__ import annotations

import numpy as np

from make_fixtures import ARTIFACTS, CPU, RESULTS, model_record, provenance

METHODS = ["saliency", "integrated_gradients", "smoothgrad", "gradcam"]
MODEL_FREE = ["intensity", "uniform_foreground", "edges"]
IMAGES = [1, 2, 3, 4, 5, 6, 7, 8]
# mean pointing game per method (model 0); the second model scores 0.1 lower
POINTING = {"saliency": 0.875, "integrated_gradients": 1.0, "smoothgrad": 0.5, "gradcam": 0.6}


def _per_image(rng: np.random.Generator, level: float) -> dict[str, np.ndarray]:
    n = len(IMAGES)
    hits = (np.arange(n) < round(level * n)).astype(float)  # the first round(level × n) images are hits
    return {"pointing_game": hits, "relevance_mass": np.clip(0.1 + 0.3 * level + 0.05 * rng.standard_normal(n), 0, 1),
            "relevance_rank": np.clip(0.6 + 0.3 * level + 0.05 * rng.standard_normal(n), 0, 1),
            "deletion_vs_random": 0.2 * level + 0.05 * rng.standard_normal(n),
            "insertion_vs_random": 0.1 * level + 0.05 * rng.standard_normal(n),
            "deletion_auc": 0.4 - 0.2 * level + 0.02 * rng.random(n),
            "insertion_auc": 0.3 + 0.2 * level + 0.02 * rng.random(n)}


def _summary(values: dict[str, np.ndarray], start: np.ndarray, seed: int) -> dict:
    from bench.explain.scores import bootstrap_ratio, interval

    out = {k: interval(v, 200, seed + i) for i, (k, v) in enumerate(sorted(values.items()))}
    value, lo, hi = bootstrap_ratio(values["deletion_auc"], start, 200, seed + 97)
    out["deletion_auc_normalised"] = {"value": value, "ci95": [lo, hi], "n": len(start)}
    return out


def _versus(a: dict[str, np.ndarray], b: dict[str, np.ndarray], seed: int) -> dict:
    from bench.explain.faithfulness import SCORES
    from bench.explain.scores import paired_difference

    out = {}
    for k, score in enumerate(SCORES):
        value, lo, hi = paired_difference(a[score], b[score], 200, seed + k)
        out[score] = {"difference": {"value": value, "ci95": [lo, hi]}, "beats": bool(lo > 0)}
    return out


def _sanity(method: str, k: int) -> dict:
    order = ["head", "stage 4", "stage 3", "stage 2", "stage 1", "stem"]
    steps = []
    for i, label in enumerate(order):
        base = round(0.8 - 0.15 * i, 3)
        absolute = 0.7 if method == "integrated_gradients" and label == "stem" else base * (0.5 if i else 1)
        steps.append({"randomised": label, "spearman": round(base * 0.3, 3), "spearman_abs": round(absolute, 3),
                      "spearman_foreground": round(base * 0.2, 3), "spearman_abs_foreground": round(base * 0.4, 3)})
    failures = ["full randomisation: absolute"] if method == "integrated_gradients" else []
    return {"cascade": steps, "full": steps[-1], "passed": not failures, "failures": failures}


def explain_payload(name: str, k: int) -> dict:
    from bench.explain.faithfulness import SCORES

    rng = np.random.default_rng(k)
    start = np.clip(0.6 - 0.2 * k + 0.05 * rng.standard_normal(len(IMAGES)), 0.05, 1)
    model_free = np.random.default_rng(99)  # the model-free maps' location scores do not depend on the model
    free = {b: _per_image(model_free, level) for b, level in zip(MODEL_FREE, (0.25, 0.3, 0.4))}
    for b in MODEL_FREE:  # ... their deletion and insertion do
        for score in ("deletion_vs_random", "insertion_vs_random", "deletion_auc", "insertion_auc"):
            free[b][score] = free[b][score] + 0.02 * rng.standard_normal(len(IMAGES))
    strongest = {s: max(MODEL_FREE, key=lambda b: (free[b][s].mean(), b)) for s in SCORES}
    scores = {}
    for j, method in enumerate(METHODS):
        own = _per_image(rng, POINTING[method] - 0.1 * k)
        randomised = _per_image(rng, 0.1)
        scores[method] = {
            **_summary(own, start, 100 * j), "randomised_weights": _summary(randomised, start, 4000 + 100 * j),
            "vs_strongest_baseline": {s: {"baseline": strongest[s], **v} for s, v in
                                      _versus(own, {s: free[strongest[s]][s] for s in SCORES}, 2000 + 100 * j).items()},
            "vs_randomised_weights": _versus(own, randomised, 3000 + 100 * j),
            "per_image": {s: [round(float(v), 6) for v in own[s]] for s in own},
        }
    from bench.explain.scores import interval

    faithfulness = {
        "images": IMAGES, "mask": "evidence", "scores": scores,
        "baselines": {b: _summary(free[b], start, 1000 + i) for i, b in enumerate(MODEL_FREE)},
        "strongest_baseline": strongest,
        "random_point": {"image": interval(np.full(8, 0.04), 200, 1), "foreground": interval(np.full(8, 0.09), 200, 2)},
        "foreground_share": 0.45,
        "gradcam_ceiling": {"grid": [8, 8], **_summary(_per_image(rng, 0.99), start, 6000)},
        "deletion": {"fill": "lesion_free", "scored_images": 8, "blur_sigma_px": None, "fractions": [i / 10 for i in range(11)],
                     "starting_probability": interval(start, 200, 7001),
                     "removed_probability": interval(start * 0.3, 200, 7002),
                     "random_order": {"deletion_auc": interval(start * 0.5, 200, 7003),
                                      "insertion_auc": interval(start * 0.4, 200, 7004)}},
    }
    # the twin fill's images are the clean references: no scored image reads as a finding above 0.5
    removed = {fill: {"max_finding_prob": p, "max_finding_class": cls, "any_image_max_finding_prob": top,
                      "mean_max_finding_prob": p, "images_above_threshold": int(top > 0.5) * 6, "images": 8,
                      "read_as_finding": 0.75 if p > 0.5 else 0.125,
                      "predicted": {"normal": 2, cls: 6} if p > 0.5 else {"normal": 7, cls: 1}, "passed": top <= 0.5}
               for fill, p, top, cls in (("lesion_free", 0.21 + 0.05 * k, 0.41 + 0.02 * k, "edema"),
                                         ("blur", 0.78, 0.97, "white_matter_changes"),
                                         ("mean", 0.62, 0.88, "arteriovenous_anomaly"),
                                         ("black", 0.97, 1.0, "arteriovenous_anomaly"))}
    reference = {"images": 8, "scored": 8, "threshold": 0.5,
                 "rule": "deletion and insertion are scored on the images whose fully removed image (lesion_free) "
                         "this model reads as no finding above 0.5"}
    return {"methods": METHODS, "baseline_value": -0.9, "gradcam_grid": [8, 8],
            "faithfulness": faithfulness,
            "sanity": {"images": 4, "threshold": 0.5, "judged_from": 2,
                       "cascade_order": ["head", "stage 4", "stage 3", "stage 2", "stage 1", "stem"],
                       "methods": {m: _sanity(m, k) for m in METHODS}},
            "fully_removed": {"fill": "lesion_free", "note": None, "reference": reference, "threshold": 0.5, **removed},
            "fully_removed_max_finding_prob": removed["lesion_free"]["max_finding_prob"],
            "explained_checkpoint": {"seed": 0, "balanced_accuracy": 0.8 - 0.1 * k},
            "timing": {"gallery_s": 2.0, "maps_s": 4.0, "scores_s": 3.0, "sanity_s": 3.5}, "explain_time_s": 12.5}


def write_explain() -> None:
    """Explain results of two models (two gallery images each, one misclassified), their strips and the summary."""
    from bench.explain.images import write_strip
    from bench.explain.summary import compare_models, flagged_methods, lead_pair, metric_correlations
    from bench.explain.faithfulness import SCORES
    from bench.results.store import result_path, write_result

    folder = RESULTS / CPU["id"] / "quick"
    rng = np.random.default_rng(0)
    results = {}
    for k, name in enumerate(("pyramid_softmax", "pyramid_swin")):
        gallery = []
        for image, true, predicted, kind in ((3, "edema", "edema", "sample"), (8, "intra", "extra", "misclassified")):
            files: dict = {}
            for method in METHODS + ["native:attention rollout, stage 1"]:
                targets = ["predicted"] + (["true"] if predicted != true and not method.startswith("native") else [])
                for target in targets:
                    rel = f"explain/quick/{name}/{method.replace(':', '-').replace(' ', '-').replace(',', '')}/" \
                          f"{image:05d}-{target}.webp"
                    write_strip(ARTIFACTS / rel, rng.random((16, 16)), rng.random((16, 16)),
                                absolute=method.startswith("native"))
                    files.setdefault(method, {})[target] = rel
            gallery.append({"image": image, "kind": kind, "true": true, "predicted": predicted, "files": files})
        metrics = {**explain_payload(name, k), "gallery": gallery,
                   "native": {"maps": [{"name": "attention rollout, stage 1", "description": "rollout",
                                        "uniformity": {"entropy_ratio": 0.97 - 0.02 * k, "peak_over_uniform": 1.8,
                                                       "floor": 0.41}}], "note": None}}
        results[name] = metrics
        write_result(result_path(RESULTS, CPU["id"], "quick", "explain", name, None), {
            "kind": "explain", **provenance(CPU, 22, "medbench run --suite quick --stages explain"), "suite": "quick",
            "model": model_record(name), "seed": 0, "config": {"pointing_tolerance": 2}, "metrics": metrics,
            "error": None,
        })
    flagged = flagged_methods(results)
    beats = {s: sum(1 for r in results.values() for v in r["faithfulness"]["scores"].values()
                    if v["vs_strongest_baseline"][s]["beats"]) for s in SCORES}
    write_result(folder / "explain.json", {
        "kind": "explain", **provenance(CPU, 22, "medbench run --suite quick --stages explain"), "suite": "quick",
        "model": None, "seed": None, "config": {"models": sorted(results)},
        "metrics": {"comparison": compare_models(results, 200, 0), "flagged_methods": flagged,
                    "lead": lead_pair(results, flagged), "beats_strongest_baseline": beats,
                    "pairs": sum(len(r["faithfulness"]["scores"]) for r in results.values()),
                    "metric_correlations": metric_correlations(results), "explain_time_s": 25.0},
        "error": None,
    })


if __name__ == "__main__":
    write_explain()
