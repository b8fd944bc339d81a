"""The typed context: the only contract between the results and the page templates.

Frozen dataclasses that carry every number a page shows already computed (seed means,
joins, shares of peak), so templates only loop and format. ``bench.site.aggregate``
builds them from the loaded files; chart fields hold the id of a chart built by
``bench.site.charts`` (None when there is nothing to draw). The efficiency pages' part
(profiles, attention scaling) is in ``bench.site.perf_context``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bench.core.energy import ESTIMATE_LABEL
from bench.site.perf_context import AttentionBench, ComplexityRow, PerfSuite

METRICS = ("balanced_accuracy", "top1", "top5", "macro_auc", "cohen_kappa", "ece")
SPLITS = ("train", "val", "test")


def slug(*parts: str) -> str:
    """A deterministic HTML id / file-name fragment from names (``cpu-x`` + ``timm:vit`` → ``cpu-x-timm-vit``)."""
    return "-".join(re.sub(r"[^a-z0-9]+", "-", p.lower()).strip("-") for p in parts)


def model_page_path(model: str) -> str:
    """Where a model's own page is generated, relative to the docs root."""
    return f"models/{slug(model)}.md"


@dataclass(frozen=True)
class MeanStd:
    """Mean and sample standard deviation (n − 1) across seeds; std is None below two values."""

    mean: float | None
    std: float | None
    n: int


@dataclass(frozen=True)
class Interval:
    lo: float
    hi: float


@dataclass(frozen=True)
class ClassRow:
    name: str
    sensitivity: MeanStd
    specificity: MeanStd
    support: int


@dataclass(frozen=True)
class SeedCurve:
    seed: int
    epoch: tuple[float, ...]
    train_loss: tuple[float, ...]
    val_loss: tuple[float, ...]
    val_balanced_accuracy: tuple[float, ...]


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin of a reliability diagram, seeds pooled."""

    lo: float
    hi: float
    count: int
    confidence: float  # mean top-label confidence in the bin
    accuracy: float  # share of correct predictions in the bin


@dataclass(frozen=True)
class LeaderRow:
    """One model (or baseline) of one suite on one machine, aggregated over its successful seeds."""

    model: str
    scale: str
    params: int | None
    gmacs: float | None
    seeds: tuple[int, ...]
    metrics: dict[str, MeanStd]  # METRICS → across-seed mean ± std
    cpu_p50_ms: float | None  # batch 1, float32
    throughput_images_per_s: float | None  # largest CPU float32 batch
    throughput_batch: int | None
    per_class: tuple[ClassRow, ...]
    confusion: tuple[tuple[int, ...], ...]  # summed over seeds; rows = true class
    curves: tuple[SeedCurve, ...]
    curves_chart: str
    confusion_chart: str
    baseline: bool = False  # a trivial reference (chance, pixel logistic regression), not a model
    optimizer_steps: float | None = None  # mean over seeds
    best_epochs: tuple[int | None, ...] = ()
    # the comparison's verdict: every seed plateaued and the budget study (where run) found no gain
    converged: bool | None = None
    plateaued: bool | None = None  # every seed's LR decay began at a validation plateau, not the cap
    budget_gain: float | None = None  # the budget study's validation gain from doubling the recipe
    budget_limited: bool | None = None  # that gain is above the suite's min_delta
    cpu_p90_ms: float | None = None  # the top of the same runs' spread (p90, or a round's p50 if higher)
    final_train_loss: MeanStd | None = None
    # from the suite's comparison result: balanced accuracy across seeds and test images
    ci95: Interval | None = None
    ci95_images: Interval | None = None  # what the test images alone would give
    seed_sd: float | None = None  # (n - 1) SD of the seeds' test balanced accuracies
    expected: bool = False  # a baseline scored by exact expected values: no interval to draw
    tied_with_best: bool | None = None
    p_holm: float | None = None  # the paired test against the best, Holm-adjusted
    better_than_pixel: bool | None = None  # 95% intervals apart from the pixel baseline's, and above
    diagnosis: str | None = None  # how training went, in words from the curves
    caveat: str | None = None  # MODEL_CAVEATS
    # error bars: balanced accuracy's across-seed interval; other metrics the envelope of per-seed intervals
    intervals: dict[str, Interval | None] = field(default_factory=dict)
    interval_kind: dict[str, str] = field(default_factory=dict)
    latency_p50_ms: tuple[float | None, ...] = ()  # per TrainGroup.latency_machines: batch 1, float32, GPU or CPU
    reliability: tuple[ReliabilityBin, ...] = ()

    @property
    def page(self) -> str:
        """The site path of the model's own page."""
        return model_page_path(self.model)

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)


@dataclass(frozen=True)
class BudgetRow:
    """One model of the budget study: validation balanced accuracy at budgets B and 2B."""

    model: str
    epochs_cap: int
    epochs_run: int
    val: float
    decay_trigger: str | None
    doubled_epochs_cap: int
    doubled_epochs_run: int
    doubled_val: float
    gain: float
    budget_limited: bool
    gain_ci95: Interval | None = None  # paired over the validation images (both runs predict the same ones)


@dataclass(frozen=True)
class TrainGroup:
    """The leaderboard of one suite on one machine."""

    machine: str
    suite: str
    dataset: str
    synthetic: bool
    class_names: tuple[str, ...]
    recipe: tuple[tuple[str, str], ...]  # the training settings shown with the results
    rows: tuple[LeaderRow, ...]  # models, best balanced accuracy first
    baselines: tuple[LeaderRow, ...]  # reference rows
    best: str | None  # the best model by the comparison; None without one
    num_test: int | None
    n_resamples: int | None
    pixel_baseline: str | None
    acc_gmacs_chart: str | None
    acc_latency_chart: str | None
    latency_machines: tuple[str, ...] = ()  # machines that profiled this suite: the leaderboard's latency columns
    acc_params_chart: str | None = None
    metrics_chart: str | None = None
    per_class_chart: str | None = None
    calibration_chart: str | None = None
    findings: tuple[str, ...] = ()  # headline sentences computed from the results
    skipped_count: int = 0  # unreadable dataset files the runs skipped (--on-bad-file skip)
    skipped_files: tuple[tuple[str, str], ...] = ()  # (path under the dataset root, reason)
    scale: str = ""  # the models' scale: "paper" groups lead the site, "quick" ones follow
    image_size: int | None = None  # the models' input (px): what every cost on the leaderboard is for
    budget: tuple[BudgetRow, ...] = ()  # the budget study, where it ran
    budget_factor: int | None = None
    budget_delta: float | None = None
    # the smallest and largest half-width of the models' 95% intervals, as the comparison computed them
    half_widths: Interval | None = None

    @property
    def key(self) -> str:
        return slug(self.machine, self.suite)

    @property
    def not_converged(self) -> tuple[str, ...]:
        return tuple(r.model for r in self.rows if r.converged is False)

    @property
    def cap_ended(self) -> tuple[str, ...]:
        """Models with a seed whose LR decay the epoch cap began, not a plateau."""
        return tuple(r.model for r in self.rows if r.plateaued is False)

    @property
    def budget_limited(self) -> tuple[LeaderRow, ...]:
        return tuple(r for r in self.rows if r.budget_limited)

    @property
    def model_count(self) -> int:
        return sum(1 for r in self.rows if not r.baseline)

    @property
    def budget_order_changes(self) -> bool:
        """Whether the budget-limited models rank differently on validation at B and at twice B."""
        limited = {r.model for r in self.budget_limited}
        rows = [b for b in self.budget if b.model in limited]
        return [b.model for b in sorted(rows, key=lambda b: -b.val)] != \
            [b.model for b in sorted(rows, key=lambda b: -b.doubled_val)]

    @property
    def not_better_than_pixel(self) -> tuple[LeaderRow, ...]:
        return tuple(r for r in self.rows if r.better_than_pixel is False)


@dataclass(frozen=True)
class FailedRun:
    file: str
    kind: str
    machine: str
    suite: str
    model: str | None
    seed: int | None
    error_type: str
    message: str
    stage: str | None


@dataclass(frozen=True)
class MachineInfo:
    id: str
    cpu: str
    cores: int
    ram_gb: float | None
    gpu: str | None
    matmul_peaks: tuple[tuple[str, float], ...]  # ("cpu:float32", GFLOP/s), sorted
    git_shas: tuple[str, ...]
    git_dirty: bool
    first_utc: str
    last_utc: str
    versions: tuple[tuple[str, str], ...]  # ("torch", "2.13.0+cpu; 2.12.1") for the libraries shown
    result_files: int


@dataclass(frozen=True)
class ModelInfo:
    name: str
    scale: str
    params: int
    gmacs: float | None
    image_size: int
    attention: str


@dataclass(frozen=True)
class ParamSpread:
    """How closely the pyramid variants of one scale match in parameter count."""

    scale: str
    models: int
    min_params: int
    max_params: int
    spread: float  # max / min − 1


@dataclass(frozen=True)
class DatasetClass:
    name: str
    counts: tuple[int | None, ...]  # per DatasetInfo.splits
    total: int | None
    share: float | None  # the class's intended share of the dataset (generated datasets)
    rule: str | None  # how the generator draws this class
    sample: str | None  # site path of the sample strip


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    synthetic: bool
    builtin_generator: bool  # drawn by bench.data.synthetic, which the dataset page describes
    splits: tuple[str, ...]
    classes: tuple[DatasetClass, ...]
    settings: tuple[tuple[str, str], ...]  # generator parameters, as recorded


@dataclass(frozen=True)
class SiteContext:
    """Everything the templates may use."""

    title: str
    synthetic: bool  # any number on the site comes from synthetic data
    train_groups: tuple[TrainGroup, ...]
    failed: tuple[FailedRun, ...]
    perf_suites: tuple[PerfSuite, ...]
    attention: tuple[AttentionBench, ...]
    machines: tuple[MachineInfo, ...]
    models: tuple[ModelInfo, ...]
    param_spreads: tuple[ParamSpread, ...]
    datasets: tuple[DatasetInfo, ...]
    model_pages: tuple = ()  # bench.site.pages.ModelPage
    machine_records: tuple = ()  # bench.site.pages.MachineRecord
    reproduce: tuple = ()  # bench.site.pages.ReproduceGroup
    downloads: tuple = ()  # bench.site.downloads.ResultFile
    csv: dict[str, str | None] = field(default_factory=dict)  # CSV name → site path (None: no rows)
    class_chart: dict[str, str] = field(default_factory=dict)  # dataset name → class-distribution chart id
    complexity: tuple[ComplexityRow, ...] = ()
    explain: tuple = ()  # bench.site.explain_pages.ExplainGroup
    cost_tables: tuple = ()  # bench.site.costs.CostTable: paper scale first
    robustness: tuple = ()  # bench.site.robustness.RobustnessGroup: the shift studies
    demo: Any = None  # bench.site.demo.DemoContext: the in-browser demo, when models were exported

    @property
    def exponent_machines(self) -> tuple[str, ...]:
        """The machines whose measured attention exponents sit in the complexity table."""
        return tuple(machine for machine, _ in self.complexity[0].exponents) if self.complexity else ()

    @property
    def model_page_names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.model_pages)

    def train_groups_of(self, suite: str) -> tuple[TrainGroup, ...]:
        return tuple(g for g in self.train_groups if g.suite == suite)

    @property
    def train_groups_without_profiles(self) -> tuple[TrainGroup, ...]:
        profiled = {s.suite for s in self.perf_suites}
        return tuple(g for g in self.train_groups if g.suite not in profiled)

    @property
    def lead_cost_tables(self) -> tuple:
        """The home page's cost tables: the paper scale's where there are any, else every one."""
        return tuple(t for t in self.cost_tables if t.scale == "paper") or self.cost_tables

    @property
    def other_cost_scales(self) -> tuple[str, ...]:
        """Scales with cost tables that the home page leaves to the Efficiency page."""
        lead = {t.scale for t in self.lead_cost_tables}
        return tuple(sorted({t.scale for t in self.cost_tables} - lead))

    @property
    def cost_energy_label(self) -> str | None:
        """ESTIMATE_LABEL when any lead table's energy is estimated, else MEASURED_LABEL (None: no energy)."""
        labels = {t.energy_label for t in self.lead_cost_tables if t.energy_label}
        return ESTIMATE_LABEL if ESTIMATE_LABEL in labels else next(iter(labels), None)

    def cost_tables_of(self, suite: str) -> tuple:
        return tuple(t for t in self.cost_tables if t.suite == suite)

    @property
    def has_results(self) -> bool:
        return bool(self.train_groups or self.perf_suites or self.attention or self.failed)
