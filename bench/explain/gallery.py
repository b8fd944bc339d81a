"""The explain stage's gallery: strips of fixed test images for every method and native map.

Each gallery image is explained for the predicted class and, where it differs, the true class;
its strips go to ``<artifacts>/explain/<suite>/<model>/<method>/<index>-<target>.webp`` (native
maps: ``native/<map>-<index>.webp``). Strips the model's result does not reference (left by an
earlier run with other images) are removed, so the artifacts folder holds only what a result names.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.core.config import ExplainConfig
from bench.data.datasets import LoadedDataset
from bench.explain.attribution import METHODS, attribute_all
from bench.explain.deletion import probabilities
from bench.explain.images import write_strip
from bench.results.store import safe_name

log = logging.getLogger(__name__)


def grey(image: torch.Tensor, data: LoadedDataset) -> np.ndarray:
    """A normalised input back to grey [0, 1] for display (first channel)."""
    return (image[0].numpy() * data.std + data.mean).clip(0, 1)


def gallery(model: torch.nn.Module, name: str, data: LoadedDataset, chosen: dict[str, list[int]], cfg: ExplainConfig,
            baseline: float, folder: Path, artifacts: Path) -> tuple[list[dict[str, Any]], Any]:
    """Strips for the gallery images: each method (predicted class, and true class where it differs) and native maps."""
    from bench.explain.native_maps import native_maps

    test = data.splits["test"]
    indices = chosen["samples"] + chosen["misclassified"]
    images, labels = test.images[indices], test.labels[indices]
    predicted = probabilities(model, images).argmax(dim=1)
    entries = [{"image": i, "kind": "sample" if i in chosen["samples"] else "misclassified",
                "true": data.class_names[int(labels[k])], "predicted": data.class_names[int(predicted[k])],
                "files": {}} for k, i in enumerate(indices)]
    for method in METHODS:
        for target_name, targets in (("predicted", predicted), ("true", labels)):
            rows = [k for k in range(len(indices)) if target_name == "predicted" or labels[k] != predicted[k]]
            if not rows:
                continue
            maps = attribute_all(model, method, images[rows], targets[rows], [indices[k] for k in rows], cfg, baseline)
            for m, k in zip(maps, rows):
                path = folder / method / f"{indices[k]:05d}-{target_name}.webp"
                write_strip(path, grey(images[k], data), m)
                entries[k]["files"].setdefault(method, {})[target_name] = path.relative_to(artifacts).as_posix()
    native = native_maps(model, name, images)
    for item in native.maps:
        key = f"native:{item.name}"
        for k in range(len(indices)):
            path = folder / "native" / f"{safe_name(item.name)}-{indices[k]:05d}.webp"
            write_strip(path, grey(images[k], data), item.maps[k].numpy(), absolute=True)
            entries[k]["files"].setdefault(key, {})["predicted"] = path.relative_to(artifacts).as_posix()
    prune_folder(folder, artifacts, entries)
    return entries, native


def uniformity(maps: np.ndarray) -> dict[str, float]:
    """How flat native maps are, read on an absolute scale (each map as a distribution over its pixels,
    mean over images): ``entropy_ratio`` = H(p) / log(pixels), 1 for a uniform map; ``peak_over_uniform``
    = max / mean (1 when flat); ``floor`` = min / max, what every pixel gets at least (attention rollout's
    identity term puts one under every token)."""
    flat = np.clip(np.asarray(maps, dtype=np.float64).reshape(len(maps), -1), 0, None)
    total = flat.sum(axis=1, keepdims=True)
    p = np.divide(flat, total, out=np.full_like(flat, 1.0 / flat.shape[1]), where=total > 0)
    entropy = -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=1) / np.log(flat.shape[1])
    top = flat.max(axis=1)
    return {"entropy_ratio": float(entropy.mean()),
            "peak_over_uniform": float(np.mean(top / np.maximum(flat.mean(axis=1), 1e-12))),
            "floor": float(np.mean(flat.min(axis=1) / np.maximum(top, 1e-12)))}


def prune_folder(folder: Path, artifacts: Path, entries: list[dict[str, Any]]) -> list[Path]:
    """Remove the strips under ``folder`` that ``entries`` do not reference; returns what was removed."""
    kept = {rel for e in entries for targets in e["files"].values() for rel in targets.values()}
    removed = []
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if path.is_file() and path.relative_to(artifacts).as_posix() not in kept:
            path.unlink()
            removed.append(path)
    if removed:
        log.info("removed %d stale gallery strips under %s", len(removed), folder)
    return removed
