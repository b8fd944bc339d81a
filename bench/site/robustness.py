"""The robustness page's context: each suite's shift study as rows of drops from clean, the
robustness score with its ties, and findings written from the numbers.

Read from the suite summary (``shift.json``) that ``bench.stages.shift`` writes: the statistics
are the engine's, the site only arranges them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.core.shift_stats import CLEAN, split_condition
from bench.results.store import safe_name
from bench.site.context import Interval, slug
from bench.site.load import LoadedResult, reading


@dataclass(frozen=True)
class DropCell:
    condition: str
    kind: str
    severity: int
    balanced_accuracy: float
    ece: float | None
    drop: float
    lo: float
    hi: float
    resolved: bool


@dataclass(frozen=True)
class RobustnessRow:
    model: str
    num_seeds: int
    clean: float
    clean_ece: float | None
    score: float | None  # None: clean accuracy not resolved above chance
    score_ci: Interval | None
    is_most_robust: bool
    tied_with_most_robust: bool | None
    cells: tuple[DropCell, ...]  # kinds × severities, in the group's order

    def cell(self, kind: str, severity: int) -> DropCell | None:
        return next((c for c in self.cells if c.kind == kind and c.severity == severity), None)

    def mean_accuracy_at(self, severity: int) -> float:
        values = [c.balanced_accuracy for c in self.cells if c.severity == severity]
        return sum(values) / len(values)


@dataclass(frozen=True)
class RobustnessGroup:
    suite: str
    machine: str
    synthetic: bool
    kinds: tuple[str, ...]
    severities: tuple[int, ...]
    parameters: dict[str, str]  # condition → what the shift does there
    rows: tuple[RobustnessRow, ...]  # most robust first
    n_resamples: int
    examples: dict[str, str]  # kind → site path of its example strip (clean, then each severity)
    findings: tuple[str, ...]

    @property
    def heatmap_charts(self) -> tuple[tuple[int, str], ...]:
        """(severity, chart id) of the drop heatmaps, one per severity."""
        return tuple((s, f"shift-drops-{s}-{slug(self.suite, self.machine)}") for s in self.severities)

    @property
    def severity_chart(self) -> str:
        return f"shift-severity-{slug(self.suite, self.machine)}"

    def description(self, kind: str, severity: int) -> str:
        return self.parameters.get(f"{kind}@{severity}", "")


def _row(model: str, entry: dict[str, Any]) -> RobustnessRow:
    cells = []
    for condition, cell in entry["conditions"].items():
        if condition == CLEAN:
            continue
        kind, severity = split_condition(condition)
        drop = cell["drop"]
        cells.append(DropCell(condition, kind, severity, cell["balanced_accuracy"], cell.get("ece"), drop["mean"],
                              drop["lo"], drop["hi"], drop["resolved"]))
    rob = entry["robustness"]
    return RobustnessRow(model=model, num_seeds=entry["num_seeds"], clean=entry["conditions"][CLEAN]["balanced_accuracy"],
                         clean_ece=entry["conditions"][CLEAN].get("ece"), score=rob["score"],
                         score_ci=Interval(*rob["ci95"]) if rob.get("ci95") else None, is_most_robust=rob.get("is_most_robust", False),
                         tied_with_most_robust=rob["tied_with_most_robust"], cells=tuple(cells))


def _findings(rows: tuple[RobustnessRow, ...], kinds: tuple[str, ...], severities: tuple[int, ...]) -> tuple[str, ...]:
    """Sentences generated from the numbers: who is most robust and who is tied with it, the
    strongest shift, and the best and worst scored models' drops at the strongest severity."""
    scored = [r for r in rows if r.score is not None]
    top = max(severities)
    found = []
    if scored:
        best, worst = scored[0], scored[-1]
        tied = [r.model for r in scored[1:] if r.tied_with_most_robust]
        if len(scored) > 1 and len(tied) == len(scored) - 1:
            found.append(f"No robustness ranking: every model's score ties with the highest ({best.model}, "
                         f"{best.score:.3f}) after Holm's correction; the scores run from {worst.score:.3f} to "
                         f"{best.score:.3f} of the clean margin over chance kept, over {len(kinds)} shifts × "
                         f"{len(severities)} severities.")
        else:
            found.append(f"Most robust: {best.model} keeps {best.score:.1%} of its clean margin over chance on "
                         f"average over {len(kinds)} shifts × {len(severities)} severities"
                         + (f"; tied with it after Holm's correction: {', '.join(tied)}." if tied
                            else "; every other scored model is resolved as less robust after Holm's correction."))
    unscored = [r.model for r in rows if r.score is None]
    if unscored:
        found.append(f"No robustness score for {', '.join(unscored)}: clean balanced accuracy is not resolved "
                     "above chance.")
    by_kind = {k: sum(r.cell(k, top).drop for r in rows) / len(rows) for k in kinds}
    hardest = min(by_kind, key=by_kind.get)
    found.append(f"The strongest shift at severity {top} is {hardest}: balanced accuracy drops by "
                 f"{-by_kind[hardest]:.3f} on average over the models.")
    spread = {k: (min(rows, key=lambda r: r.cell(k, top).drop), max(rows, key=lambda r: r.cell(k, top).drop))
              for k in kinds}
    widest = max(kinds, key=lambda k: spread[k][1].cell(k, top).drop - spread[k][0].cell(k, top).drop)
    hit, spared = spread[widest]
    if len(rows) > 1:
        found.append(f"The models differ most under {widest} at severity {top}: drops from "
                     f"{spared.cell(widest, top).drop:+.3f} ({spared.model}) to {hit.cell(widest, top).drop:+.3f} "
                     f"({hit.model}); each drop's interval is in the table below.")
    for label, row in (("highest", scored[0]), ("lowest", scored[-1])) if len(scored) > 1 else ():
        drops = ", ".join(f"{k} {row.cell(k, top).drop:+.3f}" for k in kinds)
        found.append(f"{row.model} (the {label} score, clean {row.clean:.3f}) at severity {top}: {drops}.")
    return tuple(found)


def examples_path(suite: str, kind: str) -> str:
    """Where the shift stage leaves a suite's example strip of one kind, under the artifacts folder."""
    return f"shift/{safe_name(suite)}/examples-{safe_name(kind)}.png"


def robustness_groups(shifts: list[LoadedResult], synthetic: bool,
                      artifacts: frozenset[str] | None = None) -> tuple[RobustnessGroup, ...]:
    """One group per suite summary (a shift result without a model); ``artifacts``: the files
    present under the artifacts folder (the example grid is shown only where it is there)."""
    groups = []
    for r in shifts:
        if r.payload["model"] is not None:
            continue
        with reading(r.path):
            m, config = r.payload["metrics"], r.payload["config"]
            rows = tuple(sorted((_row(name, entry) for name, entry in m["models"].items()),
                                key=lambda row: (row.score is None, -(row.score or 0.0), row.model)))
            kinds = tuple(config["kinds"])
            severities = tuple(config["severities"])
            groups.append(RobustnessGroup(
                suite=r.payload["suite"], machine=r.machine_id, synthetic=synthetic, kinds=kinds,
                severities=severities, parameters=dict(config.get("parameters", {})), rows=rows,
                n_resamples=m["n_resamples"],
                examples={k: f"assets/{examples_path(r.payload['suite'], k)}" for k in kinds
                          if examples_path(r.payload["suite"], k) in (artifacts or frozenset())},
                findings=_findings(rows, kinds, severities)))
    return tuple(sorted(groups, key=lambda g: (g.suite, g.machine)))
