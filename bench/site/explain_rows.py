"""Rows of the Explanations page, read from one model's explain result: each model–method pair's
scores beside the strongest model-free baseline and the randomised-weights model, the sanity
checks, the baselines themselves, and each model's deletion and insertion references.

Everything here is read off the result; the verdicts (beats the baseline, fails a sanity check,
tied with the best) are the engine's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from bench.site.context import Interval

METHOD_LABELS = {"saliency": "Saliency", "integrated_gradients": "Integrated Gradients",
                 "smoothgrad": "SmoothGrad", "gradcam": "Grad-CAM"}
SCORE_LABELS = {"pointing_game": "pointing game", "relevance_mass": "relevance mass",
                "relevance_rank": "relevance rank (AUROC)", "deletion_vs_random": "deletion vs random order",
                "insertion_vs_random": "insertion vs random order"}
SCORE_TITLES = {"pointing_game": "Pointing game", "relevance_mass": "Relevance mass",
                "relevance_rank": "Relevance rank (AUROC)", "deletion_vs_random": "Deletion against random order",
                "insertion_vs_random": "Insertion against random order"}
LOCATION = ("pointing_game", "relevance_mass", "relevance_rank")
BASELINE_LABELS = {"intensity": "input intensity", "uniform_foreground": "uniform over the head",
                   "edges": "edge map (Sobel)"}
VARIANT_LABELS = {"spearman": "signed", "spearman_abs": "absolute", "spearman_foreground": "signed, head",
                  "spearman_abs_foreground": "absolute, head"}


@dataclass(frozen=True)
class Stat:
    """A mean over images with its bootstrap 95% interval."""

    value: float | None
    ci95: Interval | None


def stat(entry: dict[str, Any] | None) -> Stat | None:
    if not entry:
        return None
    ci = entry.get("ci95")
    return Stat(entry.get("value"), Interval(*ci) if ci else None)


@dataclass(frozen=True)
class Score:
    """One score of one model–method pair and everything it is read against."""

    value: float | None
    ci95: Interval | None
    best: bool
    tied_with_best: bool
    baseline: str | None  # the strongest model-free baseline on this score
    baseline_stat: Stat | None
    beats: bool | None  # paired bootstrap: above the strongest model-free baseline
    randomised: Stat | None  # the same method on the randomised-weights model
    beats_randomised: bool | None
    ceiling: Stat | None  # Grad-CAM only: a perfect map at its grid
    across_seeds: Stat | None = None  # the mean over the explained seeds, interval over seeds and images


@dataclass(frozen=True)
class Sanity:
    passed: bool | None
    failures: tuple[str, ...]
    full: dict[str, float | None]  # variant → |mean ρ| at full randomisation (signed value kept)
    cascade: tuple[tuple[str, float | None], ...]  # (randomised up to, ρ of absolute maps in the head)


@dataclass(frozen=True)
class FaithRow:
    """One (model, method): its scores, its sanity checks, the explained checkpoint's accuracy."""

    model: str
    method: str
    method_label: str
    scores: dict[str, Score]
    sanity: Sanity
    flagged: bool  # the method fails a sanity check for some model: it never leads
    balanced_accuracy: float | None

    @property
    def sanity_passed(self) -> bool | None:
        return self.sanity.passed


@dataclass(frozen=True)
class ScoreTable:
    key: str
    label: str
    title: str
    rows: tuple[FaithRow, ...]
    has_ceiling: bool


@dataclass(frozen=True)
class BaselineRow:
    """A model-free map or random point, on the location scores (the same for every model)."""

    label: str
    scores: dict[str, Stat | None]


@dataclass(frozen=True)
class CurveRow:
    """One model's deletion and insertion references."""

    model: str
    balanced_accuracy: float | None
    start: Stat | None  # mean starting probability of the true class
    removed: Stat | None  # ... on the fully removed image
    random_deletion: Stat | None
    random_insertion: Stat | None
    fill_max_finding: float | None  # fully removed images: highest probability of a finding class on any one
    fill_passed: bool | None
    black_max_finding: float | None  # the same with a black fill, for contrast
    blur_max_finding: float | None  # ... and with a heavy blur
    baselines: tuple[tuple[str, Stat | None, Stat | None], ...]  # (label, deletion vs random, insertion vs random)
    scored: int | None = None  # images whose fully removed image the model reads as no finding: the curves' images
    images: int | None = None  # lesion images scored on the location scores


def _score(s: dict[str, Any], score: str, marks: dict[str, Any], name: str, ceiling: dict[str, Any] | None
           ) -> Score:
    own = s.get(score) or {}
    ci = own.get("ci95")
    versus = (s.get("vs_strongest_baseline") or {}).get(score) or {}
    against_random = (s.get("vs_randomised_weights") or {}).get(score) or {}
    return Score(own.get("value"), Interval(*ci) if ci else None, marks.get("best") == name,
                 name in marks.get("tied_with_best", ()),
                 BASELINE_LABELS.get(versus.get("baseline"), versus.get("baseline")),
                 None, versus.get("beats"), stat((s.get("randomised_weights") or {}).get(score)),
                 against_random.get("beats"), stat((ceiling or {}).get(score)))


def _sanity(record: dict[str, Any] | None) -> Sanity:
    if not record:
        return Sanity(None, (), dict.fromkeys(VARIANT_LABELS), ())
    full = record.get("full") or record  # an earlier result: one full randomisation, its values at the top
    return Sanity(record.get("passed"), tuple(record.get("failures") or ()),
                  {v: full.get(v) for v in VARIANT_LABELS},
                  tuple((step["randomised"], step.get("spearman_abs_foreground"))
                        for step in record.get("cascade", ())))


def faith_rows(name: str, m: dict[str, Any], comparison: dict[str, Any], flagged: set[str],
               accuracy: float | None, across: dict[str, Any] | None = None) -> list[FaithRow]:
    """The rows of one model's result, one per method (``across``: the summary's scores of this
    model over its explained seeds, where there are several)."""
    faith = m["faithfulness"]
    baselines = faith.get("baselines") or {}
    sanity = (m.get("sanity") or {}).get("methods") or m.get("sanity") or {}  # earlier results: keyed by method
    rows = []
    for method in m["methods"]:
        s = faith["scores"][method]
        scores = {}
        for score in SCORE_LABELS:
            one = _score(s, score, comparison.get(method, {}).get(score, {}), name,
                         faith.get("gradcam_ceiling") if method == "gradcam" and score in LOCATION else None)
            strongest = (faith.get("strongest_baseline") or {}).get(score)
            scores[score] = replace(one, baseline_stat=stat(baselines.get(strongest, {}).get(score)),
                                    across_seeds=stat(((across or {}).get("methods", {}).get(method) or {}).get(score)))
        rows.append(FaithRow(name, method, METHOD_LABELS.get(method, method), scores, _sanity(sanity.get(method)),
                             method in flagged, accuracy))
    return rows


def score_tables(rows: list[FaithRow]) -> tuple[ScoreTable, ...]:
    return tuple(ScoreTable(score, label, SCORE_TITLES[score], tuple(rows),
                            score in LOCATION and any(r.method == "gradcam" for r in rows))
                 for score, label in SCORE_LABELS.items())


def baseline_rows(faith: dict[str, Any]) -> tuple[BaselineRow, ...]:
    """Model-free maps and the two random points on the location scores."""
    rows = [BaselineRow(BASELINE_LABELS.get(name, name), {s: stat(scores.get(s)) for s in LOCATION})
            for name, scores in sorted((faith.get("baselines") or {}).items())]
    point = faith.get("random_point") or {}
    for label, key in (("random point in the image", "image"), ("random point in the head", "foreground")):
        rows.append(BaselineRow(label, {s: stat(point.get(key)) if s == "pointing_game" else None for s in LOCATION}))
    ceiling = faith.get("gradcam_ceiling")
    if ceiling:
        grid = "×".join(map(str, ceiling.get("grid", ())))
        rows.append(BaselineRow(f"perfect map at Grad-CAM's {grid} grid (a ceiling)",
                                {s: stat(ceiling.get(s)) for s in LOCATION}))
    return tuple(rows)


def curve_row(name: str, m: dict[str, Any], accuracy: float | None) -> CurveRow:
    faith = m["faithfulness"]
    deletion = faith.get("deletion") or {}
    removed = m.get("fully_removed") or {}
    used = removed.get(removed.get("fill")) or {}
    baselines = tuple((BASELINE_LABELS.get(k, k), stat(v.get("deletion_vs_random")), stat(v.get("insertion_vs_random")))
                      for k, v in sorted((faith.get("baselines") or {}).items()))
    random_order = deletion.get("random_order") or {}
    return CurveRow(name, accuracy, stat(deletion.get("starting_probability")),
                    stat(deletion.get("removed_probability")),
                    stat(random_order.get("deletion_auc")), stat(random_order.get("insertion_auc")),
                    used.get("any_image_max_finding_prob"), used.get("passed"),
                    (removed.get("black") or {}).get("any_image_max_finding_prob"),
                    (removed.get("blur") or {}).get("any_image_max_finding_prob"), baselines,
                    deletion.get("scored_images"), len(faith.get("images") or []))
