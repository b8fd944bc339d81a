"""The explain stage: attribution galleries for every model, scored against the lesion masks.

For each model (the kept checkpoint of the suite's first seed) it:

- draws the gallery (``bench.explain.gallery``): fixed, seeded test images (``gallery_per_class``
  per class, plus the ``gallery_misclassified`` images the most models got wrong, the same for
  every model) with the four methods of ``bench.explain.attribution`` and the native maps;
- scores the maps of seeded lesion images (true class) against their masks, beside the
  model-free maps, the random point, the randomised-weights model and, for Grad-CAM, the best
  map its grid allows (``bench.explain.faithfulness``), every score with a bootstrap 95% interval;
- scores deletion and insertion only on the images whose fully removed image (the deletion
  fill) the model reads as no finding (``bench.explain.removal.clean_references``), and records
  how every fill's fully removed images are read (``bench.explain.deletion.fully_removed``);
- runs the cascading and full randomisation sanity checks (``bench.explain.sanity``).

One ``explain`` result per model, then the suite summary (``bench.explain.summary``). Without
masks (real data) the scores are skipped with the reason, and the galleries are still drawn.
The stage logs its time per model and in all; each result records it (``explain_time_s``).
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
from bench.explain.attribution import METHODS, attribute_all
from bench.explain.deletion import fully_removed
from bench.explain.faithfulness import faithfulness, model_maps, scored_inputs
from bench.explain.gallery import gallery, grey, uniformity
from bench.explain.native_maps import NativeMaps
from bench.explain.removal import THRESHOLD, Removal, clean_references, prepare_removal
from bench.explain.sanity import sanity_checks
from bench.explain.summary import summarise
from bench.explain.taps import feature_tap
from bench.results.records import RunPaths, error_record, fingerprint, is_done, model_info, payload
from bench.results.store import exclusive_lock, load_result, result_path, safe_name, write_result
from bench.stages.checkpoint import trained_model

log = logging.getLogger(__name__)

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


def _randomised(name: str, suite: SuiteConfig, num_classes: int) -> torch.nn.Module:
    """The same architecture with seeded random weights: the sanity checks' and the baselines' model."""
    from bench.models import create_model

    with torch.random.fork_rng():
        torch.manual_seed(suite.explain.seed + RANDOM_SEED_OFFSET)
        return create_model(name, suite.scale, num_classes=num_classes, in_chans=suite.data.in_chans,
                            image_size=suite.data.image_size).eval()


def _scores(model: torch.nn.Module, random_model: torch.nn.Module, data: LoadedDataset, idx: list[int],
            removal: Removal, clean: np.ndarray, suite: SuiteConfig, baseline: float, cam_grid: tuple[int, int],
            primary: bool = True) -> dict[str, Any]:
    """Faithfulness (with every baseline) and the sanity checks of one model on the lesion images."""
    cfg, test = suite.explain, data.splits["test"]
    images, labels = test.images[idx], test.labels[idx]
    inputs = scored_inputs(images, labels, [removal.masks[i] for i in idx], list(idx), [grey(x, data) for x in images],
                           removal.fills[removal.fill], removal.fill, removal.mask, clean)
    t0 = time.perf_counter()
    trained, randomised = model_maps(model, inputs, cfg, baseline), model_maps(random_model, inputs, cfg, baseline)
    t1 = time.perf_counter()
    faith = faithfulness(model, inputs, trained, randomised, cfg, cam_grid)
    t2 = time.perf_counter()
    n = min(cfg.sanity_images, len(idx))
    sanity = None if not primary else sanity_checks(
        model, random_model.state_dict(), METHODS,
        lambda m, method: attribute_all(m, method, images[:n], labels[:n], idx[:n], cfg, baseline),
        trained, randomised, inputs.heads[:n], cfg.sanity_threshold, cfg.sanity_judged_from)
    t3 = time.perf_counter()
    timing = {"maps_s": round(t1 - t0, 3), "scores_s": round(t2 - t1, 3), "sanity_s": round(t3 - t2, 3)}
    return {"faithfulness": faith, "sanity": sanity, "timing": timing}


def explain_metrics(suite: SuiteConfig, name: str, data: LoadedDataset, checkpoint: Path,
                    chosen: dict[str, list[int]], removal: Removal, artifacts: Path, primary: bool = True
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model info, metrics) of one model's explanations; an additional seed (``primary`` False) is
    scored only: no gallery, no sanity checks (those are the first seed's)."""
    cfg = suite.explain
    start = time.perf_counter()
    model = trained_model(suite, name, checkpoint)
    num_classes = len(data.class_names)
    baseline = (0.0 - data.mean) / data.std  # a black image, the background of every slice
    folder = artifacts / "explain" / safe_name(suite.name) / safe_name(name)
    if primary:
        entries, native = gallery(model, name, data, chosen, cfg, baseline, folder, artifacts)
    else:
        entries, native = [], NativeMaps(name, (), "drawn for the first explained seed only", None)
    gallery_s = time.perf_counter() - start
    test = data.splits["test"]
    with torch.no_grad():  # the grid Grad-CAM's map is computed on, before upsampling
        cam_grid = tuple(feature_tap(model, suite.data.image_size).features(test.images[:1]).shape[-2:])
    metrics: dict[str, Any] = {
        "methods": list(METHODS), "baseline_value": baseline, "gallery": entries, "gradcam_grid": list(cam_grid),
        "native": {"maps": [{"name": m.name, "description": m.description, "uniformity": uniformity(m.maps.numpy())}
                            for m in native.maps],
                   "note": native.note,
                   "channel_map_shape": list(native.channel_map.shape[1:]) if native.channel_map is not None else None},
    }
    clean = clean_references(model, removal, list(data.class_names))
    check = fully_removed(model, {fill: images[torch.from_numpy(clean)] for fill, images in removal.fills.items()},
                          list(data.class_names)) if clean.any() else {}
    metrics["fully_removed"] = {
        "fill": removal.fill, "note": removal.note,
        # the images whose fully removed image this model reads as no finding: its curves are scored on them
        "reference": {"images": len(clean), "scored": int(clean.sum()), "threshold": THRESHOLD,
                      "rule": f"deletion and insertion are scored on the images whose fully removed image "
                              f"({removal.fill}) this model reads as no finding above {THRESHOLD}"},
        **check}
    metrics["fully_removed_max_finding_prob"] = check.get(removal.fill, {}).get("max_finding_prob")
    timing: dict[str, float] = {"gallery_s": round(gallery_s, 3)}
    if chosen["lesion"]:
        scored = _scores(model, _randomised(name, suite, num_classes), data, chosen["lesion"], removal, clean, suite,
                         baseline, cam_grid, primary)
        metrics["faithfulness"] = scored["faithfulness"]
        if primary:
            metrics["sanity"] = scored["sanity"]
        timing.update(scored["timing"])
    else:
        metrics["faithfulness"] = None
        metrics["faithfulness_skipped"] = "the test split has no lesion masks (real data has none), so maps " \
                                          "cannot be scored against lesions; the galleries are still drawn"
    metrics["explain_time_s"] = round(time.perf_counter() - start, 3)
    metrics["timing"] = timing
    log.info("explained %s in %.1f s (%s)", name, metrics["explain_time_s"],
             ", ".join(f"{k} {v:.1f}" for k, v in timing.items()))
    info = model_info(name, suite.scale, model, suite.data.image_size, suite.data.in_chans, num_classes, None)
    return info, metrics


def _explained_checkpoint(paths: RunPaths, suite: SuiteConfig, name: str, seed: int) -> dict[str, Any]:
    """The explained checkpoint's seed and its own test balanced accuracy (from its train result), so
    that the accuracy shown beside the maps is the explained model's, not a mean over seeds."""
    path = result_path(paths.results, env.machine_info()["id"], suite.name, "train", name, seed)
    accuracy = None
    if path.exists():
        result = load_result(path)
        if result["error"] is None:
            accuracy = (result["metrics"].get("balanced_accuracy") or {}).get("value")
    return {"seed": seed, "balanced_accuracy": accuracy}


def explain_one(suite: SuiteConfig, name: str, data: LoadedDataset, paths: RunPaths, seed: int,
                chosen: dict[str, list[int]], removal: Removal, force: bool = False, primary: bool = True
                ) -> Path | None:
    """Explain one model (the checkpoint of ``seed``) and write ``explain__<model>.json`` (an
    additional seed: ``explain__<model>__seed<k>.json``, scores only)."""
    checkpoint = paths.checkpoint(suite.name, name, seed)
    if not checkpoint.exists():
        log.warning("no checkpoint %s: %s is not explained", checkpoint, name)
        return None
    out = result_path(paths.results, env.machine_info()["id"], suite.name, "explain", name, None if primary else seed)
    from bench.stages.train import config_fingerprint

    config = {**suite.to_dict()["explain"], "seed_explained": seed, "primary": primary, "images": chosen,
              "trained": config_fingerprint(suite, name, seed)}
    config["fingerprint"] = fingerprint(config)
    with exclusive_lock(paths.lock_for(out)):
        if not force and is_done(out, config["fingerprint"]):
            log.info("skip explain of %s: %s exists", name, out)
            return out
        info, metrics, error = None, {}, None
        try:
            info, metrics = explain_metrics(suite, name, data, checkpoint, chosen, removal, paths.artifacts, primary)
            metrics["explained_checkpoint"] = _explained_checkpoint(paths, suite, name, seed)
        except Exception as exc:  # noqa: BLE001 - recorded, not dropped
            error = error_record(exc, "explain")
            log.exception("explain of %s failed", name)
        write_result(out, payload("explain", suite.name, info, seed, config, metrics, error))
        log.info("wrote %s", out)
    return out


def explain_suite(suite: SuiteConfig, models: list[str], data: LoadedDataset, paths: RunPaths, *, seed: int,
                  force: bool = False) -> list[Path]:
    """Explain every model that has a checkpoint of each explained seed (``explain.seeds``, else
    ``seed``), then compare them. The first seed chooses the gallery's misclassified images."""
    seeds = suite.explain.seeds or (seed,)
    masks = lesion_masks(data, suite.data.image_size)
    chosen = choose_images(data, suite.explain, masks, _trained_predictions(paths, suite, seeds[0]))
    start = time.perf_counter()
    removal = prepare_removal(data, suite, chosen, masks)
    written = [p for k, s in enumerate(seeds) for name in models
               if (p := explain_one(suite, name, data, paths, s, chosen, removal, force, primary=k == 0)) is not None]
    summary = summarise(suite, paths, written)
    log.info("explain stage of %s: %d models x %d seed(s) in %.1f s", suite.name, len(models), len(seeds),
             time.perf_counter() - start)
    return written + ([summary] if summary else [])
