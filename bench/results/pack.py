"""Result archives: ``medbench results pack`` and ``unpack``.

A GPU machine lent for minutes keeps its checkpoints; what comes back is one ``.tar.gz`` of
the result files it wrote (and, optionally, small artifacts). The archive carries a manifest
of every member's size and SHA-256. Unpacking checks everything before writing anything:
member types and paths (no links, no ``..``, nothing outside ``results/`` and
``artifacts/``), the manifest, sizes, every result against the schema. Then it merges all or
nothing: a file that is new is written, an identical one left alone, a different one is a
conflict that stops the merge unless ``force``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from bench.core.paths import check_name, inside
from bench.results.store import MAX_RESULT_BYTES, ResultError, atomic_write, iter_result_files, load_result, \
    load_result_bytes, utc_now

log = logging.getLogger(__name__)

FORMAT = "medbench-results-archive"
FORMAT_VERSION = 1
MANIFEST = "MANIFEST.json"
MAX_ARTIFACT_BYTES = 8 * 2**20  # a gallery strip or a sample image; larger files stay where they are
MAX_MANIFEST_BYTES = 16 * 2**20  # a manifest line is ~150 bytes: room for 100,000 files
MAX_ARCHIVE_BYTES = 2 * 2**30  # uncompressed total, against archives that expand without end
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


@dataclass(frozen=True)
class PackSummary:
    archive: Path
    results: int
    artifacts: int
    skipped: tuple[str, ...]  # artifacts left out: checkpoints and files over the size limit
    bytes: int


@dataclass(frozen=True)
class UnpackSummary:
    written: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    overwritten: tuple[str, ...] = ()
    skipped: tuple[str, ...] = field(default=())  # artifacts, when no artifacts folder was given


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _members(results_root: Path, artifacts_root: Path | None, machines: list[str] | None,
             suites: list[str] | None, max_artifact_bytes: int) -> tuple[dict[str, bytes], list[str]]:
    files: dict[str, bytes] = {}
    for path in iter_result_files(results_root):
        rel = path.relative_to(results_root)
        if len(rel.parts) != 3:
            continue
        if (machines and rel.parts[0] not in machines) or (suites and rel.parts[1] not in suites):
            continue
        load_result(path)  # an invalid file is refused, naming it, before anything is written
        files[f"results/{rel.as_posix()}"] = path.read_bytes()
    skipped = []
    if artifacts_root is not None and artifacts_root.is_dir():
        for path in sorted(p for p in artifacts_root.rglob("*") if p.is_file() and not p.is_symlink()):
            rel = path.relative_to(artifacts_root).as_posix()
            if path.suffix in CHECKPOINT_SUFFIXES or path.stat().st_size > max_artifact_bytes:
                skipped.append(rel)
                continue
            files[f"artifacts/{rel}"] = path.read_bytes()
    return files, skipped


def pack_results(results_root: Path, out: Path, *, artifacts_root: Path | None = None,
                 machines: list[str] | None = None, suites: list[str] | None = None,
                 max_artifact_bytes: int = MAX_ARTIFACT_BYTES) -> PackSummary:
    """Write the result files under ``results_root`` (only ``machines``/``suites`` when given),
    and artifacts up to ``max_artifact_bytes`` each, into the archive ``out``, manifest first."""
    results_root, out = Path(results_root), Path(out)
    if max_artifact_bytes > MAX_ARTIFACT_BYTES:
        raise ValueError(f"max_artifact_bytes {max_artifact_bytes} is over the {MAX_ARTIFACT_BYTES} bytes that "
                         "unpacking accepts")
    if out.resolve().is_relative_to(results_root.resolve()):
        raise ResultError(out, f"the archive would be written inside the results it packs ({results_root})")
    files, skipped = _members(results_root, artifacts_root, machines, suites, max_artifact_bytes)
    if not files:
        raise ResultError(results_root, "no result files to pack" + (f" for machines {machines}" if machines else "")
                          + (f" and suites {suites}" if suites else ""))
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "created_utc": utc_now(),
        "machines": sorted({name.split("/")[1] for name in files if name.startswith("results/")}),
        "files": [{"path": name, "bytes": len(data), "sha256": _sha256(data)} for name, data in sorted(files.items())],
    }

    def write(fh: Any) -> None:
        with tarfile.open(fileobj=fh, mode="w:gz") as tar:
            for name, data in [(MANIFEST, json.dumps(manifest, indent=1).encode()), *sorted(files.items())]:
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))

    atomic_write(out, write, binary=True)
    results = sum(name.startswith("results/") for name in files)
    for name in skipped:
        log.info("not packed (checkpoint or over %d MiB): %s", max_artifact_bytes // 2**20, name)
    return PackSummary(out, results, len(files) - results, tuple(skipped), out.stat().st_size)


def _member_path(archive: Path, name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if str(path) != name:  # "./results/x", "results//x": spelled otherwise than it would be written
        raise ResultError(archive, f"member {name!r} is not a normalised relative path; refusing the archive")
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ResultError(archive, f"member {name!r}: an absolute path or one that climbs out; refusing the archive")
    if path.parts[0] not in ("results", "artifacts") or len(path.parts) < 2:
        raise ResultError(archive, f"member {name!r}: outside results/ and artifacts/; refusing the archive")
    if path.parts[0] == "results":
        if len(path.parts) != 4 or path.suffix != ".json":
            raise ResultError(archive, f"member {name!r}: a result file sits at results/<machine>/<suite>/<file>.json")
        for part in path.parts[1:]:
            check_name(part, f"{archive}: member {name!r}: path component")
    return path


def read_archive(archive: Path) -> dict[str, bytes]:
    """Every file of ``archive`` by member name, checked against its manifest (types, paths,
    sizes, hashes) and, for results, the schema. Nothing is written."""
    archive = Path(archive)
    try:
        tar = tarfile.open(archive, mode="r:gz")
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise ResultError(archive, f"not a readable .tar.gz archive ({type(exc).__name__}: {exc})") from None
    files: dict[str, bytes] = {}
    manifest: dict[str, Any] | None = None
    total = 0
    try:
        with tar:
            for info in tar:
                if info.isdir():
                    continue
                if not info.isfile():
                    raise ResultError(archive, f"member {info.name!r} is not a regular file (a link or a device); "
                                               "refusing the archive")
                total += info.size
                if total > MAX_ARCHIVE_BYTES:
                    raise ResultError(archive, f"expands past {MAX_ARCHIVE_BYTES // 2**30} GiB; refusing it")
                if info.name != MANIFEST:
                    _member_path(archive, info.name)
                _check_size(archive, info)  # from the header: an oversized member is never read
                if info.name == MANIFEST:
                    manifest = _manifest(archive, tar.extractfile(info).read())
                    continue
                if info.name in files:
                    raise ResultError(archive, f"member {info.name!r} appears twice")
                files[info.name] = tar.extractfile(info).read()
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise ResultError(archive, f"damaged archive ({type(exc).__name__}: {exc})") from None
    if manifest is None:
        raise ResultError(archive, f"no {MANIFEST}; not a medbench results archive")
    listed = {entry["path"]: entry for entry in manifest["files"]}
    for name in sorted(set(files) - set(listed)):
        raise ResultError(archive, f"member {name!r} is not in the manifest")
    for name in sorted(set(listed) - set(files)):
        raise ResultError(archive, f"the manifest lists {name!r}, which the archive lacks")
    for name, data in files.items():
        if len(data) != listed[name]["bytes"] or _sha256(data) != listed[name]["sha256"]:
            raise ResultError(archive, f"member {name!r} does not match its manifest entry (size or SHA-256)")
        if name.startswith("results/"):
            load_result_bytes(data, f"{archive}:{name}")
    return files


def _check_size(archive: Path, info: tarfile.TarInfo) -> None:
    """Refuse a member whose header declares more bytes than its kind may have (manifest, result or
    artifact), before any of its data is read."""
    if info.name == MANIFEST:
        what, limit = "a manifest", MAX_MANIFEST_BYTES
    elif info.name.startswith("results/"):
        what, limit = "a result", MAX_RESULT_BYTES
    else:
        what, limit = "an artifact (the pack limit)", MAX_ARTIFACT_BYTES
    if info.size > limit:
        raise ResultError(archive, f"member {info.name!r} declares {info.size:,} bytes, over the "
                                   f"{limit:,} allowed for {what}; refused unread")


def _manifest(archive: Path, data: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
        ok = (manifest.get("format") == FORMAT and isinstance(manifest.get("files"), list)
              and all(isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("bytes"), int)
                      and isinstance(e.get("sha256"), str) for e in manifest["files"]))
    except (ValueError, AttributeError):
        ok = False
    if not ok:
        raise ResultError(archive, f"{MANIFEST} is not a {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ResultError(archive, f"archive format_version {manifest.get('format_version')!r}; this code reads "
                                   f"{FORMAT_VERSION}")
    return manifest


def unpack_results(archive: Path, results_root: Path, *, artifacts_root: Path | None = None,
                   force: bool = False, dry_run: bool = False) -> UnpackSummary:
    """Merge ``archive`` into ``results_root`` (and ``artifacts_root``): all checked first, then
    new files written, identical ones left, different ones a conflict unless ``force``."""
    archive = Path(archive)
    files = read_archive(archive)
    plan: dict[str, list[tuple[str, Path, bytes]]] = {"written": [], "unchanged": [], "overwritten": []}
    skipped = []
    for name, data in sorted(files.items()):
        top, rest = name.split("/", 1)
        root = Path(results_root) if top == "results" else artifacts_root
        if root is None:
            skipped.append(name)
            continue
        target = inside(root, root / rest, f"{archive}: member {name!r}")
        if not target.exists():
            plan["written"].append((name, target, data))
        elif not target.is_file() or target.is_symlink():
            raise ResultError(archive, f"member {name!r}: {target} exists and is not a regular file; "
                                       "nothing was written")
        elif target.read_bytes() == data:
            plan["unchanged"].append((name, target, data))
        else:
            plan["overwritten"].append((name, target, data))
    conflicts = [name for name, _, _ in plan["overwritten"]]
    if conflicts and not force:
        shown = ", ".join(conflicts[:5]) + (f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else "")
        raise ResultError(archive, f"{len(conflicts)} file(s) differ from what is here ({shown}); nothing was "
                                   "written (--force overwrites them)")
    if not dry_run:
        for name, target, data in plan["written"] + plan["overwritten"]:
            atomic_write(target, lambda fh, data=data: fh.write(data), binary=True)
    return UnpackSummary(*(tuple(name for name, _, _ in plan[key]) for key in ("written", "unchanged", "overwritten")),
                         skipped=tuple(skipped))
