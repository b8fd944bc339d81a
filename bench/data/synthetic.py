"""The synthetic brain-MRI dataset: ten classes in RadImageNet's proportions, as a folder.

Images come from :func:`bench.data.samples.render`, each from its own RNG stream seeded by
(seed, index), so a dataset is a pure function of (num_images, size, seed), down to the
PNG bytes, however many worker processes draw it. Layout (RadImageNet's, plus masks)::

    root/images/<class>/<id>.png   8-bit grey, ``size`` px
    root/masks/<class>/<id>.png    lesion mask, 0/255 (all zero for normal)
    root/manifest.csv              path,label,split,mask_path (relative to root; 70/15/15)
    root/dataset.json              generator, parameters, proportions, counts per split
"""

from __future__ import annotations

import csv
import json
import logging
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from tqdm import tqdm

from bench.core.env import cpu_cores
from bench.data.samples import render, render_with_lesion_free
from bench.data.splits import DEFAULT_FRACTIONS, SPLITS, stratified_split
from bench.results.store import exclusive_lock

if TYPE_CHECKING:
    from bench.core.config import DataConfig

log = logging.getLogger(__name__)

GENERATOR_NAME = "medvit-synthetic-brain"
GENERATOR_VERSION = 1

CLASS_NAMES = (
    "acute_infarct", "arteriovenous_anomaly", "chronic_infarct", "edema", "extra",
    "focal_flair_hyper", "intra", "normal", "pituitary_lesion", "white_matter_changes",
)
# Brain-MR class shares in RadImageNet, which the synthetic set imitates.
RADIMAGENET_PROPORTIONS = {
    "normal": 0.61, "white_matter_changes": 0.08, "chronic_infarct": 0.07, "intra": 0.06,
    "extra": 0.05, "focal_flair_hyper": 0.045, "acute_infarct": 0.035,
    "arteriovenous_anomaly": 0.02, "edema": 0.015, "pituitary_lesion": 0.015,
}
# Rare classes are raised to this share so that val and test hold enough of them.
MIN_FRACTION = 0.03
_GAP_PX = 2  # black columns between the tiles of a sample strip


def effective_proportions() -> dict[str, float]:
    """RadImageNet shares with every class raised to ``MIN_FRACTION``, the rest rescaled."""
    floored: set[str] = set()
    while True:
        free = 1.0 - MIN_FRACTION * len(floored)
        rest = sum(p for c, p in RADIMAGENET_PROPORTIONS.items() if c not in floored)
        shares = {c: MIN_FRACTION if c in floored else RADIMAGENET_PROPORTIONS[c] * free / rest
                  for c in CLASS_NAMES}
        low = {c for c, p in shares.items() if p < MIN_FRACTION - 1e-12}
        if not low:
            return shares
        floored |= low


def class_counts(num_images: int) -> dict[str, int]:
    """Exact images per class for ``num_images`` (largest-remainder rounding, ties by name)."""
    shares = effective_proportions()
    raw = {c: shares[c] * num_images for c in CLASS_NAMES}
    counts = {c: int(np.floor(v)) for c, v in raw.items()}
    order = sorted(CLASS_NAMES, key=lambda c: (-(raw[c] - counts[c]), c))
    for c in order[: num_images - sum(counts.values())]:
        counts[c] += 1
    return counts


def _params(num_images: int, size: int, seed: int, fractions: tuple[float, float, float]) -> dict[str, object]:
    return {"generator": {"name": GENERATOR_NAME, "version": GENERATOR_VERSION},
            "num_images": num_images, "size": size, "seed": seed, "split_fractions": list(fractions)}


def _image_id(index: int) -> str:
    return f"{index:05d}"


def item_rng(seed: int, index: int) -> np.random.Generator:
    """Image ``index``'s own stream, so workers and order cannot change a pixel."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, index)))


def render_item(seed: int, index: int, label: str, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image ``index`` of a dataset again, with its lesion-free twin: (image, core lesion mask,
    lesion-free image); the image is byte for byte the one ``generate`` wrote. The pixels where
    image and twin differ are the finding's evidence (its core mask, halo and mass effect)."""
    image, mask, lesion_free = render_with_lesion_free(label, size, item_rng(seed, index))
    assert lesion_free is not None
    return image, mask, lesion_free


def image_index(path: str | Path) -> int:
    """The generator index of an image written by ``generate`` (its file name)."""
    return int(Path(path).stem)


def _write_chunk(root: Path, size: int, seed: int, items: list[tuple[int, str]]) -> int:
    """Render and write the images ``items`` (index, label); runs in a worker process."""
    for index, label in items:
        image, mask = render(label, size, item_rng(seed, index))
        for kind, pixels in (("images", image), ("masks", mask.astype(np.uint8) * 255)):
            Image.fromarray(pixels).save(root / kind / label / f"{_image_id(index)}.png", compress_level=1)
    return len(items)


def _default_workers(num_images: int) -> int:
    return 1 if num_images < 1000 else min(cpu_cores(), 8)  # a pool costs ~1 s to start


def generate(root: Path, num_images: int, size: int = 128, seed: int = 0, progress: bool = True,
             workers: int | None = None, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> Path:
    """Write ``num_images`` images at ``size`` px under ``root`` (absent or empty) in the layout
    above and return ``root``. ``workers`` defaults to one process per core for large sets;
    it never changes a byte of the output."""
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root}: not empty; generate() writes into a fresh folder")
    counts = class_counts(num_images)
    label_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    labels = [CLASS_NAMES[i] for i in label_rng.permutation(np.repeat(np.arange(len(CLASS_NAMES)),
                                                                        list(counts.values())))]
    splits = stratified_split(labels, fractions, seed=seed)
    for kind in ("images", "masks"):
        for name in CLASS_NAMES:
            (root / kind / name).mkdir(parents=True, exist_ok=True)
    workers = workers or _default_workers(num_images)
    log.info("generating %d synthetic brain images at %d px (seed %d, %d worker(s)) in %s",
             num_images, size, seed, workers, root)
    items = list(enumerate(labels))
    chunks = [items[i:i + 64] for i in range(0, num_images, 64)]
    with tqdm(total=num_images, desc="synthetic images", disable=None if progress else True) as bar:
        if workers == 1:
            for chunk in chunks:
                bar.update(_write_chunk(root, size, seed, chunk))
        else:  # spawn, not fork: the caller may hold torch threads
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                for done in as_completed([pool.submit(_write_chunk, root, size, seed, c) for c in chunks]):
                    bar.update(done.result())

    rows = [(f"images/{label}/{_image_id(i)}.png", label, split, f"masks/{label}/{_image_id(i)}.png")
            for i, (label, split) in enumerate(zip(labels, splits))]
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("path", "label", "split", "mask_path"))
        writer.writerows(rows)
    per_split = {c: dict.fromkeys(SPLITS, 0) for c in CLASS_NAMES}
    for label, split in zip(labels, splits):
        per_split[label][split] += 1
    info = {**_params(num_images, size, seed, fractions), "synthetic": True, "class_names": list(CLASS_NAMES),
            "proportions": {c: round(p, 6) for c, p in effective_proportions().items()},
            "counts": {c: {**per_split[c], "total": counts[c]} for c in CLASS_NAMES}}
    (root / "dataset.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return root


def _read_info(root: Path) -> dict | None:
    try:
        return json.loads((root / "dataset.json").read_text())
    except (OSError, ValueError):
        return None


def ensure_dataset(cfg: DataConfig, progress: bool = True) -> Path:
    """Return the synthetic dataset root for ``cfg``, generating it when absent or stale.

    A new dataset is written to a temporary sibling folder and renamed into place, so a
    killed generation never leaves a half-written dataset behind.
    """
    if cfg.kind != "synthetic":
        raise ValueError(f"ensure_dataset needs data.kind 'synthetic', got {cfg.kind!r}")
    root = cfg.root_path
    wanted = _params(cfg.num_images, cfg.generator_size, cfg.seed, cfg.split_fractions)
    with exclusive_lock(root.parent / f".{root.name}.lock"):  # one generator per root, e.g. across DDP ranks
        info = _read_info(root)
        if info is not None and all(info.get(k) == v for k, v in wanted.items()) \
                and (root / "manifest.csv").is_file():
            return root
        if root.exists() and any(root.iterdir()) and not (info and info.get("synthetic") is True):
            raise FileExistsError(f"{root}: exists and is not a synthetic dataset (no dataset.json with "
                                  '"synthetic": true); refusing to overwrite it')
        for stale in root.parent.glob(f".{root.name}.partial-*"):  # left by a killed run
            shutil.rmtree(stale, ignore_errors=True)
        partial = root.parent / f".{root.name}.partial-{os.getpid()}"
        try:
            generate(partial, cfg.num_images, cfg.generator_size, cfg.seed, progress,
                     fractions=cfg.split_fractions)
            if root.exists():
                old = root.parent / f".{root.name}.partial-old-{os.getpid()}"
                root.rename(old)
                partial.rename(root)
                shutil.rmtree(old)
            else:
                partial.rename(root)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return root


def write_sample_grid(root: Path, out_dir: Path, per_class: int = 4) -> list[Path]:
    """Write ``out_dir/<class>.png``, a strip of the first ``per_class`` train images of each
    class (by path, so the same every time), and a copy of ``dataset.json``; return the paths."""
    root, out_dir = Path(root), Path(out_dir)
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: no manifest; write_sample_grid needs a generated dataset")
    by_class: dict[str, list[str]] = {}
    with open(manifest, newline="") as handle:
        for row in csv.DictReader(handle):
            by_class.setdefault(row["label"], [])
            if row["split"] == "train":
                by_class[row["label"]].append(row["path"])
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for label in sorted(by_class):
        tiles = []
        for rel in sorted(by_class[label])[:per_class]:
            with Image.open(root / rel) as image:
                tiles.append(np.asarray(image.convert("L")))
        if not tiles:
            log.warning("class %r has no train images; no sample strip written", label)
            continue
        height = tiles[0].shape[0]
        gap = np.zeros((height, _GAP_PX), dtype=np.uint8)
        strip = np.concatenate([part for tile in tiles for part in (tile, gap)][:-1], axis=1)
        path = out_dir / f"{label}.png"
        Image.fromarray(strip).save(path, format="PNG")
        written.append(path)
    info_path = out_dir / "dataset.json"
    if (root / "dataset.json").is_file():
        shutil.copyfile(root / "dataset.json", info_path)
    else:
        counts = {label: len(paths) for label, paths in sorted(by_class.items())}
        info_path.write_text(json.dumps({"train_counts": counts}, indent=2, sort_keys=True) + "\n")
    written.append(info_path)
    return written
