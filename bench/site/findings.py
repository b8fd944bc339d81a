"""Headline findings: sentences computed from a leaderboard, never written by hand.

Each finding states only what the comparison result resolves: a model is "best" only
where the paired test separates it, ties are named as ties, and a gap that the
intervals do not resolve is not called one.
"""

from __future__ import annotations

from bench.site.context import LeaderRow, TrainGroup


def _acc(row: LeaderRow) -> str:
    acc = row.metrics["balanced_accuracy"].mean
    interval = f" (95% CI {row.ci95.lo:.3f}–{row.ci95.hi:.3f})" if row.ci95 else ""
    return f"{acc:.3f}{interval}"


def _names(rows: list[LeaderRow]) -> str:
    return ", ".join(r.model for r in rows)


def _apart(a: LeaderRow, b: LeaderRow) -> bool | None:
    """Whether two rows' 95% intervals do not overlap (None without intervals)."""
    if a.ci95 is None or b.ci95 is None:
        return None
    return a.ci95.lo > b.ci95.hi or b.ci95.lo > a.ci95.hi


def _at_twice_the_budget(group: TrainGroup, a: LeaderRow, b: LeaderRow) -> str:
    """A caveat for a gap between two models when either is budget-limited: their validation
    gap at the recipe's budget and at twice it (the budget study), where both were run."""
    if not (a.budget_limited or b.budget_limited):
        return ""
    runs = {row.model: row for row in group.budget}
    if a.model not in runs or b.model not in runs:
        return " Budget-limited: this gap holds at this budget only."
    at_b = runs[a.model].val - runs[b.model].val
    at_2b = runs[a.model].doubled_val - runs[b.model].doubled_val
    return (f" Budget-limited: on validation the gap is {at_b:+.3f} at this budget and {at_2b:+.3f} at twice it, "
            f"so it holds at this budget only.")


def group_findings(group: TrainGroup) -> tuple[str, ...]:
    rows = [r for r in group.rows if r.metrics["balanced_accuracy"].mean is not None]
    if not rows:
        return ()
    found = []
    data = " on synthetic data" if group.synthetic else ""
    best = next((r for r in rows if r.model == group.best), None)
    tied = [r for r in rows if r.tied_with_best and r.model != group.best]
    if best is not None:
        ties = (f" Statistically tied with it: {_names(tied)}." if tied else
                " No other model is tied with it: the paired test resolves every gap.")
        found.append(f"Best balanced accuracy{data}: {best.model}, {_acc(best)}.{ties}")
    else:
        top = max(rows, key=lambda r: r.metrics["balanced_accuracy"].mean)
        found.append(f"Highest balanced accuracy{data}: {top.model}, {_acc(top)}; without a comparison result "
                     "no model is called best.")
    pyramids = [r for r in rows if r.model.startswith("pyramid_")]
    if len(pyramids) > 1:
        lo, hi = pyramids[-1], pyramids[0]  # rows are sorted by balanced accuracy
        found.append(f"Among the {len(pyramids)} attention variants on one shared backbone, {hi.model} scores "
                     f"{_acc(hi)} and {lo.model} {_acc(lo)}" +
                     ("; their intervals do not overlap." if _apart(hi, lo) else
                      "; their 95% intervals overlap." if _apart(hi, lo) is False
                      else ".") + _at_twice_the_budget(group, hi, lo))
    pixel = next((b for b in group.baselines if b.model == group.pixel_baseline), None)
    judged = [r for r in rows if r.better_than_pixel is not None]
    if pixel is not None and judged:
        beaten = [r for r in judged if r.better_than_pixel]
        not_beaten = [r for r in judged if not r.better_than_pixel]
        found.append(f"{len(beaten)} of {len(judged)} models beat the pixel baseline ({pixel.model}, "
                     f"{_acc(pixel)})" + (f"; not: {_names(not_beaten)}." if not_beaten else "."))
    ablation = {r.model: r for r in rows}
    if "pyramid_xca" in ablation and "pyramid_xca_nolpi" in ablation:
        full, bare = ablation["pyramid_xca"], ablation["pyramid_xca_nolpi"]
        gap = full.metrics["balanced_accuracy"].mean - bare.metrics["balanced_accuracy"].mean
        found.append(f"XCA's local patch interaction (LPI) is worth {gap:+.3f} balanced accuracy "
                     f"({full.model} {_acc(full)} vs {bare.model} {_acc(bare)})" +
                     ("; their 95% intervals do not overlap." if _apart(full, bare) else
                      "; their 95% intervals overlap, so they do not resolve this gap." if _apart(full, bare) is False else ".")
                     + _at_twice_the_budget(group, full, bare))
    timed = [r for r in rows if r.cpu_p50_ms is not None]
    if timed:
        fastest = min(timed, key=lambda r: r.cpu_p50_ms)
        # a model whose median falls inside the fastest one's own spread (its p90, or its slowest
        # round's p50 if higher) ties with it
        spread = fastest.cpu_p90_ms if fastest.cpu_p90_ms is not None else fastest.cpu_p50_ms
        close = sorted((r for r in timed if r is not fastest and r.cpu_p50_ms <= spread), key=lambda r: r.cpu_p50_ms)
        found.append(f"Fastest at batch 1 on {group.machine}'s CPU: {fastest.model}, {fastest.cpu_p50_ms:.3g} ms "
                     f"per image (p50, float32)" +
                     (f"; within its own run-to-run spread (up to {spread:.3g} ms), so tied with it: "
                      + ", ".join(f"{r.model} ({r.cpu_p50_ms:.3g} ms)" for r in close) + "." if close else "."))
    limited = group.budget_limited
    if limited:
        found.append("Budget-limited (training twice as long gained more than "
                     f"{group.budget_delta:.2f} on validation), so their places may still move: "
                     + ", ".join(f"{r.model} ({r.budget_gain:+.3f})" for r in limited) + ".")
    if group.cap_ended:
        found.append(f"Not converged (the epoch cap ended training), so their numbers may still move: "
                     f"{', '.join(group.cap_ended)}.")
    if not limited and not group.cap_ended:
        found.append("Every run reached a validation plateau before its epoch cap" +
                     (f", and training twice as long moved no model's validation score by more than "
                      f"{group.budget_delta:.2f}." if group.budget else "; no budget study checks it yet."))
    return tuple(found)
