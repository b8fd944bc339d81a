"""One model's maps scored against the lesion masks, beside every baseline, on the same images.

For each image the stage scores, on every map (the model's four methods, the three model-free
maps of ``bench.explain.baselines``, the randomised-weights model's four methods, and for Grad-CAM
the perfect map at its grid):

- location: pointing game, relevance mass, relevance rank (``bench.explain.scores``);
- deletion and insertion with the non-cue fill, read against the same image's random-order
  curves and normalised by the starting probability (``bench.explain.deletion``), on the images
  whose fully removed image the model reads as no finding (``Inputs.clean``; NaN elsewhere, so
  every mean, interval and paired test of a curve score counts only those images).

Each score is a mean over images with a bootstrap 95% interval. A method **beats the baselines**
on a score only when a paired bootstrap over the images puts its mean above that of the
strongest model-free map on that score (the lower end of the 95% interval of the difference
above zero); the same test against the randomised-weights model is recorded beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.core.config import ExplainConfig
from bench.explain.attribution import METHODS, attribute_all
from bench.explain.baselines import MODEL_FREE, foreground, grid_ceiling_map, model_free_maps, random_point_hits
from bench.explain.deletion import DELETION_FRACTIONS, Curves, order_seed, random_ranking, ranking
from bench.explain.scores import (
    bootstrap_ratio, interval, paired_difference, pointing_hit, relevance_mass, relevance_rank,
)

LOCATION = ("pointing_game", "relevance_mass", "relevance_rank")
CURVES = ("deletion_vs_random", "insertion_vs_random")
SCORES = LOCATION + CURVES  # each read against the strongest model-free baseline; higher is better for all
RAW = ("deletion_auc", "insertion_auc")  # the areas themselves (deletion: lower is better)


@dataclass
class Scored:
    """Per-image scores of one set of maps (one per image)."""

    values: dict[str, np.ndarray]


@dataclass
class Inputs:
    """The scored images: normalised tensors, classes, masks, ids, grey images, heads, and what a
    removed pixel becomes (``fills``: the fully removed images, by the fill named ``fill``)."""

    images: torch.Tensor
    labels: torch.Tensor
    masks: list[np.ndarray]
    ids: list[int]
    grey: list[np.ndarray]
    heads: list[np.ndarray]
    fills: torch.Tensor
    fill: str
    mask: str  # "evidence" or "core": which masks these are
    clean: np.ndarray  # per image: the model reads its fully removed image as no finding (curves scored)


class Scorer:
    """Scores sets of maps of fixed images for one trained model (its curves computed once)."""

    def __init__(self, model: nn.Module, inputs: Inputs, cfg: ExplainConfig) -> None:
        self.inputs, self.cfg = inputs, cfg
        self.curves = Curves(model, inputs.images, inputs.labels, inputs.fills)
        n_pixels = inputs.images[0, 0].numel()
        deletion, insertion = self.curves.areas(
            [random_ranking(n_pixels, order_seed(cfg.seed, i, "random-order")) for i in inputs.ids])
        self.random_deletion, self.random_insertion = self.only_clean(deletion), self.only_clean(insertion)
        self.start = self.only_clean(self.curves.start)
        self.mean_start = float(np.nanmean(self.start)) if inputs.clean.any() else float("nan")

    def only_clean(self, values: np.ndarray) -> np.ndarray:
        """Per-image curve values, NaN on the images whose fully removed image reads as a finding."""
        return np.where(self.inputs.clean, values, np.nan)

    def score(self, maps: np.ndarray | list[np.ndarray], curves: bool = True) -> Scored:
        inp, tol = self.inputs, self.cfg.pointing_tolerance
        n = len(inp.masks)
        values = {
            "pointing_game": np.array([pointing_hit(maps[i], inp.masks[i], tol) for i in range(n)]),
            "relevance_mass": np.array([_or(relevance_mass(maps[i], inp.masks[i]), 0.0) for i in range(n)]),
            "relevance_rank": np.array([_or(relevance_rank(maps[i], inp.masks[i]), 0.5) for i in range(n)]),
        }
        if curves:
            orders = [ranking(maps[i], order_seed(self.cfg.seed, inp.ids[i], "ties")) for i in range(n)]
            deletion, insertion = (self.only_clean(v) for v in self.curves.areas(orders))
            values.update(deletion_auc=deletion, insertion_auc=insertion,
                          deletion_vs_random=(self.random_deletion - deletion) / max(self.mean_start, 1e-12),
                          insertion_vs_random=(insertion - self.random_insertion) / max(self.mean_start, 1e-12))
        return Scored(values)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _summary(scored: Scored, cfg: ExplainConfig, offset: int, start: np.ndarray | None = None) -> dict[str, Any]:
    out = {name: interval(values, cfg.bootstrap, cfg.seed + offset + k)
           for k, (name, values) in enumerate(sorted(scored.values.items()))}
    if start is not None and "deletion_auc" in scored.values:
        value, lo, hi = bootstrap_ratio(scored.values["deletion_auc"], start, cfg.bootstrap, cfg.seed + offset + 97)
        n = int((~np.isnan(scored.values["deletion_auc"]) & ~np.isnan(start)).sum())
        out["deletion_auc_normalised"] = {"value": value if n else None, "ci95": [lo, hi] if n else [None, None], "n": n}
    return out


def _versus(method: Scored, other: Scored, cfg: ExplainConfig, offset: int) -> dict[str, Any]:
    """Paired bootstrap of (method − other) per score: the difference and whether it is above zero."""
    out = {}
    for k, score in enumerate(SCORES):
        if score in method.values and score in other.values:
            value, lo, hi = paired_difference(method.values[score], other.values[score], cfg.bootstrap,
                                              cfg.seed + offset + k)
            if np.isnan(value):  # no image scored on both sides
                out[score] = {"difference": {"value": None, "ci95": [None, None]}, "beats": False}
            else:
                out[score] = {"difference": {"value": value, "ci95": [lo, hi]}, "beats": bool(lo > 0)}
    return out


def model_maps(model: nn.Module, inputs: Inputs, cfg: ExplainConfig, baseline: float) -> dict[str, np.ndarray]:
    """Each method's maps of the scored images (the true class)."""
    return {method: attribute_all(model, method, inputs.images, inputs.labels, inputs.ids, cfg, baseline)
            for method in METHODS}


def scored_inputs(images: torch.Tensor, labels: torch.Tensor, masks: list[np.ndarray], ids: list[int],
                  grey: list[np.ndarray], fills: torch.Tensor, fill: str, mask: str,
                  clean: np.ndarray | None = None) -> Inputs:
    """The scored images; ``clean`` (default: every image) marks those the curves are scored on."""
    clean = np.ones(len(ids), dtype=bool) if clean is None else np.asarray(clean, dtype=bool)
    return Inputs(images, labels, masks, ids, grey, [foreground(g) for g in grey], fills, fill, mask, clean)


def faithfulness(model: nn.Module, inputs: Inputs, trained: dict[str, np.ndarray], randomised: dict[str, np.ndarray],
                 cfg: ExplainConfig, cam_grid: tuple[int, int]) -> dict[str, Any]:
    """Every score of the trained maps beside every baseline's, with the paired verdicts."""
    scorer = Scorer(model, inputs, cfg)
    free = [model_free_maps(g, h) for g, h in zip(inputs.grey, inputs.heads)]
    baselines = {name: scorer.score([f[name] for f in free]) for name in MODEL_FREE}
    summaries = {name: _summary(s, cfg, 1000 + 100 * k, scorer.start) for k, (name, s) in
                 enumerate(baselines.items())}
    strongest = {score: max(MODEL_FREE, key=lambda name: (baselines[name].values[score].mean(), name))
                 for score in SCORES}
    scores: dict[str, Any] = {}
    for k, method in enumerate(METHODS):
        own, rand = scorer.score(trained[method]), scorer.score(randomised[method])
        versus = _versus(own, Scored({s: baselines[strongest[s]].values[s] for s in SCORES}), cfg, 2000 + 100 * k)
        versus_random = _versus(own, rand, cfg, 3000 + 100 * k)
        scores[method] = {
            **_summary(own, cfg, 100 * k, scorer.start),
            "randomised_weights": _summary(rand, cfg, 4000 + 100 * k, scorer.start),
            "vs_strongest_baseline": {s: {"baseline": strongest[s], **v} for s, v in versus.items()},
            "vs_randomised_weights": versus_random,
            "per_image": {s: [None if np.isnan(v) else round(float(v), 6) for v in own.values[s]]
                          for s in SCORES + RAW},
        }
    hits = [random_point_hits(m, h, cfg.pointing_tolerance) for m, h in zip(inputs.masks, inputs.heads)]
    ceiling = scorer.score([grid_ceiling_map(m, cam_grid) for m in inputs.masks], curves=False)
    start, end = scorer.start, scorer.only_clean(scorer.curves.end)
    return {
        "images": inputs.ids, "mask": inputs.mask, "scores": scores, "baselines": summaries,
        "strongest_baseline": strongest,
        "random_point": {"image": interval([h[0] for h in hits], cfg.bootstrap, cfg.seed + 5001),
                         "foreground": interval([h[1] for h in hits], cfg.bootstrap, cfg.seed + 5002)},
        "foreground_share": float(np.mean([h.mean() for h in inputs.heads])),
        "gradcam_ceiling": {"grid": list(cam_grid), **_summary(ceiling, cfg, 6000)},
        "deletion": {
            "fill": inputs.fill, "scored_images": int(inputs.clean.sum()),
            "blur_sigma_px": (round(cfg.deletion_blur_sigma * inputs.images.shape[-1], 3)
                              if inputs.fill == "blur" else None),
            "fractions": list(DELETION_FRACTIONS),
            "starting_probability": interval(start, cfg.bootstrap, cfg.seed + 7001),
            "removed_probability": interval(end, cfg.bootstrap, cfg.seed + 7002),
            "random_order": {"deletion_auc": interval(scorer.random_deletion, cfg.bootstrap, cfg.seed + 7003),
                             "insertion_auc": interval(scorer.random_insertion, cfg.bootstrap, cfg.seed + 7004)},
        },
    }
