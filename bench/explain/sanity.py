"""Model-randomisation sanity checks (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018).

A map that explains the model must change when the model's weights are replaced by random
ones. Two randomisations, both with the same seeded re-initialisation of the architecture:

- **cascading**: the head first (everything after the last stage: final norm and classifier),
  then each stage from the top (pyramid stages, ResNet layers, ViT blocks), then the stem, each
  step keeping the earlier replacements; its last step re-initialises everything;
- **full**: every weight at once, which is the cascade's last step.

At each step, each method's maps of the sanity images are compared with the trained model's by
Spearman's rank correlation in four variants: signed and absolute values (a signed method such
as Integrated Gradients can keep the same magnitudes with flipped signs, and its absolute map
is what a reader sees), each over the whole image and inside the head's foreground only (the
black background and the head's outline can make any two maps agree). A method **fails** when,
for any variant, |mean ρ| reaches ``sanity_threshold`` at full randomisation or at any cascade
step from ``sanity_judged_from`` on (2: once the head and the top stage are random, the map must
have moved; the head alone leaves every feature intact).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.explain.scores import spearman

VARIANTS = ("spearman", "spearman_abs", "spearman_foreground", "spearman_abs_foreground")
VARIANT_LABELS = {"spearman": "signed", "spearman_abs": "absolute", "spearman_foreground": "signed, in the head",
                  "spearman_abs_foreground": "absolute, in the head"}


def stage_prefixes(model: nn.Module) -> list[tuple[str, str]]:
    """(state-dict prefix, label) of the model's stages, bottom to top."""
    inner = getattr(model, "model", None)
    if hasattr(model, "stages") and isinstance(model.stages, nn.ModuleList):
        return [(f"stages.{i}", f"stage {i + 1}") for i in range(len(model.stages))]
    if inner is not None and hasattr(inner, "blocks") and isinstance(inner.blocks, (nn.ModuleList, nn.Sequential)):
        return [(f"model.blocks.{i}", f"block {i + 1}") for i in range(len(inner.blocks))]
    if inner is not None and hasattr(inner, "layer4"):
        return [(f"model.layer{i}", f"layer{i}") for i in range(1, 5) if hasattr(inner, f"layer{i}")]
    if inner is not None and hasattr(inner, "stages"):
        return [(f"model.stages.{i}", f"stage {i + 1}") for i in range(len(inner.stages))]
    return []


def cascade_groups(model: nn.Module) -> list[tuple[str, list[str]]]:
    """Top-down (label, state-dict keys) groups: head, each stage from the top, stem. A model
    without known stages is one group (its cascade is the full randomisation)."""
    keys = list(model.state_dict())
    prefixes = stage_prefixes(model)

    def stage_of(key: str) -> str | None:
        return next((label for prefix, label in prefixes if key.startswith(prefix + ".")), None)

    staged = [i for i, key in enumerate(keys) if stage_of(key) is not None]
    if not staged:
        return [("every layer", keys)]
    first = staged[0]
    groups = [("head", [k for i, k in enumerate(keys) if stage_of(k) is None and i > first])]
    groups += [(label, [k for k in keys if stage_of(k) == label]) for _, label in reversed(prefixes)]
    groups.append(("stem", [k for i, k in enumerate(keys) if stage_of(k) is None and i < first]))
    return [(label, ks) for label, ks in groups if ks]


def cascade_states(trained: dict[str, torch.Tensor], randomised: dict[str, torch.Tensor],
                   groups: list[tuple[str, list[str]]]) -> list[tuple[str, dict[str, torch.Tensor]]]:
    """(label of the step, state dict) per cascade step: the trained state with the groups up to and
    including that step's replaced by the randomised state. The last step is the randomised state."""
    state, out = dict(trained), []
    for label, keys in groups:
        for key in keys:
            state[key] = randomised[key]
        out.append((label, dict(state)))
    return out


def compare(trained: np.ndarray, random: np.ndarray, heads: Sequence[np.ndarray]) -> dict[str, float | None]:
    """Mean over images of each variant of Spearman's ρ between two sets of maps."""
    out: dict[str, float | None] = {}
    for variant in VARIANTS:
        absolute, inside = "abs" in variant, variant.endswith("foreground")
        values = []
        for i in range(len(trained)):
            a, b = (np.abs(trained[i]), np.abs(random[i])) if absolute else (trained[i], random[i])
            values.append(spearman(a, b, heads[i] if inside else None))
        kept = [v for v in values if v is not None]
        out[variant] = float(np.mean(kept)) if kept else None
    return out


def verdict(steps: list[dict[str, Any]], threshold: float, judged_from: int) -> tuple[bool, list[str]]:
    """(passed, failures): a failure names the step and variant whose |mean ρ| reached ``threshold``,
    judged at every cascade step from ``judged_from`` (1-based) on; the last step is full randomisation."""
    first = max(0, min(judged_from - 1, len(steps) - 1))
    failures = []
    for k, step in enumerate(steps[first:], start=first):
        where = "full randomisation" if k == len(steps) - 1 else f"cascade to {step['randomised']}"
        failures += [f"{where}: {VARIANT_LABELS[v]}" for v in VARIANTS
                     if step.get(v) is not None and abs(step[v]) >= threshold]
    return not failures, failures


def sanity_checks(model: nn.Module, random_state: dict[str, torch.Tensor], methods: Sequence[str],
                  maps_of: Callable[[nn.Module, str], np.ndarray], trained_maps: dict[str, np.ndarray],
                  full_maps: dict[str, np.ndarray], heads: Sequence[np.ndarray], threshold: float,
                  judged_from: int) -> dict[str, Any]:
    """Cascading and full randomisation of ``model`` for every method, on the first ``len(heads)``
    images. ``maps_of(model, method)`` draws maps of those images; ``full_maps`` are the fully
    randomised model's maps (computed for the baselines already). The model's state is restored."""
    trained_state = {k: v.clone() for k, v in model.state_dict().items()}
    groups = cascade_groups(model)
    n = len(heads)
    steps: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    try:
        for k, (label, state) in enumerate(cascade_states(trained_state, random_state, groups)):
            last = k == len(groups) - 1
            if not last:
                model.load_state_dict(state)
            for method in methods:
                random_maps = full_maps[method][:n] if last else maps_of(model, method)
                steps[method].append({"randomised": label, **compare(trained_maps[method][:n], random_maps, heads)})
    finally:
        model.load_state_dict(trained_state)
    out: dict[str, Any] = {"images": n, "threshold": threshold, "judged_from": judged_from,
                           "cascade_order": [label for label, _ in groups], "methods": {}}
    for method in methods:
        passed, failures = verdict(steps[method], threshold, judged_from)
        out["methods"][method] = {"cascade": steps[method], "full": steps[method][-1], "passed": passed,
                                  "failures": failures}
    return out
