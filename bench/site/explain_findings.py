"""The findings of the Explanations page, worded from the engine's verdicts.

They never lead with a flagged method (one that fails a sanity check for some model): the lead
pair is the summary's (the best pointing game among unflagged methods that beats the strongest
model-free baseline), and each statement about a method names its sanity verdict.
"""

from __future__ import annotations

import math

from typing import Any

from bench.site.explain_rows import METHOD_LABELS, SCORE_LABELS, CurveRow, FaithRow

Finding = str


def _lead(rows: list[FaithRow], summary: dict[str, Any]) -> str:
    lead = summary.get("lead")
    if not lead:
        return ("No model–method pair with an unflagged method points inside the lesions more often than the "
                "strongest model-free baseline (paired bootstrap over the same images): on these images, no "
                "map here is shown to localise better than a map drawn without any model.")
    row = next((r for r in rows if r.model == lead["model"] and r.method == lead["method"]), None)
    if row is None:
        return f"Leading pair: {lead['model']} with {METHOD_LABELS.get(lead['method'], lead['method'])}."
    pg = row.scores["pointing_game"]
    base = pg.baseline_stat.value if pg.baseline_stat else None
    return (f"Leading pair: {row.model} with {row.method_label}, pointing game {pg.value:.3f}"
            + (f" (95% CI {pg.ci95.lo:.3f}–{pg.ci95.hi:.3f})" if pg.ci95 else "")
            + (f", above the strongest model-free baseline ({pg.baseline}, {base:.3f}) by a paired bootstrap"
               if base is not None else "")
            + "; its method passes every sanity check for every model.")


def _beats(rows: list[FaithRow]) -> str:
    parts = []
    for score, label in SCORE_LABELS.items():
        judged = [r for r in rows if r.scores[score].beats is not None]
        if judged:
            parts.append(f"{sum(1 for r in judged if r.scores[score].beats)} of {len(judged)} on {label}")
    return ("Pairs above the strongest model-free baseline (paired bootstrap over the same images): "
            + "; ".join(parts) + ".") if parts else ""


def _per_method(rows: list[FaithRow]) -> list[str]:
    out = []
    order = list(METHOD_LABELS)
    methods = sorted({r.method for r in rows}, key=lambda m: (any(r.flagged for r in rows if r.method == m),
                                                              order.index(m) if m in order else len(order)))
    for method in methods:
        mine = [r for r in rows if r.method == method]
        best = next((r for r in mine if r.scores["pointing_game"].best), None)
        if best is None or best.scores["pointing_game"].value is None:
            continue
        tied = [r.model for r in mine if r.scores["pointing_game"].tied_with_best]
        flag = " (this method fails a sanity check: read its scores with care)" if best.flagged else ""
        out.append(f"{best.method_label}{flag}: the best pointing game is {best.model}'s, "
                   f"{best.scores['pointing_game'].value:.3f}; "
                   + (f"tied with it: {', '.join(tied)}." if tied else "no other model is tied with it."))
    return out


def _sanity(rows: list[FaithRow]) -> str:
    failed: dict[str, list[str]] = {}
    for r in rows:
        if r.sanity.passed is False:
            failed.setdefault(r.method_label, []).append(r.model)
    if not failed:
        return "Sanity checks: every method's maps change under cascading and full randomisation, in every variant."
    return ("Flagged (a sanity check failed, so the method never leads): "
            + "; ".join(f"{label} for {', '.join(models)}" for label, models in sorted(failed.items())) + ".")


def _curves(curves: list[CurveRow]) -> list[str]:
    starts = [(c.start.value, c.model) for c in curves if c.start and c.start.value is not None]
    out = []
    if starts:
        lo, hi = min(starts), max(starts)
        out.append(f"Starting probability of the true class ranges from {lo[0]:.2f} ({lo[1]}) to {hi[0]:.2f} "
                   f"({hi[1]}): deletion and insertion are read against random order and divided by it.")
    above = [c.model for c in curves if c.fill_passed is False]
    worst = max((c.fill_max_finding for c in curves if c.fill_max_finding is not None), default=None)
    if above:
        out.append(f"Some fully removed images are still read as a finding (probability above 0.5) by: "
                   f"{', '.join(above)}; their deletion and insertion scores partly measure the fill.")
    elif worst is not None:
        out.append(f"No fully removed version of a scored image is read as a finding above 0.5 by any model "
                   f"(highest {math.floor(worst * 1000) / 1000:.3f}, rounded down); a black or blurred image would be (see the "
                   f"deletion table).")
    return out


def findings(rows: list[FaithRow], curves: list[CurveRow], summary: dict[str, Any]) -> tuple[Finding, ...]:
    if not any(r.scores["pointing_game"].value is not None for r in rows):
        return ()
    out = [_lead(rows, summary), _beats(rows), *_per_method(rows), _sanity(rows), *_curves(curves)]
    return tuple(f for f in out if f)


def gradcam_grids(grids: dict[str, tuple[int, ...]]) -> str | None:
    """A caveat where Grad-CAM's maps differ in resolution between models, or are so coarse that
    their maximum can only sit in a few places."""
    shapes = {m: "×".join(map(str, g)) for m, g in grids.items() if g}
    if len(set(shapes.values())) > 1:
        listed = "; ".join(f"{shape} for {', '.join(sorted(m for m in shapes if shapes[m] == shape))}"
                           for shape in sorted(set(shapes.values())))
        return (f"Grad-CAM's maps differ in resolution between models ({listed}): a finer grid can point "
                "more precisely, so its Grad-CAM scores compare grids as well as models.")
    coarse = [g for g in grids.values() if g and max(g) < 8]
    if not coarse:
        return None
    return (f"Grad-CAM's map is {'×'.join(map(str, coarse[0]))} for every model: upsampled to the image, "
            "its maximum can only fall near the centre of one of a few cells; the ceiling beside each "
            "Grad-CAM score is what a perfect map at that grid reaches.")
