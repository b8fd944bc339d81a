"""Per-class sample strips of a dataset, for the report site."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

GAP_PX = 2


def write_sample_grid(root: Path, out_dir: Path, per_class: int = 4) -> list[Path]:
    """Write ``out_dir/<class>.png`` (a strip of the first ``per_class`` train images of each
    class, by path) and ``out_dir/dataset.json``; return the written paths."""
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
        gap = np.zeros((height, GAP_PX), dtype=np.uint8)
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
