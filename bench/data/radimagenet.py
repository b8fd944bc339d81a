"""The RadImageNet layout as distributed: ``radiology_ai/<modality>/<anatomy>/<pathology>/*.png``
with split CSVs ``RadiologyAI_{train,val,test}.csv`` (columns ``filename,label``).

CSV filenames are relative to the folder *above* ``radiology_ai`` (``radiology_ai/MR/brain/
edema/x.png``); the CSVs may sit there or inside ``radiology_ai``. A subset such as
``MR/brain`` (``data.subset``) keeps the rows under ``radiology_ai/MR/brain/``; the class of
a row is the folder path below the subset, each folder name mapped through the alias table
(``pituatary_lesion`` → ``pituitary_lesion``) and joined with ``-`` (``MR/brain`` gives
``edema``; the whole set gives ``MR-brain-edema``). The folder names the class because the
release's folders are its taxonomy; a ``label`` cell that disagrees is reported, not used.
Without split CSVs the tree is read and split stratified by ``seed``.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path, PurePosixPath

from bench.data.policy import (CLASS_ALIASES, DatasetError, Sample, canonical_class, check_class_spellings,
                               log_aliases, relative_inside)
from bench.data.readers import IMAGE_SUFFIXES
from bench.data.splits import DEFAULT_FRACTIONS, SPLITS, stratified_split

log = logging.getLogger(__name__)

RADIOLOGY_DIR = "radiology_ai"
SPLIT_CSVS = {split: f"RadiologyAI_{split}.csv" for split in SPLITS}
_LAYOUT = f"<root>/{RADIOLOGY_DIR}/<modality>/<anatomy>/<pathology>/*.png"


def radimagenet_root(path: Path) -> Path:
    """The folder above ``radiology_ai/``, given it, ``radiology_ai/`` itself or a split CSV."""
    path = Path(path)
    if path.is_file():
        path = path.parent
    if path.name == RADIOLOGY_DIR and path.is_dir():
        return path.parent
    if (path / RADIOLOGY_DIR).is_dir() or any((path / name).is_file() for name in SPLIT_CSVS.values()):
        return path
    raise DatasetError(f"{path}: not a RadImageNet folder (expected {_LAYOUT}, with optional "
                       f"{', '.join(SPLIT_CSVS.values())})")


def split_csvs(root: Path) -> dict[str, Path]:
    """The split CSVs beside ``radiology_ai/`` or inside it; {} when there are none."""
    for folder in (root, root / RADIOLOGY_DIR):
        found = {split: folder / name for split, name in SPLIT_CSVS.items() if (folder / name).is_file()}
        if found and len(found) < len(SPLITS):
            missing = [SPLIT_CSVS[s] for s in SPLITS if s not in found]
            raise DatasetError(f"{folder}: has {sorted(p.name for p in found.values())} but lacks {missing}; "
                               "give all three split CSVs or none")
        if found:
            return found
    return {}


def _subset_prefix(subset: str) -> PurePosixPath:
    return PurePosixPath(RADIOLOGY_DIR, *[p for p in subset.split("/") if p])


def _class_of(parts: tuple[str, ...]) -> str:
    return "-".join(canonical_class(p) for p in parts)


def _label_agrees(label: str, folder: str) -> bool:
    """A ``label`` cell agrees when empty, a class index, or ending with the folder's name."""
    if not label or label.isdigit():
        return True
    for wrong, right in CLASS_ALIASES.items():
        label = label.replace(wrong, right)
    key = re.sub(r"[\s_-]+", "_", label.lower())
    return key.endswith(re.sub(r"[\s_-]+", "_", canonical_class(folder).lower()))


def _subsets_text(subsets: set[str]) -> str:
    """The modality/anatomy pairs a dataset holds, for an error about a subset it lacks."""
    found = sorted(subsets)
    return ", ".join(found[:20]) + (" ..." if len(found) > 20 else "") if found else "none"


def _read_split_csv(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # -sig: spreadsheets write a BOM
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            rows = [{(k or "").strip(): v or "" for k, v in row.items()} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read split CSV ({exc})") from None
    missing = {"filename", "label"} - set(columns)
    if missing:
        raise DatasetError(f"{path}: split CSV lacks column(s) {sorted(missing)}; has {columns}")
    return rows


def _from_csvs(root: Path, csvs: dict[str, Path], prefix: PurePosixPath) -> list[Sample]:
    samples: list[Sample] = []
    seen: dict[PurePosixPath, str] = {}
    subsets: set[str] = set()
    disagreements: list[str] = []
    for split in SPLITS:
        for line, row in enumerate(_read_split_csv(csvs[split]), start=2):
            rel = relative_inside(row["filename"], csvs[split], f"line {line}")  # every row, subset or not
            if len(rel.parts) > 3 and rel.parts[0] == RADIOLOGY_DIR:
                subsets.add("/".join(rel.parts[1:3]))
            if rel.parts[:len(prefix.parts)] != prefix.parts:
                continue
            folders = rel.parts[len(prefix.parts):-1]
            if not folders:
                raise DatasetError(f"{csvs[split]} (line {line}): {row['filename']!r} lies directly in {prefix}/; "
                                   f"expected {prefix}/<class>/<file>")
            if rel in seen:
                if seen[rel] != split:
                    raise DatasetError(f"{csvs[split]} (line {line}): {row['filename']!r} is listed in both the "
                                       f"{seen[rel]!r} and the {split!r} split; an image belongs to one split")
                log.warning("%s (line %d): %s listed twice; read once", csvs[split], line, row["filename"])
                continue
            seen[rel] = split
            if not _label_agrees(row["label"].strip(), folders[-1]):
                disagreements.append(f"{csvs[split].name} line {line}: label {row['label'].strip()!r} "
                                     f"in folder {folders[-1]!r}")
            samples.append(Sample(root / rel, _class_of(folders), split))
    if not samples:
        raise DatasetError(f"{root}: the split CSVs list no image under {prefix}/; subsets present: "
                           f"{_subsets_text(subsets)}")
    if disagreements:
        log.warning("%d row(s) of the split CSVs carry a label that disagrees with their folder; the folder "
                    "names the class (e.g. %s)", len(disagreements), "; ".join(disagreements[:3]))
    return samples


def _from_tree(root: Path, prefix: PurePosixPath, seed: int,
               fractions: tuple[float, float, float]) -> tuple[list[str], list[Sample]]:
    base = root / prefix
    if not base.is_dir():
        present = {p.relative_to(root / RADIOLOGY_DIR).as_posix() for p in (root / RADIOLOGY_DIR).glob("*/*")
                   if p.is_dir()}
        raise DatasetError(f"{base}: no such folder; subsets present: {_subsets_text(present)}")
    classes: set[str] = set()
    paths, labels = [], []
    ignored = 0
    for folder, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        folders = Path(folder).relative_to(base).parts
        images = sorted(f for f in files if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES)
        ignored += sum(1 for f in files if not f.startswith(".")) - len(images)
        if not folders:
            if images:
                raise DatasetError(f"{base}: holds image files directly; expected {prefix}/<class>/<file>")
            continue
        if not dirs:  # a leaf folder is a class, with or without images (an empty one is refused later)
            classes.add(_class_of(folders))
        paths += [Path(folder) / f for f in images]
        labels += [_class_of(folders)] * len(images)
    if ignored:
        log.warning("%s: ignored %d file(s) that are not images", base, ignored)
    splits = stratified_split(labels, fractions, seed=seed)
    return sorted(classes | set(labels)), [Sample(p, c, s) for p, c, s in zip(paths, labels, splits)]


def radimagenet_datalist(path: Path, subset: str = "", seed: int = 0,
                         fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
                         ) -> tuple[Path, list[str], list[Sample]]:
    """(root above ``radiology_ai``, class names, samples) of a RadImageNet folder or subset."""
    root = radimagenet_root(path)
    prefix = _subset_prefix(subset)
    csvs = split_csvs(root)
    if csvs:
        log.info("RadImageNet %s: splits from %s", prefix, ", ".join(str(p) for p in csvs.values()))
        samples = _from_csvs(root, csvs, prefix)
        class_names = sorted({s.label for s in samples})
    else:
        log.info("RadImageNet %s: no split CSVs; stratified splits with seed %d", prefix, seed)
        class_names, samples = _from_tree(root, prefix, seed, fractions)
    log_aliases({folder for s in samples for folder in s.path.relative_to(root / prefix).parts[:-1]})
    check_class_spellings([(s.label, str(s.path.relative_to(root))) for s in samples], root / prefix)
    return root, class_names, samples
