"""Versioned result files: the only contract between the engine and the site.

Every write is validated against ``data/schema/result.v<N>.schema.json`` and atomic
(temp file in the same folder, fsync, rename), so a reader never sees half a file and
two writers never interleave bytes. Every read checks the schema version first and
names the file in any error.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import logging
import math
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from bench.core.paths import check_name, inside, safe_name  # safe_name: re-exported for the stages

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "data"
SCHEMA_DIR = DATA_DIR / "schema"
RESULTS_DIR = DATA_DIR / "results"

# A result file is a few MB at most (per-image class ids included); a far larger file is not
# one, and reading it whole could exhaust memory, so its size is checked before reading.
MAX_RESULT_BYTES = 64 * 1024 * 1024

# from_version -> function that upgrades a payload by one version (asv-style migrations).
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


class ResultError(ValueError):
    """A result file is unreadable, invalid, or of a schema version this code cannot use."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


# Per-image arrays (thousands of class ids per result): jsonschema checks items one call at a
# time, which made validating a results tree take seconds, so their items are checked here.
_BULK_DEFS = ("class_ids",)


@lru_cache(maxsize=None)
def _schema(version: int) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"result.v{version}.schema.json").read_text())


@lru_cache(maxsize=None)
def _validator(version: int):  # noqa: ANN202 - jsonschema is imported lazily
    import jsonschema

    schema = _schema(version)
    defs = {**schema["$defs"], **{name: {"type": "array"} for name in _BULK_DEFS}}
    return jsonschema.Draft202012Validator({**schema, "$defs": defs})


def _bulk_errors(payload: dict[str, Any], version: int) -> list[str]:
    """The item rules of the bulk arrays (integers, at least the schema's minimum), checked in one pass."""
    metrics = payload.get("metrics")
    if not isinstance(metrics, dict):
        return []
    minimum = _schema(version)["$defs"]["class_ids"]["items"]["minimum"]
    errors = []
    for key in ("test_predictions", "test_labels", "val_predictions", "val_labels"):
        values = metrics.get(key)
        if isinstance(values, list):
            bad = next((i for i, v in enumerate(values)
                        if type(v) is not int or v < minimum), None)  # noqa: E721 - bools are not class ids
            if bad is not None:
                errors.append(f"metrics/{key}/{bad}: {values[bad]!r} is not a class id (an integer >= {minimum})")
    return errors


def non_finite_errors(payload: Any, limit: int = 20) -> list[str]:
    """Where ``payload`` holds NaN or an infinity, anywhere; JSON has no such numbers.

    Iterative, so a deeply nested payload cannot exhaust the call stack.
    """
    if not isinstance(payload, (dict, list, tuple)):
        finite = type(payload) is not float or math.isfinite(payload)  # noqa: E721
        return [] if finite else [f"<root>: non-finite number {payload!r}"]
    errors: list[str] = []
    stack: list[tuple[tuple[str, ...], Any]] = [((), payload)]
    while stack and len(errors) < limit:
        where, value = stack.pop()
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if type(item) is float:  # noqa: E721 - the fast path over ints and strings
                if not math.isfinite(item):
                    errors.append(f"{'/'.join((*where, str(key)))}: non-finite number {item!r} "
                                  "(JSON has no NaN or Infinity)")
            elif isinstance(item, (dict, list, tuple)):
                stack.append(((*where, str(key)), item))
    return errors[:limit]


def _describe(error: Any, limit: int = 240) -> str:
    """One line for a schema error; under oneOf/anyOf, the most specific alternative's complaint
    (``model/name: '<b>' does not match ...``, not "is not valid under any of the given schemas")."""
    while error.context:
        error = max(error.context, key=lambda e: (len(e.absolute_path), -len(e.schema_path)))
    line = f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
    return line if len(line) <= limit else line[:limit - 1] + "…"


def validation_errors(payload: dict[str, Any], check_finite: bool = True) -> list[str]:
    """Schema violations and non-finite numbers of ``payload`` as readable lines; empty when valid.

    ``check_finite=False`` skips the walk for NaN and infinities, for a payload that
    :func:`read_json_object` parsed (it refuses them already) — a millisecond per file the site saves.
    """
    try:
        errors = sorted(_validator(SCHEMA_VERSION).iter_errors(payload), key=lambda e: list(e.absolute_path))
    except RecursionError:
        return ["<root>: nested too deeply to validate"]
    lines = [_describe(e) for e in errors]
    return lines + _bulk_errors(payload, SCHEMA_VERSION) + (non_finite_errors(payload) if check_finite else [])


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def result_path(root: Path, machine_id: str, suite: str, kind: str, model: str | None, seed: int | None) -> Path:
    """Where one run's JSON lives: ``<root>/<machine>/<suite>/<kind>__<model>[__seed<k>].json``.

    Every name must be a safe path component and the path must resolve under ``root``;
    otherwise :class:`~bench.core.paths.UnsafePathError`.
    """
    check_name(machine_id, "machine id")
    check_name(suite, "suite name")
    check_name(kind, "result kind")
    stem = kind if model is None else f"{kind}__{safe_name(check_name(model, 'model name'))}"
    if seed is not None:
        stem += f"__seed{int(seed)}"
    path = Path(root) / safe_name(machine_id) / safe_name(suite) / f"{stem}.json"
    return inside(root, path, "result file")


def dumps(payload: dict[str, Any]) -> str:
    """Canonical JSON text: sorted keys, indent 2, trailing newline, so diffs stay small."""
    return json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n"


def atomic_write(path: Path, write: Callable[[IO], Any], binary: bool = False) -> None:
    """Let ``write`` fill a temp file beside ``path``, then rename it into place: readers see
    the old file or the new one, never a part, even if the process is killed midway."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text))


def write_result(path: Path, payload: dict[str, Any]) -> Path:
    """Validate ``payload`` and write it atomically; an invalid payload is never written."""
    payload = {"schema_version": SCHEMA_VERSION, **payload}
    problems = validation_errors(payload)
    if problems:
        raise ResultError(path, "refusing to write an invalid result:\n  " + "\n  ".join(problems[:20]))
    try:
        text = dumps(payload)
    except ValueError as exc:  # NaN or Inf slipped into the metrics
        raise ResultError(path, f"refusing to write non-finite numbers ({exc})") from None
    atomic_write_text(path, text)
    log.debug("wrote %s", path)
    return Path(path)


class _NonFiniteNumber(ValueError):
    """Raised while parsing: JSON text spelled NaN, Infinity or a float too large to hold."""


def _refuse_constant(text: str) -> float:
    raise _NonFiniteNumber(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf
        raise _NonFiniteNumber(text)
    return value


def _size_error(source: Path | str, size: int) -> ResultError:
    return ResultError(source, f"file is {size / 2**20:.1f} MiB, over the {MAX_RESULT_BYTES / 2**20:.0f} MiB "
                               "limit for a result file; it is not one")


def parse_json_object(data: bytes, source: Path | str) -> dict[str, Any]:
    """``data`` as one JSON object; any problem (not UTF-8, malformed, nested too deeply, NaN or
    Infinity) is one ResultError naming ``source``."""
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float)
    except UnicodeDecodeError as exc:
        raise ResultError(source, f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ResultError(source, f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except _NonFiniteNumber as exc:
        raise ResultError(source, f"holds the non-finite number {exc}; result files hold finite numbers only") from None
    except RecursionError:
        raise ResultError(source, "JSON nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise ResultError(source, f"unreadable JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ResultError(source, f"expected a JSON object, found {type(value).__name__}")
    return value


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file that must hold one object. Whatever the file holds (too large, not UTF-8,
    malformed, nested too deeply, NaN or Infinity), a problem is one ResultError naming it."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_RESULT_BYTES:
            raise _size_error(path, size)
        data = path.read_bytes()
    except OSError as exc:
        raise ResultError(path, f"cannot read file ({exc.strerror or exc})") from None
    return parse_json_object(data, path)


def check_result(payload: dict[str, Any], source: Path | str) -> dict[str, Any]:
    """Version-check and validate a parsed result; every problem names ``source``."""
    version = payload.get("schema_version")
    if not isinstance(version, int):
        raise ResultError(source, "no integer 'schema_version'; this is not a MedViT-Bench result file")
    if version > SCHEMA_VERSION:
        raise ResultError(
            source,
            f"schema_version {version} is newer than this code understands ({SCHEMA_VERSION}); "
            "update MedViT-Bench (git pull && make install)",
        )
    if version < SCHEMA_VERSION:
        hint = "run `medbench results migrate`" if version in MIGRATIONS else "re-run the engine to regenerate it"
        raise ResultError(source, f"schema_version {version} is older than this code ({SCHEMA_VERSION}); {hint}")
    problems = validation_errors(payload, check_finite=False)  # the parser refused NaN and Infinity
    if problems:
        more = f" (and {len(problems) - 1} more; `medbench results validate` lists them)" if len(problems) > 1 else ""
        raise ResultError(source, f"does not match the result schema: {problems[0]}{more}")
    return payload


def load_result(path: Path | str) -> dict[str, Any]:
    """Read, version-check and validate one result file; every problem names the file."""
    return check_result(read_json_object(Path(path)), Path(path))


def load_result_bytes(data: bytes, source: Path | str) -> dict[str, Any]:
    """:func:`load_result` for a file's bytes read elsewhere (an archive member named ``source``)."""
    if len(data) > MAX_RESULT_BYTES:
        raise _size_error(source, len(data))
    return check_result(parse_json_object(data, source), source)


def migrate_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """Upgrade a payload through the registered migrations to the current version."""
    version = payload.get("schema_version")
    while isinstance(version, int) and version < SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise ValueError(f"no migration from schema_version {version}")
        payload = MIGRATIONS[version](payload)
        version = payload["schema_version"]
    return payload


def iter_result_files(root: Path = RESULTS_DIR) -> Iterator[Path]:
    """Every committed result file under ``root``, in a stable order."""
    yield from sorted(Path(root).rglob("*.json"))


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an advisory lock on ``path`` (released by the kernel even on SIGKILL).

    Two processes asked to produce the same result file take turns instead of
    overwriting each other; the second one then finds the result and skips.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
