"""Context of the explainability pages: faithfulness per model and method, galleries, misclassified images.

Read from the ``explain`` results: one per model, and the suite summary that marks the
models tied with the best. The gallery's image files are copied from the artifacts folder
into the site (``assets/explain/``); nothing here computes a statistic.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from bench.site.context import Interval, TrainGroup, slug
from bench.site.load import LoadedResult, reading

log = logging.getLogger(__name__)

METHOD_LABELS = {"saliency": "Saliency", "integrated_gradients": "Integrated Gradients",
                 "smoothgrad": "SmoothGrad", "gradcam": "Grad-CAM"}
SCORE_LABELS = {"pointing_game": "pointing game", "relevance_mass": "relevance mass",
                "relevance_rank": "relevance rank (AUROC)", "deletion_auc": "deletion AUC"}


def explain_asset(relpath: str) -> str:
    """Where an explain artifact (a path under the artifacts folder) is copied in the site."""
    return f"assets/{relpath}"


@dataclass(frozen=True)
class Score:
    value: float | None
    ci95: Interval | None
    random: float | None  # the random baseline on the same images, where the score has one
    best: bool
    tied_with_best: bool


@dataclass(frozen=True)
class FaithRow:
    """One (model, method): its scores against the masks and its sanity check."""

    model: str
    method: str
    scores: dict[str, Score]
    spearman: float | None
    spearman_abs: float | None
    sanity_passed: bool | None
    balanced_accuracy: float | None
    beats_random_pointing: bool | None  # the pointing game's CI lies above the random baseline


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


@dataclass(frozen=True)
class NativeInfo:
    model: str
    maps: tuple[tuple[str, str], ...]  # (name, description)
    note: str | None


@dataclass(frozen=True)
class MisclassifiedImage:
    image: int
    true: str
    cells: tuple[GalleryItem, ...]  # every model's maps of it (all methods; the page filters)


@dataclass(frozen=True)
class ExplainGroup:
    machine: str
    suite: str
    synthetic: bool
    rows: tuple[FaithRow, ...]
    methods: tuple[str, ...]
    models: tuple[str, ...]
    classes: tuple[str, ...]
    gallery: tuple[GalleryItem, ...]
    misclassified: tuple[MisclassifiedImage, ...]
    native: tuple[NativeInfo, ...]
    skipped: str | None  # why there are no faithfulness scores (real data has no masks)
    findings: tuple[str, ...]
    images_scored: int | None
    tolerance: int | None
    explain_seconds: float | None
    chart: str | None

    @property
    def key(self) -> str:
        return slug(self.machine, self.suite)


def _score(entry: dict[str, Any], random: dict[str, Any] | None, best: bool, tied: bool) -> Score:
    ci = entry.get("ci95")
    return Score(entry.get("value"), Interval(*ci) if ci else None, (random or {}).get("value"), best, tied)


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
                                         "either" if e["predicted"] == e["true"] else target, explain_asset(path)))
    return items


def _gradcam_grids(grids: dict[str, tuple[int, ...]]) -> str | None:
    """A caveat where Grad-CAM's maps differ in resolution between models, or are so coarse that
    their maximum can only sit in a few places."""
    shapes = {m: "×".join(map(str, g)) for m, g in grids.items() if g}
    if len(set(shapes.values())) > 1:
        listed = "; ".join(f"{shape} for {', '.join(sorted(m for m in shapes if shapes[m] == shape))}"
                           for shape in sorted(set(shapes.values())))
        return (f"Grad-CAM's maps differ in resolution between models ({listed}): a finer grid can point "
                "more precisely, so its Grad-CAM scores compare grids as well as models.")
    coarse = [g for g in grids.values() if g and max(g) <= 4]
    if not coarse:
        return None
    return (f"Grad-CAM's map is {'×'.join(map(str, coarse[0]))} for every model: upsampled to the image, "
            "its maximum can only fall near the centre of one of a few cells, so its pointing game "
            "locates a lesion only coarsely. The models are still compared at one resolution.")


def _findings(rows: list[FaithRow]) -> tuple[str, ...]:
    scored = [r for r in rows if r.scores.get("pointing_game") and r.scores["pointing_game"].value is not None]
    if not scored:
        return ()
    out = []
    top = max(scored, key=lambda r: r.scores["pointing_game"].value)
    pg = top.scores["pointing_game"]
    out.append(f"Best pointing game: {top.model} with {METHOD_LABELS.get(top.method, top.method)}, "
               f"{pg.value:.3f} (95% CI {pg.ci95.lo:.3f}–{pg.ci95.hi:.3f}) against {pg.random:.3f} for a random "
               f"point on the same images." if pg.ci95 and pg.random is not None else
               f"Best pointing game: {top.model} with {top.method}, {pg.value:.3f}.")
    for method in sorted({r.method for r in scored}, key=list(METHOD_LABELS).index):
        rows_m = [r for r in scored if r.method == method]
        best = next((r for r in rows_m if r.scores["pointing_game"].best), None)
        if best is not None:
            tied = [r.model for r in rows_m if r.scores["pointing_game"].tied_with_best]
            out.append(f"{METHOD_LABELS.get(method, method)}: the best pointing game is {best.model}'s, "
                       f"{best.scores['pointing_game'].value:.3f}; "
                       + (f"tied with it: {', '.join(tied)}." if tied else "no other model is tied with it."))
    above = sum(1 for r in scored if r.beats_random_pointing)
    out.append(f"{above} of {len(scored)} model–method pairs point inside the lesion more often than chance "
               "(their 95% interval lies above the random baseline).")
    failed = sorted({f"{r.model} / {METHOD_LABELS.get(r.method, r.method)}" for r in rows if r.sanity_passed is False})
    out.append("Sanity check: every map changes when the weights are randomised." if not failed else
               f"Sanity check failed (the map barely changes with random weights): {', '.join(failed)}.")
    return tuple(out)


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
        summary = next((r.payload["metrics"]["comparison"] for r in members if r.payload["model"] is None), {})
        models = sorted((r for r in members if r.payload["model"] is not None), key=lambda r: r.payload["model"]["name"])
        rows, gallery, native, skipped, seconds, scored_images, methods = [], [], [], None, 0.0, None, ()
        grids: dict[str, tuple[int, ...]] = {}
        for r in models:
            with reading(r.path):
                name, m = r.payload["model"]["name"], r.payload["metrics"]
                methods = tuple(m["methods"])
                grids[name] = tuple(m.get("gradcam_grid") or ())
                seconds += m.get("explain_time_s") or 0.0
                gallery += _gallery(name, m["gallery"], present)
                native.append(NativeInfo(name, tuple((n["name"], n["description"]) for n in m["native"]["maps"]),
                                         m["native"].get("note")))
                faith = m.get("faithfulness")
                if not faith:
                    skipped = m.get("faithfulness_skipped")
                    continue
                scored_images = len(faith["images"])
                for method in methods:
                    s = faith["scores"][method]
                    marks = summary.get(method, {})
                    scores = {score: _score(s[score], s.get(f"{score}_random"),
                                            marks.get(score, {}).get("best") == name,
                                            name in marks.get(score, {}).get("tied_with_best", ()))
                              for score in SCORE_LABELS}
                    sanity = (m.get("sanity") or {}).get(method, {})
                    pg = scores["pointing_game"]
                    rows.append(FaithRow(name, method, scores, sanity.get("spearman"), sanity.get("spearman_abs"),
                                         sanity.get("passed"), accuracy.get((machine, suite, name)),
                                         pg.ci95.lo > pg.random if pg.ci95 and pg.random is not None else None))
        misclassified = defaultdict(list)
        for item in gallery:
            if item.kind == "misclassified":
                misclassified[(item.image, item.true)].append(item)
        synthetic = any(g.synthetic for g in groups if (g.machine, g.suite) == (machine, suite))
        out.append(ExplainGroup(
            machine=machine, suite=suite, synthetic=synthetic, rows=tuple(rows), methods=methods,
            models=tuple(r.payload["model"]["name"] for r in models),
            classes=tuple(sorted({i.true for i in gallery})), gallery=tuple(gallery),
            misclassified=tuple(MisclassifiedImage(image, true, tuple(items))
                                for (image, true), items in sorted(misclassified.items())),
            native=tuple(native), skipped=skipped, images_scored=scored_images,
            findings=_findings(rows) + tuple(x for x in [_gradcam_grids(grids)] if x),
            tolerance=models[0].payload["config"].get("pointing_tolerance") if models else None,
            explain_seconds=round(seconds, 1) if models else None,
            chart=f"faithfulness-{slug(machine, suite)}" if rows else None,
        ))
    return tuple(out)
