"""Which files under the artifacts folder the results reference, and pruning the rest.

The artifacts folder (``data/artifacts/``) holds what the site shows besides the result files:
gallery strips (explain), ONNX files and sample images (export), and each dataset's record with
its sample strips. A file belongs there only while a result (or a dataset record) references it:

- a result references a file by its path relative to the artifacts folder, anywhere in its JSON
  (the explain gallery's ``files``, the export's ``web_file`` and samples);
- a dataset record ``dataset/<name>/dataset.json`` references itself and its per-class sample
  strips ``dataset/<name>/<class>.png`` (the site reads the record directly);
- the export's uncompressed ``*.onnx`` is referenced but kept out of git on purpose (its gzip
  is committed), so it may be missing.

``python -m bench.explain.artifacts`` lists unreferenced and missing files and the explain
folder's size; ``--prune`` removes the unreferenced files (the explain stage already removes
its own stale strips when it runs).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SUFFIXES = (".webp", ".png", ".gz", ".onnx", ".json", ".bin", ".npz", ".npy")
LOCAL_ONLY = (".onnx",)  # referenced, deliberately not committed (.gitignore)
EXPLAIN_MAX_BYTES = 15 * 1024 * 1024
GALLERY_IMAGE_MAX_BYTES = 60 * 1024


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def referenced(results_dir: Path) -> set[str]:
    """Paths (relative to the artifacts folder) that some result file names."""
    out = set()
    for path in sorted(Path(results_dir).rglob("*.json")):
        try:
            payload = json.loads(path.read_text())
        except (OSError, ValueError):
            log.warning("unreadable result %s: its references are not counted", path)
            continue
        out |= {s for s in _strings(payload) if "/" in s and not s.startswith("/") and s.endswith(SUFFIXES)}
    return out


def dataset_files(artifacts_dir: Path) -> set[str]:
    """Each dataset record and the per-class sample strips it lists."""
    out = set()
    for record in sorted(Path(artifacts_dir).glob("dataset/*/dataset.json")):
        folder = record.parent.relative_to(artifacts_dir).as_posix()
        out.add(f"{folder}/dataset.json")
        try:
            classes = json.loads(record.read_text()).get("class_names") or []
        except (OSError, ValueError):
            classes = []
        out |= {f"{folder}/{name}.png" for name in classes}
    return out


def present(artifacts_dir: Path) -> set[str]:
    root = Path(artifacts_dir)
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} if root.is_dir() else set()


def unreferenced(artifacts_dir: Path, results_dir: Path) -> list[str]:
    """Files under the artifacts folder that no result and no dataset record references."""
    return sorted(present(artifacts_dir) - referenced(results_dir) - dataset_files(artifacts_dir))


def missing(artifacts_dir: Path, results_dir: Path) -> list[str]:
    """Referenced files that are not there (the export's uncompressed ONNX aside)."""
    return sorted(p for p in referenced(results_dir) - present(artifacts_dir) if not p.endswith(LOCAL_ONLY))


def explain_sizes(artifacts_dir: Path) -> tuple[int, list[tuple[str, int]]]:
    """(bytes of the explain folder, gallery images over GALLERY_IMAGE_MAX_BYTES)."""
    root = Path(artifacts_dir)
    files = [p for p in (root / "explain").rglob("*") if p.is_file()]
    large = [(p.relative_to(root).as_posix(), p.stat().st_size) for p in files
             if p.stat().st_size > GALLERY_IMAGE_MAX_BYTES]
    return sum(p.stat().st_size for p in files), sorted(large)


def prune(artifacts_dir: Path, results_dir: Path) -> list[str]:
    """Remove the unreferenced files (and the folders left empty); returns what was removed."""
    removed = unreferenced(artifacts_dir, results_dir)
    for rel in removed:
        (Path(artifacts_dir) / rel).unlink()
    for folder in sorted((p for p in Path(artifacts_dir).rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(folder.iterdir()):
            folder.rmdir()
    log.info("removed %d unreferenced artifact files", len(removed))
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.explain.artifacts", description=__doc__.split("\n")[0])
    parser.add_argument("--results-dir", type=Path, default=Path("data/results"))
    parser.add_argument("--artifacts-dir", type=Path, default=Path("data/artifacts"))
    parser.add_argument("--prune", action="store_true", help="remove the unreferenced files")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    stale = unreferenced(args.artifacts_dir, args.results_dir)
    absent = missing(args.artifacts_dir, args.results_dir)
    total, large = explain_sizes(args.artifacts_dir)
    log.info("%d unreferenced files, %d referenced files missing; explain artifacts %.1f MB (limit %.0f MB); "
             "%d gallery images over %d KB", len(stale), len(absent), total / 2**20, EXPLAIN_MAX_BYTES / 2**20,
             len(large), GALLERY_IMAGE_MAX_BYTES // 1024)
    for rel in absent:
        log.info("missing: %s", rel)
    if args.prune:
        prune(args.artifacts_dir, args.results_dir)
    else:
        for rel in stale[:20]:
            log.info("unreferenced: %s", rel)
    return 1 if absent else 0


if __name__ == "__main__":
    raise SystemExit(main())
