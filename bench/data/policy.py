"""What a datalist must satisfy before any image is read or any model trained.

Each check raises a :class:`DatasetError` that names the source (folder, CSV and line) and
says how to fix it:

* a path in a manifest or split CSV that leaves the dataset root (``../x.png``, ``/abs.png``);
* two spellings of one class that differ only in case or spacing ("did you mean 'edema'?");
* a class with no images, a dataset with a single class, an empty split, and a class that
  val or test holds but train does not.

Known misspellings of real datasets (RadImageNet's ``pituatary_lesion``) are mapped to one
name by :data:`CLASS_ALIASES` before any of this, so they merge rather than fail.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bench.data.splits import SPLITS

log = logging.getLogger(__name__)

# Spellings found in real datasets -> the class name they mean.
CLASS_ALIASES: dict[str, str] = {
    "pituatary_lesion": "pituitary_lesion",  # RadImageNet MR/brain folder name
}


class DatasetError(ValueError):
    """A dataset folder or manifest is malformed; the message names it and the problem."""


@dataclass(frozen=True)
class Sample:
    """One datalist entry."""

    path: Path
    label: str
    split: str
    mask_path: Path | None = None
    frame: int | None = None  # the frame of a multi-frame file this sample is; None: its middle frame


def canonical_class(name: str) -> str:
    """A class name with surrounding spaces dropped and known misspellings mapped."""
    name = name.strip()
    return CLASS_ALIASES.get(name, name)


def log_aliases(names: list[str] | set[str]) -> None:
    """Say once which class names an alias rewrote, so a merged class is never a surprise."""
    for name in sorted({n.strip() for n in names if n.strip() in CLASS_ALIASES}):
        log.info("class %r read as %r (alias table bench.data.policy.CLASS_ALIASES)", name, CLASS_ALIASES[name])


def _spelling_key(name: str) -> str:
    return re.sub(r"[\s_-]+", "_", name.strip().lower())


def check_class_spellings(occurrences: list[tuple[str, str]], source: str | Path) -> None:
    """Refuse labels that differ only in case or spacing (``Edema`` vs ``edema``).

    ``occurrences`` holds ``(label, where)`` pairs, one per sample or class folder; the
    spelling used most often is taken as the class, and the first use of another is named.
    """
    counts = Counter(label for label, _ in occurrences)
    by_key: dict[str, list[str]] = {}
    for label in counts:
        by_key.setdefault(_spelling_key(label), []).append(label)
    for spellings in by_key.values():
        if len(spellings) < 2:
            continue
        spellings.sort(key=lambda s: (-counts[s], s))
        chosen = spellings[0]
        other = spellings[1]
        where = next(w for label, w in occurrences if label == other)
        raise DatasetError(
            f"{source}: label {other!r} ({where}) matches the class {chosen!r} only up to case or spacing; "
            f"did you mean {chosen!r}? Spell every label of a class the same way"
        )


def relative_inside(raw: str, source: str | Path, where: str) -> PurePosixPath:
    """A dataset-relative path from a CSV cell, refused when it could leave the dataset root.

    Backslashes count as separators (manifests written on Windows); an absolute path, a drive
    letter or any ``..`` component is an error, as is an empty cell.
    """
    text = raw.strip().replace("\\", "/")
    if not text:
        raise DatasetError(f"{source} ({where}): empty path")
    if "\x00" in text:
        raise DatasetError(f"{source} ({where}): path {raw!r} contains a NUL byte")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text) or text.startswith("~"):
        raise DatasetError(f"{source} ({where}): path {raw!r} is absolute; paths in a dataset CSV must be "
                           "relative to the dataset root and stay inside it")
    path = PurePosixPath(text)
    if ".." in path.parts:
        raise DatasetError(f"{source} ({where}): path {raw!r} leaves the dataset root; paths in a dataset CSV "
                           "must be relative to it and stay inside it")
    return path


def check_datalist(source: str | Path, class_names: list[str], samples: list[Sample],
                   skipped_by_class: dict[str, int] | None = None) -> None:
    """Refuse, before any training, a datalist a classifier cannot be trained and scored on.

    ``skipped_by_class`` (after unreadable files were skipped) turns "no images" into
    "no readable images" so the message points at the real cause.
    """
    skipped_by_class = skipped_by_class or {}
    if not samples:
        raise DatasetError(f"{source}: no images" + (" left after skipping unreadable files" if skipped_by_class
                                                     else ""))
    counts = Counter(s.label for s in samples)
    for name in class_names:
        if counts[name] == 0:
            if skipped_by_class.get(name):
                raise DatasetError(f"{source}: class {name!r} has no readable images (all {skipped_by_class[name]} "
                                   "were skipped as unreadable); fix the files or drop the class")
            raise DatasetError(f"{source}: class {name!r} has no images; add some or remove the class")
    if len(counts) < 2:
        raise DatasetError(f"{source}: only one class ({sorted(counts)[0]!r}); a classifier needs at least two")
    by_split = {split: {s.label for s in samples if s.split == split} for split in SPLITS}
    for split, labels in by_split.items():
        if not labels:
            raise DatasetError(f"{source}: no images in the {split!r} split; each split needs at least one")
    if len(by_split["train"]) < 2:
        raise DatasetError(f"{source}: the train split holds only the class {sorted(by_split['train'])}; "
                           "a classifier needs at least two")
    for split in ("val", "test"):
        missing = sorted(by_split[split] - by_split["train"])
        if missing:
            raise DatasetError(f"{source}: classes {missing} are in the {split!r} split but not in 'train'; "
                               "add training images of them or drop them from the datalist")
