"""Read what the engine wrote: result files and dataset artifacts, nothing else.

Every problem with an input names the file (``ResultError``), so the CLI can print one
line instead of a traceback. Iteration is sorted everywhere: the site must be
byte-for-byte reproducible from the same inputs.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from bench.results.store import RESULTS_DIR, ResultError, iter_result_files, load_result, read_json_object

log = logging.getLogger(__name__)

ARTIFACTS_DIR = RESULTS_DIR.parent / "artifacts"
KINDS = ("train", "budget", "baseline", "comparison", "profile", "cost", "shift", "attention", "machine",
         "explain", "export")


@contextlib.contextmanager
def reading(path: Path) -> Iterator[None]:
    """Name the file when a schema-valid result still lacks something the site needs."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as exc:
        raise ResultError(path, f"cannot summarise it for the site ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class LoadedResult:
    """One validated result file: where it is, where it sits under the results root, its JSON."""

    path: Path
    relpath: Path
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
    """``data/artifacts/dataset/<name>/`` as the data pipeline leaves it.

    ``info`` is its ``dataset.json`` as written (a generated dataset's parameters and
    per-class counts, or only ``train_counts`` for a folder dataset); ``samples`` maps a
    class name to its ``<class>.png`` strip (classes without one are absent).
    """

    name: str
    root: Path
    info: dict[str, Any]
    class_names: tuple[str, ...]
    samples: dict[str, Path] = field(default_factory=dict)


def payloads_by_machine(results: list[LoadedResult]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The results' JSON grouped by machine id, machines in sorted order, files in their order."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        grouped.setdefault(r.machine_id, []).append(r.payload)
    return sorted(grouped.items())


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
        loaded.append(LoadedResult(path, path.relative_to(results_dir), payload))
    log.info("loaded %d result files from %s", len(loaded), results_dir)
    return loaded


def _number_map(value: Any, kind: type | tuple[type, ...] = int) -> bool:
    """A JSON object of class name → number (bools excluded)."""
    return isinstance(value, dict) and all(isinstance(n, kind) and not isinstance(n, bool) for n in value.values())


# field → (check, expected shape) for the dataset.json fields the site reads
_DATASET_FIELDS = {
    "synthetic": (lambda v: isinstance(v, bool), "true or false"),
    "counts": (lambda v: isinstance(v, dict) and all(_number_map(c) for c in v.values()), "class → {split: count}"),
    "train_counts": (_number_map, "class → count"),
    "proportions": (lambda v: _number_map(v, (int, float)), "class → share"),
}


def _dataset_class_names(path: Path, info: dict[str, Any]) -> tuple[str, ...]:
    """Check the fields the dataset page reads and return the class names, in dataset order."""
    for key, (check, shape) in _DATASET_FIELDS.items():
        if key in info and not check(info[key]):
            raise ResultError(path, f"field {key!r} must be {shape}")
    names = info.get("class_names")
    if names is None:
        names = sorted(info.get("counts") or info.get("train_counts") or [p.stem for p in path.parent.glob("*.png")])
    plain = isinstance(names, list) and all(isinstance(c, str) and c and "/" not in c and c[0] != "." for c in names)
    if not plain:
        raise ResultError(path, "field 'class_names' must list plain class names (no '/' or leading '.')")
    return tuple(names)


def load_datasets(artifacts_dir: Path = ARTIFACTS_DIR) -> list[DatasetArtifact]:
    """Every ``dataset/<name>/dataset.json`` under ``artifacts_dir`` with its sample PNGs, by name."""
    root = Path(artifacts_dir) / "dataset"
    if not root.is_dir():
        return []
    datasets = []
    for info_path in sorted(root.glob("*/dataset.json")):
        info = read_json_object(info_path)
        names = _dataset_class_names(info_path, info)
        folder = info_path.parent
        samples = {name: folder / f"{name}.png" for name in names if (folder / f"{name}.png").is_file()}
        datasets.append(DatasetArtifact(folder.name, folder, info, names, samples))
    log.info("loaded %d dataset artifacts from %s", len(datasets), root)
    return datasets
