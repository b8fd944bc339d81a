"""Context of the explainability pages: faithfulness per model and method beside every baseline,
the sanity checks, deletion's starting probabilities, galleries, misclassified images.

Read from the ``explain`` results: one per model, and the suite summary (models tied with the
best, flagged methods, the lead pair, the metrics' rank correlations). The gallery's image files
are copied from the artifacts folder into the site (``assets/explain/``); nothing here computes a
statistic: every verdict shown is the engine's. The findings are worded in ``explain_findings``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from bench.site.context import Interval, TrainGroup, slug
from bench.site.explain_findings import Finding, findings, gradcam_grids
from bench.site.explain_rows import (
    BaselineRow, CurveRow, FaithRow, ScoreTable, baseline_rows, curve_row, faith_rows, score_tables,
)
from bench.site.explain_rows import METHOD_LABELS, SCORE_LABELS  # noqa: F401 - re-exported for the charts
from bench.site.load import LoadedResult, reading

log = logging.getLogger(__name__)


# the strips' widths in pixels (bench.explain.images): input | map | overlay, and native maps'
# absolute strips with their colour bar
STRIP_WIDTH, NATIVE_STRIP_WIDTH = 292, 328


def explain_asset(relpath: str) -> str:
    """Where an explain artifact (a path under the artifacts folder) is copied in the site."""
    return f"assets/{relpath}"


@dataclass(frozen=True)
class GalleryItem:
    model: str
    method: str  # a method key, or "native:<name>"
    method_label: str
    image: int
    kind: str  # sample | misclassified
    true: str
    predicted: str
    target: str  # the class the map explains
    explains: str  # "predicted" or "true" where they differ, "either" where the prediction was right
    src: str  # site path
    width: int = STRIP_WIDTH


@dataclass(frozen=True)
class NativeInfo:
    model: str
    maps: tuple[tuple[str, str], ...]  # (name, description)
    note: str | None
    # per map: (name, entropy ÷ log pixels, peak ÷ mean, min ÷ max), means over the gallery images
    uniformity: tuple[tuple[str, float | None, float | None, float | None], ...] = ()


@dataclass(frozen=True)
class MisclassifiedImage:
    image: int
    true: str
    cells: tuple[GalleryItem, ...]  # every model's maps of it (all methods; the page filters)


@dataclass(frozen=True)
class Correlations:
    """Spearman's ρ between the scores over every model–method pair."""

    labels: tuple[str, ...]
    rows: tuple[tuple[str, tuple[float | None, ...]], ...]
    pairs: int


@dataclass(frozen=True)
class ExplainGroup:
    machine: str
    suite: str
    synthetic: bool
    rows: tuple[FaithRow, ...]
    methods: tuple[str, ...]  # unflagged methods first
    models: tuple[str, ...]
    classes: tuple[str, ...]
    gallery: tuple[GalleryItem, ...]
    misclassified: tuple[MisclassifiedImage, ...]
    native: tuple[NativeInfo, ...]
    skipped: str | None  # why there are no faithfulness scores (real data has no masks)
    findings: tuple[Finding, ...]
    images_scored: int | None
    tolerance: int | None
    explain_seconds: float | None
    chart: str | None
    score_tables: tuple[ScoreTable, ...] = ()
    baselines: tuple[BaselineRow, ...] = ()
    curves: tuple[CurveRow, ...] = ()
    flagged: tuple[str, ...] = ()  # labels of the methods that fail a sanity check for some model
    correlations: Correlations | None = None
    sanity_threshold: float | None = None
    sanity_judged_from: int | None = None
    cascade_orders: tuple[tuple[str, str], ...] = ()  # (model, "head → stage 4 → … → stem")
    fill: str | None = None
    blur_sigma_px: float | None = None
    gradcam_grid: str | None = None
    curve_baselines: tuple[str, ...] = ()  # the model-free baselines' labels in the deletion table
    mask: str | None = None  # "evidence" or "core": what the scores were taken against
    fill_note: str | None = None  # why the fill is not the one asked for
    seeds_explained: tuple[int, ...] = ()  # where several seeds' checkpoints were scored

    @property
    def key(self) -> str:
        return slug(self.machine, self.suite)


def _method_label(key: str) -> str:
    return METHOD_LABELS.get(key, key.removeprefix("native:") + " (native)")


def _gallery(model: str, entries: list[dict[str, Any]], present: frozenset[str] | None) -> list[GalleryItem]:
    items = []
    for e in entries:
        for method, targets in sorted(e["files"].items()):
            for target, path in sorted(targets.items()):
                if present is not None and path not in present:
                    log.warning("%s: gallery image %s is not in the artifacts folder; left out", model, path)
                    continue
                items.append(GalleryItem(model, method, _method_label(method), e["image"], e["kind"], e["true"],
                                         e["predicted"], e["predicted"] if target == "predicted" else e["true"],
                                         "either" if e["predicted"] == e["true"] else target, explain_asset(path),
                                         NATIVE_STRIP_WIDTH if method.startswith("native:") else STRIP_WIDTH))
    return items


def _correlations(summary: dict[str, Any]) -> Correlations | None:
    c = summary.get("metric_correlations")
    if not c:
        return None
    labels = tuple(SCORE_LABELS.get(s, s) for s in c["scores"])
    return Correlations(labels, tuple(zip(labels, (tuple(row) for row in c["spearman"]))), c["pairs"])


def _explained_accuracy(m: dict[str, Any], fallback: float | None) -> float | None:
    """The explained checkpoint's own test balanced accuracy where the result records it."""
    explained = m.get("explained_checkpoint") or {}
    return explained.get("balanced_accuracy", fallback)


def explain_groups(results: list[LoadedResult], groups: tuple[TrainGroup, ...],
                   present: frozenset[str] | None = None) -> tuple[ExplainGroup, ...]:
    """One explain section per (machine, suite) with explain results; ``present``: the artifact files
    that exist (paths under the artifacts folder), so that a missing strip is left out, not linked."""
    by_group: dict[tuple[str, str], list[LoadedResult]] = defaultdict(list)
    for r in results:
        by_group[(r.machine_id, r.payload["suite"])].append(r)
    accuracy = {(g.machine, g.suite, row.model): row.metrics["balanced_accuracy"].mean for g in groups for row in g.rows}
    out = []
    for (machine, suite), members in sorted(by_group.items()):
        summary = next((r.payload["metrics"] for r in members if r.payload["model"] is None), {})
        flagged_keys = set(summary.get("flagged_methods") or {})
        # additional seeds' results are read through the summary (``across_seeds``), not as rows
        models = sorted((r for r in members
                         if r.payload["model"] is not None and r.payload["config"].get("primary", True)),
                        key=lambda r: r.payload["model"]["name"])
        across = summary.get("across_seeds") or {}
        rows, curves, gallery, native, skipped, seconds, scored_images = [], [], [], [], None, 0.0, None
        methods: tuple[str, ...] = ()
        grids: dict[str, tuple[int, ...]] = {}
        first_faith, sanity_cfg, orders, deletion_cfg, fill_note = None, {}, [], {}, None
        for r in models:
            with reading(r.path):
                name, m = r.payload["model"]["name"], r.payload["metrics"]
                methods = tuple(m["methods"])
                grids[name] = tuple(m.get("gradcam_grid") or ())
                seconds += m.get("explain_time_s") or 0.0
                gallery += _gallery(name, m["gallery"], present)
                native.append(NativeInfo(
                    name, tuple((n["name"], n["description"]) for n in m["native"]["maps"]), m["native"].get("note"),
                    tuple((n["name"], *(n.get("uniformity", {}).get(k) for k in ("entropy_ratio", "peak_over_uniform",
                                                                                  "floor")))
                          for n in m["native"]["maps"] if n.get("uniformity"))))
                faith = m.get("faithfulness")
                if not faith:
                    skipped = m.get("faithfulness_skipped")
                    continue
                first_faith = first_faith or faith
                scored_images = len(faith["images"])
                acc = _explained_accuracy(m, accuracy.get((machine, suite, name)))
                rows += faith_rows(name, m, summary.get("comparison", {}), flagged_keys, acc, across.get(name))
                curves.append(curve_row(name, m, acc))
                sanity_cfg = m.get("sanity") or sanity_cfg
                if (m.get("sanity") or {}).get("cascade_order"):
                    orders.append((name, " → ".join(m["sanity"]["cascade_order"])))
                deletion_cfg = faith.get("deletion") or deletion_cfg
                fill_note = (m.get("fully_removed") or {}).get("note") or fill_note
        ordered = tuple(sorted(methods, key=lambda k: (k in flagged_keys, methods.index(k))))
        misclassified = defaultdict(list)
        for item in gallery:
            if item.kind == "misclassified":
                misclassified[(item.image, item.true)].append(item)
        synthetic = any(g.synthetic for g in groups if (g.machine, g.suite) == (machine, suite))
        grid_shapes = {"×".join(map(str, g)) for g in grids.values() if g}
        out.append(ExplainGroup(
            machine=machine, suite=suite, synthetic=synthetic, rows=tuple(rows), methods=ordered,
            models=tuple(r.payload["model"]["name"] for r in models),
            classes=tuple(sorted({i.true for i in gallery})), gallery=tuple(gallery),
            misclassified=tuple(MisclassifiedImage(image, true, tuple(items))
                                for (image, true), items in sorted(misclassified.items())),
            native=tuple(native), skipped=skipped, images_scored=scored_images,
            findings=findings(rows, curves, summary) + tuple(f for f in [gradcam_grids(grids)] if f),
            tolerance=models[0].payload["config"].get("pointing_tolerance") if models else None,
            # every explained checkpoint's time (the summary adds the additional seeds'), else the rows'
            explain_seconds=round(summary.get("explain_time_s") or seconds, 1) if models else None,
            chart=f"faithfulness-{slug(machine, suite)}" if rows else None,
            score_tables=score_tables(rows), baselines=baseline_rows(first_faith) if first_faith else (),
            curves=tuple(curves), flagged=tuple(METHOD_LABELS.get(k, k) for k in ordered if k in flagged_keys),
            correlations=_correlations(summary), sanity_threshold=sanity_cfg.get("threshold"),
            sanity_judged_from=sanity_cfg.get("judged_from"), cascade_orders=tuple(orders),
            fill=deletion_cfg.get("fill"), blur_sigma_px=deletion_cfg.get("blur_sigma_px"),
            gradcam_grid=", ".join(sorted(grid_shapes)) or None,
            curve_baselines=tuple(label for label, _, _ in curves[0].baselines) if curves else (),
            mask={"evidence": "evidence masks (every pixel the finding changed)",
                  "core": "core lesion masks"}.get((first_faith or {}).get("mask") or "core"),
            fill_note=fill_note,
            seeds_explained=tuple(sorted({s for entry in across.values() for s in entry["seeds"]})),
        ))
    return tuple(out)


__all__ = ["BaselineRow", "Correlations", "CurveRow", "ExplainGroup", "FaithRow", "GalleryItem", "Interval",
           "MisclassifiedImage", "NativeInfo", "ScoreTable", "explain_asset", "explain_groups"]
