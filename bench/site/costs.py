"""The cost tables: what each model costs to run and to train, one table per scale and machine.

A table joins a suite's profiles (batch-1 latency per runtime and dtype, throughput, memory)
with its cost results (``bench.stages.cost``: training and inference images/s, MFU, CPU-seconds
and energy per image). Paper scale comes first: it is the size a reader deploys. Energy is
shown as the estimate's central value with its band and as a ratio to the table's lowest,
the only comparison an estimate with assumed wattages supports.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

from bench.core.energy import ESTIMATE_LABEL, MEASURED_LABEL
from bench.site.load import LoadedResult, reading
from bench.site.perf_context import LatencyRow, ProfileModel

# batch-1 latency columns: (runtime, dtype, heading)
LATENCY_COLUMNS = (
    ("torch", "float32", "PyTorch fp32"),
    ("torch_onednn", "float32", "PyTorch packed fp32"),
    ("torch", "bfloat16", "PyTorch bf16"),
    ("onnxruntime", "float32", "ONNX Runtime fp32"),
    ("onnxruntime", "int8", "ONNX Runtime int8"),
)
# the same, short, for the home page's narrow table
SHORT_HEADINGS = {"PyTorch fp32": "PT fp32", "PyTorch packed fp32": "PT packed", "PyTorch bf16": "PT bf16",
                  "ONNX Runtime fp32": "ORT fp32", "ONNX Runtime int8": "ORT int8"}
WH_PER_J = 1 / 3600


@dataclass(frozen=True)
class CostRun:
    """One timed epoch (training) or pass (inference) of a cost result."""

    dtype: str
    threads: int
    batch_size: int
    images_per_s: float
    mfu: float | None
    cpu_s_per_image: float
    energy_label: str  # ESTIMATE_LABEL or MEASURED_LABEL
    wh_per_1000: float  # the central estimate, or the measured value
    wh_band: tuple[float, float] | None  # (low, high) of an estimate


@dataclass(frozen=True)
class CostRow:
    model: str
    params: int
    gmacs: float
    batch1_ms: tuple[float | None, ...]  # in the table's ``columns`` order
    pytorch_vs_ort: float | None  # PyTorch fp32 batch-1 p50 / ONNX Runtime fp32's
    packed_vs_ort: float | None  # the same with PyTorch's oneDNN-packed copy
    throughput_images_per_s: float | None  # PyTorch fp32 at the largest batch profiled
    peak_memory_mb: float | None
    training: tuple[CostRun, ...]
    inference: tuple[CostRun, ...]
    energy_ratio: float | None  # fp32 inference energy / the table's lowest
    pytorch_ms: float | None = None  # eager PyTorch float32 batch-1 p50
    fastest: str | None = None  # the float batch-1 column with the lowest p50 (int8 changes the answers)
    fastest_ms: float | None = None
    int8_agreement: float | None = None  # ONNX Runtime int8's top-1 agreement with float32

    def run(self, kind: str, dtype: str) -> CostRun | None:
        return next((r for r in getattr(self, kind) if r.dtype == dtype), None)

    @property
    def fastest_short(self) -> str | None:
        return SHORT_HEADINGS.get(self.fastest, self.fastest) if self.fastest else None

    @property
    def train_fp32(self) -> CostRun | None:
        return self.run("training", "float32")

    @property
    def train_bf16(self) -> CostRun | None:
        return self.run("training", "bfloat16")

    @property
    def infer_fp32(self) -> CostRun | None:
        return self.run("inference", "float32")


@dataclass(frozen=True)
class CostTable:
    scale: str
    suite: str
    machine: str
    device: str
    image_size: int
    threads: int | None  # of the batch-1 columns (CPU)
    throughput_batch: int | None
    columns: tuple[str, ...]  # batch-1 latency headings present
    has_packed: bool  # a PyTorch oneDNN-packed column, and its ratio to ONNX Runtime
    has_int8: bool  # an ONNX Runtime int8 column, and its agreement with float32
    rows: tuple[CostRow, ...]
    energy_formula: str | None
    energy_parameters: str | None
    energy_label: str | None  # ESTIMATE_LABEL when any row is estimated


def _cost_run(entry: dict[str, Any]) -> CostRun:
    energy = entry["energy"]
    per_image = energy["joules_per_image"]
    estimated = isinstance(per_image, dict)
    central = per_image["central"] if estimated else per_image
    return CostRun(
        dtype=entry["dtype"], threads=entry["threads"], batch_size=entry["batch_size"],
        images_per_s=entry["images_per_s"], mfu=entry.get("mfu"), cpu_s_per_image=entry["cpu_s_per_image"],
        energy_label=energy["label"], wh_per_1000=central * 1000 * WH_PER_J,
        wh_band=(per_image["low"] * 1000 * WH_PER_J, per_image["high"] * 1000 * WH_PER_J) if estimated else None,
    )


def _device(profile: ProfileModel) -> str:
    return "cuda" if any(row.device == "cuda" for row in profile.latency) else "cpu"


def _batch1(profile: ProfileModel, device: str, threads: int | None) -> dict[tuple[str, str], LatencyRow]:
    return {(row.runtime, row.dtype): row for row in profile.latency
            if row.device == device and row.batch_size == 1 and (device != "cpu" or row.threads == threads)}


def _row(profile: ProfileModel, cost: dict[str, Any] | None, device: str, threads: int | None) -> CostRow:
    batch1 = _batch1(profile, device, threads)
    torch_fp32 = [r for r in profile.latency if r.device == device and r.runtime == "torch" and r.dtype == "float32"]
    widest = max(torch_fp32, key=lambda r: (r.batch_size, r.threads), default=None)
    pt, ort = batch1.get(("torch", "float32")), batch1.get(("onnxruntime", "float32"))
    packed = batch1.get(("torch_onednn", "float32"))
    timed = [(batch1[(rt, dt)].p50_ms, heading) for rt, dt, heading in LATENCY_COLUMNS
             if (rt, dt) in batch1 and dt != "int8"]
    fastest_ms, fastest = min(timed) if timed else (None, None)
    return CostRow(
        model=profile.model, params=profile.params, gmacs=profile.gmacs,
        batch1_ms=tuple(batch1[(rt, dt)].p50_ms if (rt, dt) in batch1 else None for rt, dt, _ in LATENCY_COLUMNS),
        pytorch_vs_ort=pt.p50_ms / ort.p50_ms if pt and ort else None,
        packed_vs_ort=packed.p50_ms / ort.p50_ms if packed and ort else None,
        throughput_images_per_s=widest.throughput_images_per_s if widest and widest.batch_size > 1 else None,
        peak_memory_mb=widest.peak_memory_mb if widest else None,
        training=tuple(_cost_run(e) for e in (cost or {}).get("training", [])),
        inference=tuple(_cost_run(e) for e in (cost or {}).get("inference", [])),
        energy_ratio=None, pytorch_ms=pt.p50_ms if pt else None, fastest=fastest, fastest_ms=fastest_ms,
        int8_agreement=profile.int8_agreement,
    )


def _with_energy_ratios(rows: list[CostRow]) -> tuple[CostRow, ...]:
    energies = [r.infer_fp32.wh_per_1000 for r in rows if r.infer_fp32]
    lowest = min(energies, default=None)
    return tuple(replace(r, energy_ratio=r.infer_fp32.wh_per_1000 / lowest if r.infer_fp32 and lowest else None)
                 for r in rows)


def cost_tables(profiles: list[ProfileModel], costs: list[LoadedResult]) -> tuple[CostTable, ...]:
    """One table per (suite, machine) with profiles; paper scale first."""
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    energy_models: dict[tuple[str, str], dict[str, Any]] = {}
    for r in costs:
        with reading(r.path):
            key = (r.payload["suite"], r.machine_id)
            by_key[key + (r.payload["model"]["name"],)] = r.payload["metrics"]
            energy_models[key] = r.payload["metrics"]["energy_model"]
    grouped: dict[tuple[str, str], list[ProfileModel]] = defaultdict(list)
    for prof in profiles:
        grouped[(prof.suite, prof.machine)].append(prof)
    tables = []
    for (suite, machine), profs in grouped.items():
        profs.sort(key=lambda p: p.model)
        device = "cuda" if any(_device(p) == "cuda" for p in profs) else "cpu"
        cpu_threads = [row.threads for p in profs for row in p.latency if row.device == "cpu"]
        threads = max(cpu_threads) if device == "cpu" and cpu_threads else None
        rows = _with_energy_ratios([_row(p, by_key.get((suite, machine, p.model)), device, threads) for p in profs])
        present = [i for i in range(len(LATENCY_COLUMNS)) if any(r.batch1_ms[i] is not None for r in rows)]
        rows = tuple(replace(r, batch1_ms=tuple(r.batch1_ms[i] for i in present)) for r in rows)
        batches = [row.batch_size for p in profs for row in p.latency if row.batch_size > 1]
        energy = energy_models.get((suite, machine))
        estimated = any(run.wh_band is not None for r in rows for run in r.training + r.inference)
        tables.append(CostTable(
            scale=profs[0].scale, suite=suite, machine=machine, device=device, image_size=profs[0].image_size,
            threads=threads, throughput_batch=max(batches) if batches else None,
            columns=tuple(LATENCY_COLUMNS[i][2] for i in present), rows=rows,
            has_packed=any(r.packed_vs_ort is not None for r in rows),
            has_int8=any(r.int8_agreement is not None for r in rows),
            energy_formula=energy["formula"] if energy else None,
            energy_parameters=(f"watts per core {energy['watts_per_core'][1]:g} "
                               f"(band {energy['watts_per_core'][0]:g}–{energy['watts_per_core'][2]:g}), "
                               f"{energy['watts_per_gb']:g} W per resident GB, PUE {energy.get('pue', 1):g}")
            if energy else None,
            energy_label=ESTIMATE_LABEL if estimated else (MEASURED_LABEL if energy else None),
        ))
    return tuple(sorted(tables, key=lambda t: (t.scale != "paper", t.suite, t.machine)))
