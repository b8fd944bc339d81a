"""Context of the per-item pages: one page per model, the hardware records, the reproduce list.

Built from the same loaded results and leaderboards as the rest of the site; nothing
here computes a statistic, it only gathers what is already summarised per model,
machine and suite.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from bench.site.context import LeaderRow, ModelInfo, TrainGroup, model_page_path
from bench.site.descriptions import MODEL_CAVEATS
from bench.site.load import LoadedResult, payloads_by_machine
from bench.site.perf_context import ProfileModel

# Attention settings recorded per block that the model page shows, in this order
STAGE_SETTINGS = ("window_size", "shift", "proj_len", "num_features", "redraw_interval", "lpi")


@dataclass(frozen=True)
class StageRow:
    """One stage of a pyramid as its model recorded it (first block's settings, block count)."""

    stage: int
    blocks: int
    dim: int | None
    grid: str
    heads: int | None
    settings: str


@dataclass(frozen=True)
class ModelResult:
    """The model's row in one leaderboard, with where that leaderboard lives."""

    group: TrainGroup
    row: LeaderRow


@dataclass(frozen=True)
class ModelPage:
    name: str
    path: str  # relative to the docs root
    attention: str
    caveat: str | None
    scales: tuple[ModelInfo, ...]
    stages: tuple[tuple[str, tuple[StageRow, ...]], ...]  # (scale, stages) as recorded
    results: tuple[ModelResult, ...]
    profiles: tuple[ProfileModel, ...]
    files: tuple[str, ...]  # site paths of its result files (downloads)


@dataclass(frozen=True)
class MachineRecord:
    """Everything a machine's results say about it and the software they ran with."""

    id: str
    hardware: tuple[tuple[str, str], ...]
    software: tuple[tuple[str, str], ...]  # library → the versions seen in its results
    matmul_peaks: tuple[tuple[str, float], ...]
    result_files: int


@dataclass(frozen=True)
class Command:
    command: str
    git_shas: tuple[str, ...]
    kinds: tuple[str, ...]
    files: int


@dataclass(frozen=True)
class ReproduceGroup:
    machine: str
    suite: str
    commands: tuple[Command, ...]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v)}" for k, v in sorted(value.items()))
    if isinstance(value, (list, tuple)):
        return "×".join(_text(v) for v in value) if all(isinstance(v, int) for v in value) else ", ".join(
            _text(v) for v in value)
    return "—" if value is None else str(value)


def stage_rows(stages: list[list[dict[str, Any]]]) -> tuple[StageRow, ...]:
    """A model's recorded ``attention_stages`` (per stage, per block) as one row per stage."""
    rows = []
    for i, blocks in enumerate(stages, start=1):
        if not blocks:
            continue
        first = blocks[0]
        settings = []
        for key in STAGE_SETTINGS:
            values = [b.get(key) for b in blocks if key in b]
            if values:
                shown = _text(values[0]) if len({_text(v) for v in values}) == 1 else "/".join(_text(v) for v in values)
                settings.append(f"{key.replace('_', ' ')} {shown}")
        rows.append(StageRow(i, len(blocks), first.get("dim"), _text(first.get("grid_size")), first.get("num_heads"),
                             "; ".join(settings) or "—"))
    return tuple(rows)


def model_pages(results: list[LoadedResult], groups: tuple[TrainGroup, ...], profiles: list[ProfileModel],
                models: tuple[ModelInfo, ...], attention: dict[str, str],
                download_path: dict[str, str]) -> tuple[ModelPage, ...]:
    """One page per model that has a train, baseline or profile result."""
    names = {r.payload["model"]["name"] for r in results if r.payload.get("model")}
    stages: dict[str, dict[str, tuple[StageRow, ...]]] = defaultdict(dict)
    files: dict[str, list[str]] = defaultdict(list)
    for r in results:
        model = r.payload.get("model")
        if not model:
            continue
        files[model["name"]].append(download_path[r.relpath.as_posix()])
        if model.get("attention_stages") and model["scale"] not in stages[model["name"]]:
            stages[model["name"]][model["scale"]] = stage_rows(model["attention_stages"])
    pages = []
    for name in sorted(names):
        pages.append(ModelPage(
            name=name, path=model_page_path(name), attention=attention.get(name, "not recorded"),
            caveat=MODEL_CAVEATS.get(name),
            scales=tuple(m for m in models if m.name == name),
            stages=tuple(sorted(stages[name].items())),
            results=tuple(ModelResult(g, row) for g in groups for row in g.rows + g.baselines if row.model == name),
            profiles=tuple(sorted((p for p in profiles if p.model == name), key=lambda p: (p.suite, p.machine))),
            files=tuple(sorted(files[name])),
        ))
    return tuple(pages)


def machine_records(results: list[LoadedResult], peaks: dict[str, dict[str, float]]) -> tuple[MachineRecord, ...]:
    records = []
    for mid, payloads in payloads_by_machine(results):
        hardware = {}
        for p in payloads:  # the fullest record wins; every result of a machine id describes the same box
            if len(p["machine"]) > len(hardware):
                hardware = p["machine"]
        software: dict[str, set[str]] = defaultdict(set)
        for p in payloads:
            for lib, version in p["environment"].items():
                software[lib].add(_text(version))
        records.append(MachineRecord(
            id=mid, hardware=tuple((k, _text(v)) for k, v in sorted(hardware.items())),
            software=tuple((lib, ", ".join(sorted(v))) for lib, v in sorted(software.items())),
            matmul_peaks=tuple(sorted(peaks.get(mid, {}).items())), result_files=len(payloads),
        ))
    return tuple(records)


def reproduce_groups(results: list[LoadedResult]) -> tuple[ReproduceGroup, ...]:
    """The command lines recorded in the results, grouped by machine and suite."""
    by_group: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        by_group[(r.machine_id, r.payload["suite"])][r.payload["command"]].append(r.payload)
    groups = []
    for (machine, suite), commands in sorted(by_group.items()):
        groups.append(ReproduceGroup(machine, suite, tuple(
            Command(command, tuple(sorted({p["git_sha"] for p in payloads})),
                    tuple(sorted({p["kind"] for p in payloads})), len(payloads))
            for command, payloads in sorted(commands.items())
        )))
    return tuple(groups)
