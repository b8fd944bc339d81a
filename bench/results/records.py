"""What every stage shares: where a run writes, how it fingerprints its config, and the
shape of the payload it records (success or failure alike)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import traceback
from pathlib import Path
from typing import Any

from bench.core import env
from bench.core.paths import check_name, inside, safe_name
from bench.results.store import DATA_DIR, RESULTS_DIR, ResultError, load_result, utc_now

log = logging.getLogger(__name__)

CHECKPOINTS_DIR = DATA_DIR / "checkpoints"
ARTIFACTS_DIR = DATA_DIR / "artifacts"
LOCKS_DIR = DATA_DIR / ".locks"


@dataclasses.dataclass(frozen=True)
class RunPaths:
    """Where a run reads and writes; tests point these at temporary folders."""

    results: Path = RESULTS_DIR
    checkpoints: Path = CHECKPOINTS_DIR
    artifacts: Path = ARTIFACTS_DIR
    locks: Path = LOCKS_DIR

    def checkpoint(self, suite: str, model: str, seed: int) -> Path:
        """Where one (model, seed) checkpoints; unsafe names are refused, the path stays under its root."""
        name = f"{safe_name(check_name(model, 'model name'))}__seed{int(seed)}.pt"
        return inside(self.checkpoints, self.checkpoints / safe_name(check_name(suite, "suite name")) / name,
                      "checkpoint")

    def artifact_dir(self, *names: str) -> Path:
        """A folder under the artifacts root, one safe component per name."""
        return inside(self.artifacts, self.artifacts.joinpath(*(safe_name(n) for n in names)), "artifact folder")

    def lock_for(self, result: Path) -> Path:
        """The lock guarding the production of one result file."""
        rel = inside(self.results, result, "result file").relative_to(self.results)
        return inside(self.locks, self.locks / ("__".join(rel.parts) + ".lock"), "lock file")


def display_path(path: Path) -> str:
    """A path as results record it: relative to the repository when inside it."""
    root = DATA_DIR.parent
    return str(path.relative_to(root)) if Path(path).is_relative_to(root) else str(path)


def fingerprint(config: Any) -> str:
    """A short stable hash of a JSON-able config: equal configs, equal fingerprints."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_done(path: Path, expected_fingerprint: str) -> bool:
    """True when ``path`` holds a valid, error-free result made with the same config.

    A failed run, or one made with another config (say ``--set train.epochs=2``), is
    produced again rather than left standing under the suite's name.
    """
    if not path.exists():
        return False
    try:
        result = load_result(path)
    except ResultError as exc:
        log.warning("%s; it will be produced again", exc)
        return False
    if result["config"].get("fingerprint") != expected_fingerprint:
        log.info("%s was made with another config; it will be produced again", path)
        return False
    return result["error"] is None


def provenance() -> dict[str, Any]:
    """The fields every result file shares: when, what code, which machine and libraries."""
    sha, dirty = env.git_state()
    return {
        "created_utc": utc_now(),
        "git_sha": sha,
        "git_dirty": dirty,
        "command": env.command_line(),
        "machine": env.machine_info(),
        "environment": env.environment(),
    }


def payload(kind: str, suite: str, model: dict[str, Any] | None, seed: int | None,
            config: dict[str, Any], metrics: dict[str, Any], error: dict[str, Any] | None = None,
            **extra: Any) -> dict[str, Any]:
    """A result payload with this run's provenance; ``write_result`` validates it."""
    return {**provenance(), "kind": kind, "suite": suite, "model": model, "seed": seed,
            "config": config, "metrics": metrics, "error": error, **extra}


# The skipped-file list a result carries (about 150 bytes each; every train and baseline result
# carries it); the count is always the full one.
MAX_SKIPPED_RECORDED = 10_000


def dataset_info(data: Any) -> dict[str, Any]:
    """The ``dataset`` field: which data a run was scored on (a ``LoadedDataset``), and which
    unreadable files were left out of it (path relative to the dataset root, and why)."""
    info = {"name": data.name, "synthetic": data.synthetic, "class_names": list(data.class_names)}
    kind = getattr(data, "kind", None)
    if kind:
        info["kind"] = kind
    if getattr(data, "subset", ""):
        info["subset"] = data.subset
    skipped = list(getattr(data, "skipped", ()))
    info["skipped_count"] = len(skipped)
    info["skipped_files"] = [{"path": s.path, "reason": s.reason} for s in skipped[:MAX_SKIPPED_RECORDED]]
    return info


def error_record(exc: BaseException, stage: str) -> dict[str, str]:
    """The ``error`` field of a failed run; the traceback's tail goes to the log."""
    log.error("%s failed: %s\n%s", stage, exc, "".join(traceback.format_exception(exc)[-3:]))
    return {"type": type(exc).__name__, "message": str(exc), "stage": stage}


def model_info(name: str, scale: str, model: Any, image_size: int, in_chans: int, num_classes: int,
               gmacs: float | None) -> dict[str, Any]:
    """The ``model`` field: measured on the model actually benchmarked. A pyramid also records
    what each stage's attention was built with (Swin's windows and shifts, Linformer's k, ...)."""
    info = {"name": name, "scale": scale, "params": sum(p.numel() for p in model.parameters()),
            "gmacs": gmacs, "image_size": image_size, "in_chans": in_chans, "num_classes": num_classes}
    if hasattr(model, "attention_settings"):
        info["attention_stages"] = model.attention_settings()
    return info
