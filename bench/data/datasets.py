"""Datalists (which file, which class, which split) and the in-memory tensors built from them.

Sources: a RadImageNet-style folder (``root/<class>/*`` or ``root/{train,val,test}/<class>/*``),
the same layout holding DICOM files, or a CSV manifest (``path,label[,split]``). The
synthetic dataset is generated on demand and read through its manifest.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from bench.config import DataConfig
from bench.data.readers import IMAGE_SUFFIXES, is_dicom, read_image
from bench.data.splits import DEFAULT_FRACTIONS, SPLITS, stratified_split

log = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A dataset folder or manifest is malformed; the message names it and the problem."""


@dataclass(frozen=True)
class Sample:
    """One datalist entry."""

    path: Path
    label: str
    split: str
    mask_path: Path | None = None


@dataclass
class SplitTensors:
    images: torch.Tensor  # (N, in_chans, image_size, image_size) float32, normalised
    labels: torch.Tensor  # (N,) int64 indices into LoadedDataset.class_names
    paths: list[str]
    mask_paths: list[str | None] | None = None  # lesion masks, where the source has them


@dataclass
class LoadedDataset:
    name: str
    synthetic: bool
    class_names: list[str]
    root: Path
    splits: dict[str, SplitTensors]
    mean: float = 0.0  # the train-split statistics the images were normalised with
    std: float = 1.0


# --------------------------------------------------------------------------- datalists


def _assign_splits(paths: list[Path], labels: list[str], seed: int,
                   fractions: tuple[float, float, float]) -> list[Sample]:
    splits = stratified_split(labels, fractions, seed=seed)
    return [Sample(p, c, s) for p, c, s in zip(paths, labels, splits)]


def _class_files(class_dir: Path, dicom: bool) -> tuple[list[Path], int]:
    """Image files under one class folder (recursively, sorted) and how many were skipped."""
    files, skipped = [], 0
    for path in sorted(p for p in class_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
        wanted = is_dicom(path) if dicom else path.suffix.lower() in IMAGE_SUFFIXES
        if wanted:
            files.append(path)
        else:
            skipped += 1
    return files, skipped


def folder_datalist(root: Path, dicom: bool = False, seed: int = 0,
                    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> tuple[list[str], list[Sample]]:
    """(class names, samples) of a RadImageNet-style folder; stratified splits when it has none.

    With ``dicom`` only DICOM files count (``.dcm``/``.dicom`` or the DICM marker);
    otherwise PNG, JPEG and ``.dcm`` files do.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    subdirs = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    has_splits = bool(set(subdirs) & set(SPLITS))
    if has_splits and sorted(set(subdirs) & set(SPLITS)) != sorted(SPLITS):
        missing = sorted(set(SPLITS) - set(subdirs))
        raise DatasetError(f"{root}: has split folders but lacks {missing}; give all of train/val/test or none")
    parents = [root / s for s in SPLITS] if has_splits else [root]
    class_names = sorted({p.name for parent in parents for p in parent.iterdir()
                          if p.is_dir() and not p.name.startswith(".")})
    if not class_names:
        raise DatasetError(f"{root}: no class folders (expected {root}/<class>/<image files>)")
    samples: list[Sample] = []
    paths, labels = [], []
    skipped = 0
    for split, parent in zip(SPLITS if has_splits else (None,), parents):
        for name in class_names:
            files, n_skipped = _class_files(parent / name, dicom) if (parent / name).is_dir() else ([], 0)
            skipped += n_skipped
            if split is None:
                paths += files
                labels += [name] * len(files)
            else:
                samples += [Sample(f, name, split) for f in files]
    if skipped:
        log.warning("%s: skipped %d file(s) that are not %s", root, skipped, "DICOM" if dicom else "images")
    if not has_splits:
        samples = _assign_splits(paths, labels, seed, fractions)
    for name in class_names:
        if not any(s.label == name for s in samples):
            log.warning("%s: class folder %r holds no images", root, name)
    return class_names, samples


def manifest_datalist(csv_path: Path, seed: int = 0,
                      fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> tuple[list[str], list[Sample]]:
    """(class names, samples) of a CSV with columns ``path,label[,split][,mask_path]``.

    Relative paths are resolved against the CSV's folder; without splits, stratified ones.
    """
    csv_path = Path(csv_path)
    try:
        with open(csv_path, newline="") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{csv_path}: cannot read manifest ({exc})") from None
    missing = {"path", "label"} - set(columns)
    if missing:
        raise DatasetError(f"{csv_path}: manifest lacks column(s) {sorted(missing)}; has {columns}")
    if not rows:
        raise DatasetError(f"{csv_path}: manifest has no rows")
    base = csv_path.parent
    paths = [base / row["path"] for row in rows]
    labels = [row["label"].strip() for row in rows]
    masks = [base / row["mask_path"] if row.get("mask_path") else None for row in rows]
    splits = [(row.get("split") or "").strip() for row in rows]
    for line, (label, split) in enumerate(zip(labels, splits), start=2):
        if not label:
            raise DatasetError(f"{csv_path}:{line}: empty label")
        if split and split not in SPLITS:
            raise DatasetError(f"{csv_path}:{line}: split {split!r} is not one of {SPLITS}")
    if any(splits) and not all(splits):
        raise DatasetError(f"{csv_path}: some rows have a split and some do not; give all or none")
    if not any(splits):
        splits = stratified_split(labels, fractions, seed=seed)
    samples = [Sample(p, c, s, m) for p, c, s, m in zip(paths, labels, splits, masks)]
    return sorted(set(labels)), samples


def datalist(cfg: DataConfig, progress: bool = True) -> tuple[str, Path, list[str], list[Sample]]:
    """(dataset name, root, class names, samples) for a data config; generates synthetic data."""
    root = cfg.root_path
    if cfg.kind == "synthetic":
        from bench.data.synthetic import CLASS_NAMES, ensure_dataset

        root = ensure_dataset(cfg, progress)
        _, samples = manifest_datalist(root / "manifest.csv", cfg.seed)
        return root.name, root, list(CLASS_NAMES), samples
    if cfg.kind == "manifest":
        if not root.is_file():
            raise DatasetError(f"{root}: no such manifest file (data.kind 'manifest' wants a CSV path)")
        name = root.parent.name if root.stem == "manifest" else root.stem
        return (name, root, *manifest_datalist(root, cfg.seed, cfg.split_fractions))
    return (root.name, root, *folder_datalist(root, dicom=cfg.kind == "dicom", seed=cfg.seed,
                                              fractions=cfg.split_fractions))


def check_label_coverage(root: Path, samples: list[Sample]) -> None:
    """Refuse, before any training, a datalist whose splits a classifier cannot be trained and
    scored on: an empty split, fewer than two classes to train on, or a class that val or test
    holds but train does not (the model could never predict it)."""
    by_split = {split: {s.label for s in samples if s.split == split} for split in SPLITS}
    for split, labels in by_split.items():
        if not labels:
            raise DatasetError(f"{root}: no images in the {split!r} split; each split needs at least one")
    if len(by_split["train"]) < 2:
        raise DatasetError(f"{root}: the train split holds only the class {sorted(by_split['train'])}; "
                           "a classifier needs at least two")
    for split in ("val", "test"):
        missing = sorted(by_split[split] - by_split["train"])
        if missing:
            raise DatasetError(f"{root}: classes {missing} are in the {split!r} split but not in 'train'; "
                               "add training images of them or drop them from the datalist")


# --------------------------------------------------------------------------- tensors


def load_image(path: Path, size: int) -> np.ndarray:
    """Read an image, pad it to a square (anatomy keeps its aspect) and resize to ``size``."""
    pixels = read_image(path)
    h, w = pixels.shape
    if h != w:
        side = max(h, w)
        square = np.zeros((side, side), dtype=np.float32)
        square[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = pixels
        pixels = square
    if pixels.shape[0] != size:  # Pillow's bilinear filter widens with the scale: antialiased
        pixels = np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR))
    return pixels


def load_dataset(cfg: DataConfig, progress: bool = True) -> LoadedDataset:
    """Read every image of the configured dataset into normalised tensors, split by split.

    Images are resized to ``cfg.image_size``, normalised with the train split's mean and
    standard deviation, and repeated to ``cfg.in_chans`` channels. A file that cannot be
    read stops the load with an :class:`~bench.data.readers.ImageReadError` naming it.
    """
    name, root, class_names, samples = datalist(cfg, progress)
    index = {c: i for i, c in enumerate(class_names)}
    unknown = sorted({s.label for s in samples} - set(index))
    if unknown:
        raise DatasetError(f"{root}: labels {unknown} are not among the classes {class_names}")
    check_label_coverage(root, samples)
    pixels = np.empty((len(samples), cfg.image_size, cfg.image_size), dtype=np.float32)
    for i, sample in enumerate(tqdm(samples, desc=f"loading {name}", disable=None if progress else True)):
        pixels[i] = load_image(sample.path, cfg.image_size)
    is_train = np.array([s.split == "train" for s in samples])
    mean = float(pixels[is_train].mean(dtype=np.float64))
    std = max(float(pixels[is_train].std(dtype=np.float64)), 1e-6)
    pixels = (pixels - mean) / std
    splits = {}
    for split in SPLITS:
        rows = [i for i, s in enumerate(samples) if s.split == split]
        images = torch.from_numpy(pixels[rows]).unsqueeze(1)
        has_masks = any(samples[i].mask_path is not None for i in rows)
        splits[split] = SplitTensors(
            images=images.repeat(1, cfg.in_chans, 1, 1) if cfg.in_chans > 1 else images.contiguous(),
            labels=torch.tensor([index[samples[i].label] for i in rows], dtype=torch.int64),
            paths=[str(samples[i].path) for i in rows],
            mask_paths=[str(samples[i].mask_path) if samples[i].mask_path else None for i in rows]
            if has_masks else None,
        )
    log.info("loaded %s: %s images, mean %.4f std %.4f", name,
             {s: len(t.labels) for s, t in splits.items()}, mean, std)
    return LoadedDataset(name=name, synthetic=cfg.kind == "synthetic", class_names=class_names,
                         root=root, splits=splits, mean=mean, std=std)
