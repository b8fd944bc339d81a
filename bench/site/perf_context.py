"""The typed context of the efficiency pages: each machine's profiles (latency, resolution
sweep, roofline, training MFU), attention scaling against third-party references, and the
complexity table beside the measured exponents. Part of ``bench.site.context``'s contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


RUNTIME_LABELS = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime", "torch_onednn": "PyTorch, oneDNN-packed"}


@dataclass(frozen=True)
class LatencyRow:
    device: str
    dtype: str
    batch_size: int
    threads: int
    image_size: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    cv: float
    throughput_images_per_s: float
    peak_memory_mb: float | None
    runtime: str = "torch"  # or "onnxruntime" (float32, and int8 from dynamic quantisation)
    round_p50_ms: tuple[float, ...] | None = None  # p50 of each interleaved round (bench.stages.rounds)

    @property
    def runtime_label(self) -> str:
        return RUNTIME_LABELS.get(self.runtime, self.runtime)

    @property
    def rounds_text(self) -> str | None:
        """Each round's p50, three significant digits, where there were several rounds."""
        if not self.round_p50_ms or len(self.round_p50_ms) < 2:
            return None
        return " / ".join(f"{v:.3g}" for v in self.round_p50_ms)


@dataclass(frozen=True)
class SweepPoint:
    image_size: int
    tokens: int
    device: str
    dtype: str
    batch_size: int
    status: str  # "ok", or "oom" when that size did not fit
    p50_ms: float | None
    gmacs: float | None


@dataclass(frozen=True)
class Roofline:
    device: str
    dtype: str
    batch_size: int
    achieved_gflops_per_s: float
    peak_gflops_per_s: float | None
    share_of_peak: float | None
    peak_source: str  # "machine record" or "profile"


@dataclass(frozen=True)
class TrainingMfu:
    """Training throughput of one (machine, suite, model), seeds averaged, against the matmul peak."""

    device: str
    dtype: str
    threads: int | None  # CPU threads each run trained with; None on a GPU
    seeds: int
    images_per_s: float
    achieved_gflops_per_s: float  # 3 x forward FLOPs x images/s
    peak_gflops_per_s: float | None  # the machine record's, for this device and dtype (CPU: this share of its threads)
    mfu: float | None


@dataclass(frozen=True)
class ProfileModel:
    machine: str
    suite: str
    model: str
    scale: str
    image_size: int
    params: int
    gmacs: float
    gflops: float | None
    flop_rel_diff: float | None
    latency: tuple[LatencyRow, ...]
    sweep: tuple[SweepPoint, ...]
    roofline: Roofline | None
    training: TrainingMfu | None = None
    exponents: dict[str, Any] | None = None  # the resolution sweep's fitted slopes (vs side, vs tokens)
    int8_agreement: float | None = None  # ONNX Runtime int8's top-1 agreement with float32, where profiled


@dataclass(frozen=True)
class PerfMachine:
    machine: str
    profiles: tuple[ProfileModel, ...]
    sweep_chart: str | None

    @property
    def has_onnxruntime(self) -> bool:
        return any(row.runtime == "onnxruntime" for prof in self.profiles for row in prof.latency)

    @property
    def has_packed(self) -> bool:
        return any(row.runtime == "torch_onednn" for prof in self.profiles for row in prof.latency)


@dataclass(frozen=True)
class PerfSuite:
    """Profiles of one suite: one hardware column per machine in the latency chart."""

    suite: str
    machines: tuple[PerfMachine, ...]
    latency_chart: str | None
    scale: str = "quick"
    image_size: int | None = None

    @property
    def has_training(self) -> bool:
        """Whether any profiled model has training MFU from the suite's own runs."""
        return any(prof.training for section in self.machines for prof in section.profiles)


@dataclass(frozen=True)
class AttentionPoint:
    tokens: int
    status: str
    p50_ms: float | None
    peak_memory_mb: float | None


@dataclass(frozen=True)
class AttentionModule:
    name: str
    slope: float | None
    fit_tokens: tuple[int, ...]
    points: tuple[AttentionPoint, ...]
    largest_ok: int | None
    first_failure: str | None  # e.g. "oom at N=16384"

    @property
    def fit_lo(self) -> int | None:
        return min(self.fit_tokens, default=None)

    @property
    def fit_hi(self) -> int | None:
        return max(self.fit_tokens, default=None)


@dataclass(frozen=True)
class ReferenceRow:
    module: str
    reference: str
    tokens: int
    ours_ms: float | None
    reference_ms: float | None
    ratio: float | None


@dataclass(frozen=True)
class AttentionBench:
    machine: str
    suite: str
    device: str | None
    dtype: str | None
    threads: int | None
    channels: int | None
    batch_size: int | None
    heads: int | None
    modules: tuple[AttentionModule, ...]
    reference: tuple[ReferenceRow, ...]
    chart: str


@dataclass(frozen=True)
class ComplexityRow:
    """One attention's cost per layer beside the exponents measured for it."""

    module: str
    model: str
    complexity: str  # LaTeX
    note: str
    exponents: tuple[tuple[str, float | None], ...]  # (machine, fitted exponent)
