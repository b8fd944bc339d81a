"""The explain stage: attribution galleries for every model, scored against the lesion masks.

For each model (the kept checkpoint of the suite's first seed) it:

- explains fixed, seeded test images (``gallery_per_class`` per class, plus the
  ``gallery_misclassified`` images the most models got wrong, the same for every model)
  with the four methods of ``bench.explain.attribution`` and the model's native attention maps,
  each for the predicted class and, where it differs, the true class; the strips go to
  ``data/artifacts/explain/<suite>/<model>/``;
- scores the maps of seeded lesion images (true class) against their masks: pointing game,
  relevance mass, relevance rank and deletion AUC, each with a bootstrap 95% CI over images,
  beside the random baseline (mask area ÷ image area) on the same images;
- runs the sanity check of Adebayo et al.: the Spearman correlation between the maps of the
  trained model and of the same architecture with random weights.

One ``explain`` result per model, then a suite summary that marks, per method and score,
the models tied with the best (a paired bootstrap over the same images). Without masks
(real data) the scores are skipped with the reason, and the galleries are still drawn.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from bench.core import env
from bench.core.config import SuiteConfig
from bench.data.datasets import LoadedDataset
from bench.explain.attribution import (
    DELETION_FRACTIONS, METHODS, attribute, bootstrap_mean, deletion_auc, deletion_inputs, dilate, paired_tied, pointing_hit,
    feature_tap, relevance_mass, relevance_rank, spearman,
)
from bench.explain.images import write_strip
from bench.results.records import RunPaths, error_record, fingerprint, is_done, model_info, payload
from bench.results.store import exclusive_lock, load_result, result_path, safe_name, write_result

log = logging.getLogger(__name__)

SCORES = ("pointing_game", "relevance_mass", "relevance_rank", "deletion_auc")
HIGHER_IS_BETTER = {"pointing_game": True, "relevance_mass": True, "relevance_rank": True, "deletion_auc": False}
RANDOM_SEED_OFFSET = 104_729  # the randomised model of the sanity check: another init of the same architecture


def lesion_masks(data: LoadedDataset, size: int) -> dict[int, np.ndarray]:
    """Test index → boolean lesion mask at the model's input size, for images whose mask is not empty."""
    test = data.splits["test"]
    masks = {}
    for i, mask_path in enumerate(test.mask_paths or []):
        if not mask_path:
            continue
        pixels = np.asarray(Image.open(mask_path).convert("L"), dtype=np.float32) / 255.0
        small = np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR)) >= 0.5
        if small.any():
            masks[i] = small
    return masks


def _trained_predictions(paths: RunPaths, suite: SuiteConfig, seed: int) -> dict[str, list[int]]:
    """Test predictions of each model's train result for ``seed`` (those that exist and succeeded)."""
    out = {}
    for name in suite.models:
        path = result_path(paths.results, env.machine_info()["id"], suite.name, "train", name, seed)
        if path.exists():
            result = load_result(path)
            if result["error"] is None:
                out[name] = result["metrics"]["test_predictions"]
    return out


def choose_images(data: LoadedDataset, cfg: Any, masks: dict[int, np.ndarray],
                  predictions: dict[str, list[int]]) -> dict[str, list[int]]:
    """Seeded test indices: gallery samples per class, shared misclassified images, lesion images."""
    test = data.splits["test"]
    labels = test.labels.numpy()
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(labels))
    samples = []
    for c in range(len(data.class_names)):
        samples += [int(i) for i in order if labels[i] == c][:cfg.gallery_per_class]
    misclassified: list[int] = []
    if predictions:
        wrong = sum((np.asarray(p) != labels).astype(int) for p in predictions.values())
        ranked = sorted((i for i in order if wrong[i] > 0), key=lambda i: -wrong[i])
        misclassified = [int(i) for i in ranked if int(i) not in samples][:cfg.gallery_misclassified]
    lesion = sorted(int(i) for i in order if int(i) in masks)
    lesion = sorted(int(i) for i in rng.permutation(lesion)[:cfg.faithfulness_images]) if lesion else []
    return {"samples": samples, "misclassified": misclassified, "lesion": lesion}


def _maps(model: torch.nn.Module, method: str, images: torch.Tensor, targets: torch.Tensor, cfg: Any,
          baseline: float) -> np.ndarray:
    out = []
    for start in range(0, len(images), cfg.internal_batch_size):
        batch = slice(start, start + cfg.internal_batch_size)
        out.append(attribute(model, method, images[batch], targets[batch], baseline=baseline, ig_steps=cfg.ig_steps,
                             internal_batch_size=cfg.internal_batch_size, smoothgrad_samples=cfg.smoothgrad_samples,
                             smoothgrad_noise=cfg.smoothgrad_noise, seed=cfg.seed).numpy())
    return np.concatenate(out) if out else np.zeros((0,) + tuple(images.shape[-2:]))


@torch.no_grad()
def _probabilities(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([model(images[i:i + 128]).softmax(dim=1) for i in range(0, len(images), 128)])


def _interval(values: list[float], cfg: Any, offset: int) -> dict[str, Any]:
    mean, lo, hi = bootstrap_mean(np.asarray(values), cfg.bootstrap, cfg.seed + offset)
    return {"value": mean, "ci95": [lo, hi], "n": len(values)}


def faithfulness(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, masks: list[np.ndarray],
                 cfg: Any, baseline: float) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Scores per method (with CIs and random baselines) and each method's maps of these images."""
    area = np.array([m.mean() for m in masks])
    dilated_area = np.array([dilate(m, cfg.pointing_tolerance).mean() for m in masks])
    scores: dict[str, Any] = {}
    maps: dict[str, np.ndarray] = {}
    for k, method in enumerate(METHODS):
        maps[method] = m = _maps(model, method, images, labels, cfg, baseline)
        hits = [pointing_hit(m[i], masks[i], cfg.pointing_tolerance) for i in range(len(masks))]
        mass = [relevance_mass(m[i], masks[i]) for i in range(len(masks))]
        rank = [relevance_rank(m[i], masks[i]) for i in range(len(masks))]
        steps = len(DELETION_FRACTIONS)
        blacked = torch.cat([deletion_inputs(images[i], m[i], baseline) for i in range(len(masks))])
        probs = _probabilities(model, blacked).view(len(masks), steps, -1)
        deletion = [deletion_auc(probs[i, :, labels[i]].numpy()) for i in range(len(masks))]
        per_image = {"pointing_game": hits, "relevance_mass": [v if v is not None else 0.0 for v in mass],
                     "relevance_rank": [v if v is not None else 0.5 for v in rank], "deletion_auc": deletion}
        scores[method] = {
            **{score: _interval(values, cfg, 10 * k + j) for j, (score, values) in enumerate(per_image.items())},
            "pointing_game_random": {"value": float(dilated_area.mean())},
            "relevance_mass_random": {"value": float(area.mean())},
            "relevance_rank_random": {"value": 0.5},
            "per_image": {score: [round(float(v), 6) for v in values] for score, values in per_image.items()},
        }
    return scores, maps


def sanity_check(name: str, suite: SuiteConfig, num_classes: int, images: torch.Tensor, labels: torch.Tensor,
                 trained_maps: dict[str, np.ndarray], cfg: Any, baseline: float) -> dict[str, Any]:
    """Mean Spearman correlation (signed and absolute) between trained and randomised-weight maps."""
    from bench.models import create_model

    torch.manual_seed(cfg.seed + RANDOM_SEED_OFFSET)
    random_model = create_model(name, suite.scale, num_classes=num_classes, in_chans=suite.data.in_chans,
                                image_size=suite.data.image_size).eval()
    out = {}
    for method in METHODS:
        random_maps = _maps(random_model, method, images, labels, cfg, baseline)
        trained = trained_maps[method][:len(images)]
        signed = [spearman(trained[i], random_maps[i]) for i in range(len(images))]
        absolute = [spearman(np.abs(trained[i]), np.abs(random_maps[i])) for i in range(len(images))]
        mean_signed = float(np.mean([v for v in signed if v is not None])) if any(v is not None for v in signed) else None
        mean_abs = (float(np.mean([v for v in absolute if v is not None]))
                    if any(v is not None for v in absolute) else None)
        worst = max((abs(v) for v in (mean_signed, mean_abs) if v is not None), default=None)
        out[method] = {"spearman": mean_signed, "spearman_abs": mean_abs, "images": len(images),
                       "passed": worst is not None and worst < cfg.sanity_threshold}
    return out


def _display(image: torch.Tensor, data: LoadedDataset) -> np.ndarray:
    """A normalised input back to grey [0, 1] for display (first channel)."""
    return (image[0].numpy() * data.std + data.mean).clip(0, 1)


def gallery(model: torch.nn.Module, name: str, data: LoadedDataset, chosen: dict[str, list[int]], cfg: Any,
            baseline: float, folder: Path, artifacts: Path) -> tuple[list[dict[str, Any]], Any]:
    """Strips for the gallery images: each method (predicted class, and true class where it differs) and native maps."""
    from bench.explain.native_maps import native_maps

    test = data.splits["test"]
    indices = chosen["samples"] + chosen["misclassified"]
    images, labels = test.images[indices], test.labels[indices]
    predicted = _probabilities(model, images).argmax(dim=1)
    entries = [{"image": i, "kind": "sample" if i in chosen["samples"] else "misclassified",
                "true": data.class_names[int(labels[k])], "predicted": data.class_names[int(predicted[k])],
                "files": {}} for k, i in enumerate(indices)]
    for method in METHODS:
        for target_name, targets in (("predicted", predicted), ("true", labels)):
            rows = [k for k in range(len(indices)) if target_name == "predicted" or labels[k] != predicted[k]]
            if not rows:
                continue
            maps = _maps(model, method, images[rows], targets[rows], cfg, baseline)
            for m, k in zip(maps, rows):
                path = folder / method / f"{indices[k]:05d}-{target_name}.webp"
                write_strip(path, _display(images[k], data), m)
                entries[k]["files"].setdefault(method, {})[target_name] = path.relative_to(artifacts).as_posix()
    native = native_maps(model, name, images)
    for item in native.maps:
        key = f"native:{item.name}"
        for k in range(len(indices)):
            path = folder / "native" / f"{safe_name(item.name)}-{indices[k]:05d}.webp"
            write_strip(path, _display(images[k], data), item.maps[k].numpy())
            entries[k]["files"].setdefault(key, {})["predicted"] = path.relative_to(artifacts).as_posix()
    return entries, native


def explain_metrics(suite: SuiteConfig, name: str, data: LoadedDataset, checkpoint: Path,
                    chosen: dict[str, list[int]], masks: dict[int, np.ndarray], artifacts: Path
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model info, metrics) of one model's explanations."""
    from bench.models import create_model
    from bench.stages.train import load_checkpoint

    cfg = suite.explain
    start = time.perf_counter()
    ckpt = load_checkpoint(checkpoint)
    num_classes = len(ckpt["class_names"])
    model = create_model(name, suite.scale, num_classes=num_classes, in_chans=suite.data.in_chans,
                         image_size=suite.data.image_size)
    model.load_state_dict(ckpt["best_state"] or ckpt["model"])
    model.eval()
    baseline = (0.0 - data.mean) / data.std  # a black image, the background of every slice
    folder = artifacts / "explain" / safe_name(suite.name) / safe_name(name)
    entries, native = gallery(model, name, data, chosen, cfg, baseline, folder, artifacts)
    with torch.no_grad():  # the grid Grad-CAM's map is computed on, before upsampling
        cam_grid = list(feature_tap(model).features(data.splits["test"].images[:1]).shape[-2:])
    metrics: dict[str, Any] = {
        "methods": list(METHODS), "baseline_value": baseline, "gallery": entries, "gradcam_grid": cam_grid,
        "native": {"maps": [{"name": m.name, "description": m.description} for m in native.maps],
                   "note": native.note,
                   "channel_map_shape": list(native.channel_map.shape[1:]) if native.channel_map is not None else None},
    }
    test = data.splits["test"]
    if chosen["lesion"]:
        idx = chosen["lesion"]
        scores, maps = faithfulness(model, test.images[idx], test.labels[idx], [masks[i] for i in idx], cfg, baseline)
        n = min(cfg.sanity_images, len(idx))
        metrics["faithfulness"] = {"images": idx, "scores": scores}
        metrics["sanity"] = sanity_check(name, suite, num_classes, test.images[idx[:n]], test.labels[idx[:n]],
                                         maps, cfg, baseline)
    else:
        metrics["faithfulness"] = None
        metrics["faithfulness_skipped"] = "the test split has no lesion masks (real data has none), so maps " \
                                          "cannot be scored against lesions; the galleries are still drawn"
    metrics["explain_time_s"] = round(time.perf_counter() - start, 3)
    info = model_info(name, suite.scale, model, suite.data.image_size, suite.data.in_chans, num_classes, None)
    return info, metrics


def explain_one(suite: SuiteConfig, name: str, data: LoadedDataset, paths: RunPaths, seed: int,
                chosen: dict[str, list[int]], masks: dict[int, np.ndarray], force: bool = False) -> Path | None:
    """Explain one model (the checkpoint of ``seed``) and write ``explain__<model>.json``."""
    checkpoint = paths.checkpoint(suite.name, name, seed)
    if not checkpoint.exists():
        log.warning("no checkpoint %s: %s is not explained", checkpoint, name)
        return None
    out = result_path(paths.results, env.machine_info()["id"], suite.name, "explain", name, None)
    from bench.stages.train import config_fingerprint

    config = {**suite.to_dict()["explain"], "seed_explained": seed, "images": chosen,
              "trained": config_fingerprint(suite, name, seed)}
    config["fingerprint"] = fingerprint(config)
    with exclusive_lock(paths.lock_for(out)):
        if not force and is_done(out, config["fingerprint"]):
            log.info("skip explain of %s: %s exists", name, out)
            return out
        info, metrics, error = None, {}, None
        try:
            info, metrics = explain_metrics(suite, name, data, checkpoint, chosen, masks, paths.artifacts)
        except Exception as exc:  # noqa: BLE001 - recorded, not dropped
            error = error_record(exc, "explain")
            log.exception("explain of %s failed", name)
        write_result(out, payload("explain", suite.name, info, seed, config, metrics, error))
        log.info("wrote %s", out)
    return out


def summarise(suite: SuiteConfig, paths: RunPaths, results: list[Path]) -> Path | None:
    """Per method and score: the best model and every model tied with it (paired bootstrap, same images)."""
    scored = {}
    for path in results:
        r = load_result(path)
        if r["error"] is None and r["metrics"].get("faithfulness"):
            scored[r["model"]["name"]] = r["metrics"]["faithfulness"]["scores"]
    if not scored:
        return None
    cfg = suite.explain
    summary: dict[str, Any] = {}
    for method in METHODS:
        for score in SCORES:
            values = {m: np.asarray(s[method]["per_image"][score]) for m, s in scored.items()}
            sign = 1 if HIGHER_IS_BETTER[score] else -1
            best = max(sorted(values), key=lambda m: sign * values[m].mean())
            summary.setdefault(method, {})[score] = {
                "best": best,
                "tied_with_best": sorted(m for m in values if m != best and
                                         paired_tied(values[m], values[best], cfg.bootstrap, cfg.seed)),
            }
    out = result_path(paths.results, env.machine_info()["id"], suite.name, "explain", None, None)
    config = {"models": sorted(scored), "bootstrap": cfg.bootstrap, "seed": cfg.seed}
    config["fingerprint"] = fingerprint({**config, "inputs": [load_result(p)["config"]["fingerprint"] for p in results]})
    write_result(out, payload("explain", suite.name, None, None, config, {"comparison": summary}))
    return out


def explain_suite(suite: SuiteConfig, models: list[str], data: LoadedDataset, paths: RunPaths, *, seed: int,
                  force: bool = False) -> list[Path]:
    """Explain every model that has a checkpoint of ``seed``, then compare them."""
    masks = lesion_masks(data, suite.data.image_size)
    chosen = choose_images(data, suite.explain, masks, _trained_predictions(paths, suite, seed))
    written = [p for p in (explain_one(suite, name, data, paths, seed, chosen, masks, force) for name in models)
               if p is not None]
    summary = summarise(suite, paths, written)
    return written + ([summary] if summary else [])
