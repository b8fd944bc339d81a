"""Read what the engine wrote: result files and dataset artifacts, nothing else.

Every problem with an input names the file (``ResultError``), so the CLI can print one
line instead of a traceback. Iteration is sorted everywhere: the site must be
byte-for-byte reproducible from the same inputs.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.results import RESULTS_DIR, ResultError, iter_result_files, load_result

log = logging.getLogger(__name__)

ARTIFACTS_DIR = RESULTS_DIR.parent / "artifacts"
KINDS = ("train", "profile", "attention", "machine")


@dataclass(frozen=True)
class LoadedResult:
    """One validated result file and where it came from (relative to the results root)."""

    path: Path
    payload: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.payload["kind"]

    @property
    def machine_id(self) -> str:
        return self.payload["machine"]["id"]

    @property
    def failed(self) -> bool:
        return self.payload["error"] is not None


@dataclass(frozen=True)
class DatasetArtifact:
    """``data/artifacts/dataset/<name>/dataset.json`` and the sample strip of each class.

    ``info`` is the JSON as the engine wrote it; ``samples`` maps a class name to its
    ``<class>.png`` (classes without a strip are absent).
    """

    name: str
    root: Path
    info: dict[str, Any]
    samples: dict[str, Path] = field(default_factory=dict)


def load_results(results_dir: Path = RESULTS_DIR) -> list[LoadedResult]:
    """Every result file under ``results_dir``, validated, in path order.

    A missing folder means no results yet (an empty list); a bad file raises
    ``ResultError`` naming it.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        log.info("no results folder at %s", results_dir)
        return []
    loaded = []
    for path in iter_result_files(results_dir):
        payload = load_result(path)
        if payload["kind"] not in KINDS:  # the schema allows only these; guard a future kind
            raise ResultError(path, f"kind {payload['kind']!r} is not one the site can show ({', '.join(KINDS)})")
        loaded.append(LoadedResult(path.relative_to(results_dir), payload))
    log.info("loaded %d result files from %s", len(loaded), results_dir)
    return loaded


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except OSError as exc:
        raise ResultError(path, f"cannot read file ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ResultError(path, f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(value, dict):
        raise ResultError(path, f"expected a JSON object, found {type(value).__name__}")
    return value


def _check_dataset_info(path: Path, info: dict[str, Any]) -> None:
    """The few fields the dataset page relies on, with their types."""
    expected = {"name": str, "synthetic": bool, "class_names": list}
    for key, typ in expected.items():
        if not isinstance(info.get(key), typ):
            raise ResultError(path, f"field {key!r} must be a {typ.__name__}, found {info.get(key)!r}")
    if not all(isinstance(c, str) and c and "/" not in c and not c.startswith(".") for c in info["class_names"]):
        raise ResultError(path, "field 'class_names' must list plain class names (no '/' or leading '.')")
    for key in ("counts", "rules"):
        if key in info and not isinstance(info[key], dict):
            raise ResultError(path, f"field {key!r} must be an object, found {type(info[key]).__name__}")
    for split, counts in (info.get("counts") or {}).items():
        if not isinstance(counts, dict) or not all(isinstance(n, int) for n in counts.values()):
            raise ResultError(path, f"counts[{split!r}] must map class names to integers")


def load_datasets(artifacts_dir: Path = ARTIFACTS_DIR) -> list[DatasetArtifact]:
    """Every ``dataset/<name>/dataset.json`` under ``artifacts_dir`` with its sample PNGs, by name."""
    root = Path(artifacts_dir) / "dataset"
    if not root.is_dir():
        return []
    datasets = []
    for info_path in sorted(root.glob("*/dataset.json")):
        info = _read_json_object(info_path)
        _check_dataset_info(info_path, info)
        folder = info_path.parent
        samples = {name: folder / f"{name}.png" for name in info["class_names"] if (folder / f"{name}.png").is_file()}
        datasets.append(DatasetArtifact(folder.name, folder, info, samples))
    log.info("loaded %d dataset artifacts from %s", len(datasets), root)
    return datasets
