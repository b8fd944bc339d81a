"""The explain results of a suite as one Markdown table, for a note or a review.

    python -m bench.explain.report [--results-dir data/results] [--suite quick]

Per model and method: each score with its 95% interval, the strongest model-free baseline's
score on the same images, the paired verdict (✓: above it by the paired bootstrap), and the
sanity verdict (the failed checks named). Then per model: the images its deletion and insertion
were scored on, the starting probability, the fill and the highest finding probability on any
fully removed image, and the stage's time. Everything is
read from the results; nothing is computed here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.explain.faithfulness import SCORES

SHORT = {"pointing_game": "PG", "relevance_mass": "mass", "relevance_rank": "rank",
         "deletion_vs_random": "del", "insertion_vs_random": "ins"}


def _cell(scores: dict[str, Any], faith: dict[str, Any], score: str) -> str:
    own = scores.get(score) or {}
    versus = (scores.get("vs_strongest_baseline") or {}).get(score) or {}
    base = (faith.get("baselines") or {}).get(versus.get("baseline"), {}).get(score) or {}
    if own.get("value") is None:
        return "—"
    lo, hi = own.get("ci95") or (float("nan"), float("nan"))
    mark = "✓" if versus.get("beats") else "✗"
    baseline = f"{versus.get('baseline', '?')} {base.get('value', float('nan')):.3f}"
    return f"{own['value']:.3f} [{lo:.3f}–{hi:.3f}] vs {baseline} {mark}"


def _prob(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def table(results: list[dict[str, Any]]) -> str:
    """The Markdown tables of the primary explain results of one suite."""
    lines = ["| Model | Method | " + " | ".join(SHORT[s] for s in SCORES) + " | Sanity |",
             "|---|---|" + "---|" * len(SCORES) + "---|"]
    tail = ["", "| Model | Seed | Balanced acc. | Curve images | p₀ | Fill | Highest finding prob. on a fully removed "
                "image (fill / blur / black) | Masks | Time (s) |", "|---|--:|--:|--:|--:|---|---|---|--:|"]
    for r in sorted(results, key=lambda r: r["model"]["name"]):
        m, name = r["metrics"], r["model"]["name"]
        faith = m.get("faithfulness") or {}
        sanity = (m.get("sanity") or {}).get("methods") or {}
        for method in m["methods"]:
            s = (faith.get("scores") or {}).get(method, {})
            check = sanity.get(method) or {}
            verdict = "passed" if check.get("passed") else "fails: " + "; ".join(check.get("failures") or ["?"])
            lines.append(f"| {name} | {method} | " + " | ".join(_cell(s, faith, score) for score in SCORES)
                         + f" | {verdict} |")
        removed = m.get("fully_removed") or {}
        probs = " / ".join(_prob((removed.get(f) or {}).get("any_image_max_finding_prob"))
                           for f in (removed.get("fill"), "blur", "black"))
        reference = removed.get("reference") or {}
        curve_images = f"{reference.get('scored', '—')} / {reference.get('images', '—')}"
        start = ((faith.get("deletion") or {}).get("starting_probability") or {}).get("value")
        accuracy = (m.get("explained_checkpoint") or {}).get("balanced_accuracy")
        tail.append(f"| {name} | {r['seed']} | {accuracy if accuracy is None else f'{accuracy:.3f}'} | "
                    f"{curve_images} | {start if start is None else f'{start:.3f}'} | {removed.get('fill')} | {probs} | "
                    f"{faith.get('mask')} | {m.get('explain_time_s')} |")
    return "\n".join(lines + tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.explain.report", description=__doc__.split("\n")[0])
    parser.add_argument("--results-dir", type=Path, default=Path("data/results"))
    parser.add_argument("--suite", default="quick")
    args = parser.parse_args(argv)
    found = [json.loads(p.read_text()) for p in sorted(args.results_dir.glob(f"*/{args.suite}/explain__*.json"))]
    primary = [r for r in found if r["error"] is None and r["config"].get("primary", True)]
    if not primary:
        sys.stderr.write(f"no explain results of suite {args.suite} under {args.results_dir}\n")
        return 1
    sys.stdout.write(table(primary) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
