"""Datalists (which file, which class, which split) and the in-memory tensors built from them.

Sources (``data.kind``): a class-per-folder tree (``root/<class>/*`` or
``root/{train,val,test}/<class>/*``), the same tree holding DICOM files, a CSV manifest
(``path,label[,split][,mask_path]``), the RadImageNet layout (:mod:`bench.data.radimagenet`),
and the synthetic dataset, generated on demand and read through its manifest.

Bad input: the checks of :mod:`bench.data.policy` refuse a malformed datalist before any
image is read. A file the reader rejects is skipped and recorded (``data.on_bad_file =
"skip"``, the default) or stops the load naming it (``"fail"``).
"""

from __future__ import annotations

import csv
import json
import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from bench.core.config import DataConfig
from bench.data.loading import load_image, read_images
from bench.data.policy import (DatasetError, Sample, canonical_class, check_class_spellings, check_datalist,
                               log_aliases, relative_inside)
from bench.data.readers import IMAGE_SUFFIXES, MAX_PIXELS, is_dicom
from bench.data.splits import DEFAULT_FRACTIONS, SPLITS, stratified_split

log = logging.getLogger(__name__)

__all__ = ["DatasetError", "Sample", "SkippedFile", "SplitTensors", "LoadedDataset", "Datalist", "datalist",
           "folder_datalist", "manifest_datalist", "load_image", "load_dataset"]

@dataclass(frozen=True)
class SkippedFile:
    """An image the reader rejected: its path relative to the dataset root, and the reader's reason."""

    path: str
    reason: str


@dataclass
class SplitTensors:
    images: torch.Tensor  # (N, in_chans, image_size, image_size) float32, normalised
    labels: torch.Tensor  # (N,) int64 indices into LoadedDataset.class_names
    paths: list[str]
    mask_paths: list[str | None] | None = None  # lesion masks, where the source has them
    frames: list[int | None] | None = None  # per image, its frame in a multi-frame file (data.frames)


@dataclass
class LoadedDataset:
    name: str
    synthetic: bool
    class_names: list[str]
    root: Path
    splits: dict[str, SplitTensors]
    mean: float = 0.0  # the train-split statistics the images were normalised with
    std: float = 1.0
    kind: str = "synthetic"
    subset: str = ""
    skipped: list[SkippedFile] = field(default_factory=list)


# What a result accepts as a dataset or class name (the schema's "identifier").
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}")


@dataclass(frozen=True)
class Datalist:
    """Everything known about a dataset before its images are read."""

    name: str
    kind: str
    root: Path  # the folder sample paths are relative to
    source: Path  # what errors name: the folder, manifest or RadImageNet subset
    class_names: list[str]
    samples: list[Sample]
    synthetic: bool = False


# --------------------------------------------------------------------------- datalists


def _class_files(class_dir: Path, dicom: bool) -> tuple[list[Path], int]:
    """Image files under one class folder (recursively, sorted) and how many were ignored."""
    files, ignored = [], 0
    for path in sorted(p for p in class_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
        wanted = is_dicom(path) if dicom else path.suffix.lower() in IMAGE_SUFFIXES
        if wanted:
            files.append(path)
        else:
            ignored += 1
    return files, ignored


def folder_datalist(root: Path, dicom: bool = False, seed: int = 0,
                    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> tuple[list[str], list[Sample]]:
    """(class names, samples) of a class-per-folder tree; stratified splits when it has none.

    With ``dicom`` only DICOM files count (``.dcm``/``.dicom`` or the DICM marker);
    otherwise the image suffixes the readers know do. Folder names go through the alias
    table; an empty class folder stays a class, which :func:`check_datalist` refuses.
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
    folders = [(split, p) for split, parent in zip(SPLITS if has_splits else (None,), parents)
               for p in sorted(parent.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    if not folders:
        raise DatasetError(f"{root}: no class folders (expected {root}/<class>/<image files>)")
    log_aliases({f.name for _, f in folders})
    class_names = sorted({canonical_class(f.name) for _, f in folders})
    samples: list[Sample] = []
    paths, labels = [], []
    spellings: list[tuple[str, str]] = []  # one per image (at least one per folder): the usual spelling wins
    ignored = 0
    for split, folder in folders:
        files, n_ignored = _class_files(folder, dicom)
        ignored += n_ignored
        name = canonical_class(folder.name)
        spellings += [(name, f"folder {folder.relative_to(root)}")] * max(1, len(files))
        if split is None:
            paths += files
            labels += [name] * len(files)
        else:
            samples += [Sample(f, name, split) for f in files]
    check_class_spellings(spellings, root)
    if ignored:
        log.warning("%s: ignored %d file(s) that are not %s", root, ignored, "DICOM" if dicom else "images")
    if not has_splits:
        splits = stratified_split(labels, fractions, seed=seed)
        samples = [Sample(p, c, s) for p, c, s in zip(paths, labels, splits)]
    return class_names, samples


def manifest_datalist(csv_path: Path, seed: int = 0,
                      fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> tuple[list[str], list[Sample]]:
    """(class names, samples) of a CSV with columns ``path,label[,split][,mask_path]``.

    Paths are relative to the CSV's folder and must stay inside it; labels go through the
    alias table and must agree in case and spacing; without splits, stratified ones.
    """
    csv_path = Path(csv_path)
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:  # -sig: spreadsheets write a BOM
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
    paths, labels, masks, splits = [], [], [], []
    for line, row in enumerate(rows, start=2):
        label, split = (row.get("label") or "").strip(), (row.get("split") or "").strip()
        if not label:
            raise DatasetError(f"{csv_path}:{line}: empty label")
        if split and split not in SPLITS:
            raise DatasetError(f"{csv_path}:{line}: split {split!r} is not one of {SPLITS}")
        paths.append(base / relative_inside(row.get("path") or "", csv_path, f"line {line}"))
        mask = (row.get("mask_path") or "").strip()
        masks.append(base / relative_inside(mask, csv_path, f"line {line}, mask_path") if mask else None)
        labels.append(canonical_class(label))
        splits.append(split)
    log_aliases({(row.get("label") or "") for row in rows})
    check_class_spellings([(label, f"line {line}") for line, label in enumerate(labels, start=2)], csv_path)
    if any(splits) and not all(splits):
        raise DatasetError(f"{csv_path}: some rows have a split and some do not; give all or none")
    if not any(splits):
        splits = stratified_split(labels, fractions, seed=seed)
    samples = [Sample(p, c, s, m) for p, c, s, m in zip(paths, labels, splits, masks)]
    return sorted(set(labels)), samples


def _is_synthetic_folder(folder: Path) -> bool:
    """A folder the synthetic generator wrote (its dataset.json says so), read as a manifest."""
    try:
        return json.loads((folder / "dataset.json").read_text()).get("synthetic") is True
    except (OSError, ValueError, AttributeError):
        return False


def datalist(cfg: DataConfig, progress: bool = True) -> Datalist:
    """The datalist of a data config; generates synthetic data when it is absent."""
    root = cfg.root_path.resolve()  # a name such as "data/.." must not name the dataset ".."
    if cfg.kind == "synthetic":
        from bench.data.synthetic import CLASS_NAMES, ensure_dataset

        root = ensure_dataset(cfg, progress)
        _, samples = manifest_datalist(root / "manifest.csv", cfg.seed)
        return Datalist(root.name, "synthetic", root, root, list(CLASS_NAMES), samples, synthetic=True)
    if cfg.kind == "manifest":
        if not root.is_file():
            raise DatasetError(f"{root}: no such manifest file (data.kind 'manifest' wants a CSV path)")
        name = root.parent.name if root.stem == "manifest" else root.stem
        class_names, samples = manifest_datalist(root, cfg.seed, cfg.split_fractions)
        return Datalist(name, "manifest", root.parent, root, class_names, samples,
                        synthetic=_is_synthetic_folder(root.parent))
    if cfg.kind == "radimagenet":
        from bench.data.radimagenet import radimagenet_datalist

        base, class_names, samples = radimagenet_datalist(root, cfg.subset, cfg.seed, cfg.split_fractions)
        name = "radimagenet" + (f"-{cfg.subset.replace('/', '-')}" if cfg.subset else "")
        source = base / "radiology_ai" / cfg.subset if cfg.subset else base
        return Datalist(name, "radimagenet", base, source, class_names, samples)
    class_names, samples = folder_datalist(root, dicom=cfg.kind == "dicom", seed=cfg.seed,
                                           fractions=cfg.split_fractions)
    return Datalist(root.name, cfg.kind, root, root, class_names, samples)


def checked(listing: Datalist) -> Datalist:
    """The datalist with a dataset name the results accept (other characters become '-'), once
    every class name is one (refused otherwise, naming the source: a result must never hold
    markup where the site shows a class)."""
    for name in listing.class_names:
        if not IDENTIFIER.fullmatch(name):
            raise DatasetError(f"{listing.source}: class name {name!r} has characters other than letters, digits "
                               "and ._:/- (rename its folder or label)")
    name = re.sub(r"[^A-Za-z0-9._:/-]+", "-", listing.name).strip("-") or "dataset"
    return replace(listing, name=name if name[0].isalnum() else f"d{name}")


# --------------------------------------------------------------------------- tensors


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def _read_all(listing: Datalist, cfg: DataConfig, progress: bool
              ) -> tuple[np.ndarray, list[Sample], list[SkippedFile], dict[str, int]]:
    """Every image of the datalist, resized; unreadable ones skipped or fatal by ``cfg.on_bad_file``.

    With ``cfg.frames == "all"`` each frame of a multi-frame file is a sample of its own, in its
    file's split. Returns the pixels and samples kept, the files skipped and how many each class lost.
    """
    loaded = read_images([s.path for s in listing.samples], cfg.image_size, cfg.load_workers, frame=cfg.frames,
                         max_pixels=cfg.max_pixels or MAX_PIXELS, fail_fast=cfg.on_bad_file == "fail",
                         desc=f"loading {listing.name}", progress=progress)
    skipped = [SkippedFile(_relative(listing.samples[i].path, listing.root), problem)
               for i, problem in sorted(loaded.problems.items())]
    lost: dict[str, int] = {}
    for i in loaded.problems:
        lost[listing.samples[i].label] = lost.get(listing.samples[i].label, 0) + 1
    samples = [replace(listing.samples[owner], frame=frame) if frame is not None
               else listing.samples[owner] for owner, frame in zip(loaded.owners, loaded.frames)]
    if cfg.frames == "all":
        log.info("%s: %d frames from %d files", listing.name, len(samples), len(set(loaded.owners)))
    return loaded.pixels, samples, skipped, lost


def _log_skipped(listing: Datalist, skipped: list[SkippedFile]) -> None:
    """One warning listing every skipped file, so a run's log says exactly what it left out."""
    lines = "\n".join(f"  {s.path}: {s.reason}" for s in skipped)
    log.warning("skipped %d unreadable file(s) of %d in %s (data.on_bad_file = 'skip'; --on-bad-file=fail stops at "
                "the first):\n%s", len(skipped), len(listing.samples), listing.source, lines)


def load_dataset(cfg: DataConfig, progress: bool = True) -> LoadedDataset:
    """Read every image of the configured dataset into normalised tensors, split by split.

    The datalist is checked first (:mod:`bench.data.policy`), so a malformed dataset fails
    before any image is read. Images are resized to ``cfg.image_size``, normalised with the
    train split's mean and standard deviation, and repeated to ``cfg.in_chans`` channels. A
    file the reader rejects is skipped and recorded in ``LoadedDataset.skipped``, or, with
    ``cfg.on_bad_file == "fail"``, stops the load with an ``ImageReadError`` naming it.
    """
    listing = checked(datalist(cfg, progress))
    log.info("dataset %s: kind %s%s, %d images in %d classes, from %s", listing.name, listing.kind,
             f", subset {cfg.subset}" if cfg.subset else "", len(listing.samples), len(listing.class_names),
             listing.source)
    index = {c: i for i, c in enumerate(listing.class_names)}
    unknown = sorted({s.label for s in listing.samples} - set(index))
    if unknown:
        raise DatasetError(f"{listing.source}: labels {unknown} are not among the classes {listing.class_names}")
    check_datalist(listing.source, listing.class_names, listing.samples)
    pixels, samples, skipped, lost = _read_all(listing, cfg, progress)
    if skipped:
        _log_skipped(listing, skipped)
        check_datalist(listing.source, listing.class_names, samples, lost)  # what is left must still train
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
            frames=[samples[i].frame for i in rows] if any(samples[i].frame is not None for i in rows) else None,
        )
    log.info("loaded %s: %s images, mean %.4f std %.4f", listing.name,
             {s: len(t.labels) for s, t in splits.items()}, mean, std)
    return LoadedDataset(name=listing.name, synthetic=listing.synthetic, class_names=listing.class_names,
                         root=listing.root, splits=splits, mean=mean, std=std, kind=listing.kind,
                         subset=cfg.subset, skipped=skipped)
