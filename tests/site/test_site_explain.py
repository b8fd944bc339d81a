"""The Explanations page: every baseline beside every score, flagged methods never lead, Grad-CAM's
ceiling, the sanity rule, the metrics' agreement, escaping, and results written before all that."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from bench.site.explain_findings import gradcam_grids

SCORE_TITLES = ["Pointing game", "Relevance mass", "Relevance rank (AUROC)", "Deletion against random order",
                "Insertion against random order"]
VARIANTS = ("spearman", "spearman_abs", "spearman_foreground", "spearman_abs_foreground")


def _section(text: str, title: str) -> str:
    start = text.index(f"### {title}\n")
    end = text.find("\n### ", start + 4)
    return text[start:end if end > 0 else None]


def _table_rows(section: str) -> list[list[str]]:
    rows = [line for line in section.splitlines() if line.startswith("| [")]
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in rows]


def _results(paths: SimpleNamespace) -> list[dict]:
    folder = paths.results / "cpu-fixture-2c" / "quick"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("explain__*.json"))]


def test_every_score_shows_the_strongest_baseline_randomised_weights_and_the_paired_verdict(
        rendered: tuple[Path, list[Path]], paths: SimpleNamespace) -> None:
    text = (rendered[0] / "explain.md").read_text()
    results = {r["model"]["name"]: r["metrics"]["faithfulness"] for r in _results(paths)}
    labels = {"intensity": "input intensity", "uniform_foreground": "uniform over the head",
              "edges": "edge map (Sobel)"}
    for title, score in zip(SCORE_TITLES, ("pointing_game", "relevance_mass", "relevance_rank", "deletion_vs_random",
                                           "insertion_vs_random")):
        rows = _table_rows(_section(text, title))
        assert len(rows) == 8, title  # 2 models × 4 methods
        for cells in rows:
            model = re.match(r"\[(\w+)\]", cells[0]).group(1)
            method = {"Saliency": "saliency", "Integrated Gradients": "integrated_gradients",
                      "SmoothGrad": "smoothgrad", "Grad-CAM": "gradcam"}[cells[1].removesuffix(" ⚠")]
            s = results[model]["scores"][method]
            verdict = s["vs_strongest_baseline"][score]
            baseline = results[model]["baselines"][verdict["baseline"]][score]
            assert cells[3].startswith(f"{labels[verdict['baseline']]} {baseline['value']:.3f} ["), (title, cells)
            assert cells[4].startswith(f"{s['randomised_weights'][score]['value']:.3f} ["), (title, cells)
            assert cells[5] == ("✓" if verdict["beats"] else "✗"), (title, cells)
    baselines = _section(text, "Every baseline on the location scores")
    for label in ("input intensity", "uniform over the head", "edge map (Sobel)", "random point in the image",
                  "random point in the head", "perfect map at Grad-CAM"):
        assert f"| {label}" in baselines, label


def test_gradcam_location_scores_carry_their_ceiling(rendered: tuple[Path, list[Path]]) -> None:
    text = (rendered[0] / "explain.md").read_text()
    for title in SCORE_TITLES[:3]:
        for cells in _table_rows(_section(text, title)):
            ceiling = cells[6]
            assert bool(ceiling) == (cells[1] == "Grad-CAM"), (title, cells)
            if ceiling:
                assert re.fullmatch(r"\d\.\d{3} \[\d\.\d{3}–\d\.\d{3}\]", ceiling), ceiling


def test_a_flagged_method_never_leads_the_findings_or_the_chart(rendered: tuple[Path, list[Path]],
                                                                chart_data: Callable[[str, str], list[dict]]) -> None:
    """Integrated Gradients has the highest pointing game in the fixtures and fails a sanity check."""
    text = (rendered[0] / "explain.md").read_text()
    findings = [line for line in _section(text, "Findings").splitlines() if line.startswith("- ")]
    assert findings[0].startswith("- Leading pair: pyramid_softmax with Saliency")
    assert "Integrated Gradients" not in findings[0]
    per_method = [f for f in findings if "the best pointing game is" in f]
    assert not per_method[0].startswith("- Integrated Gradients") and "fails a sanity check" in per_method[-1]
    bars = [t for t in chart_data(text, "faithfulness-cpu-fixture-2c-quick") if t["type"] == "bar"]
    assert "Integrated Gradients" not in bars[0]["name"]
    flagged = [t for t in bars if "Integrated Gradients" in t["name"]]
    assert len(flagged) == 1 and bars[-1] is flagged[0] and "fails a sanity check" in flagged[0]["name"]
    lines = [t["name"] for t in chart_data(text, "faithfulness-cpu-fixture-2c-quick") if t["type"] == "scatter"]
    assert any(n.startswith("strongest model-free baseline") for n in lines) and any("ceiling" in n for n in lines)


def test_the_page_flags_exactly_what_the_absolute_value_rule_fails(rendered: tuple[Path, list[Path]],
                                                                   paths: SimpleNamespace) -> None:
    """The same rule as the stage: any variant, signed or absolute, whole image or head, at a judged step."""
    text = (rendered[0] / "explain.md").read_text()
    shown = {(re.match(r"\[(\w+)\]", c[0]).group(1), c[1].removesuffix(" ⚠")): c[-1]
             for c in _table_rows(_section(text, "Sanity checks"))}
    labels = {"saliency": "Saliency", "integrated_gradients": "Integrated Gradients", "smoothgrad": "SmoothGrad",
              "gradcam": "Grad-CAM"}
    for r in _results(paths):
        sanity = r["metrics"]["sanity"]
        for method, record in sanity["methods"].items():
            judged = record["cascade"][sanity["judged_from"] - 1:]
            fails = any(abs(step[v]) >= sanity["threshold"] for step in judged for v in VARIANTS)
            assert record["passed"] is not fails
            verdict = shown[(r["model"]["name"], labels[method])]
            assert verdict.startswith("⚠ fails") if fails else verdict == "passed", (method, verdict)


def test_the_metrics_agreement_table_and_the_starting_probabilities(rendered: tuple[Path, list[Path]],
                                                                      paths: SimpleNamespace) -> None:
    text = (rendered[0] / "explain.md").read_text()
    table = _section(text, "Do the scores agree?")
    summary = json.loads((paths.results / "cpu-fixture-2c" / "quick" / "explain.json").read_text())["metrics"]
    rho = summary["metric_correlations"]["spearman"][0][1]
    assert f"| pointing game | 1.00 | {rho:.2f} |" in table
    curves = _section(text, "Deletion and insertion: what each model starts from")
    for r in _results(paths):
        start = r["metrics"]["faithfulness"]["deletion"]["starting_probability"]["value"]
        accuracy = r["metrics"]["explained_checkpoint"]["balanced_accuracy"]
        scored = r["metrics"]["faithfulness"]["deletion"]["scored_images"]
        assert f"| {accuracy:.3f} | {scored} / 8 | {start:.3f} [" in curves, r["model"]["name"]


def test_strings_from_the_results_are_escaped(tmp_path: Path, results_copy: Path,
                                              render: Callable[..., list[Path]]) -> None:
    path = results_copy / "cpu-fixture-2c" / "quick" / "explain__pyramid_swin.json"
    payload = json.loads(path.read_text())
    payload["metrics"]["sanity"]["methods"]["integrated_gradients"]["failures"] = ["cascade to *stage* | 4"]
    path.write_text(json.dumps(payload))
    out = tmp_path / "docs"
    render(out, results=results_copy)
    text = (out / "explain.md").read_text()
    assert "⚠ fails: cascade to &#42;stage&#42; &#124; 4" in text and "*stage*" not in text


def test_results_written_before_the_baselines_still_render(tmp_path: Path, results_copy: Path,
                                                           render: Callable[..., list[Path]]) -> None:
    """An explain result of the earlier layout (no baselines, one-step sanity) renders with dashes."""
    for path in (results_copy / "cpu-fixture-2c" / "quick").glob("explain*.json"):
        payload = json.loads(path.read_text())
        m = payload["metrics"]
        if payload["model"] is None:
            payload["metrics"] = {"comparison": m["comparison"]}
        else:
            for key in ("fully_removed", "fully_removed_max_finding_prob", "explained_checkpoint", "timing"):
                m.pop(key)
            m["sanity"] = {k: {"spearman": 0.1, "spearman_abs": 0.2, "images": 4, "passed": True} for k in m["methods"]}
            m["faithfulness"] = {"images": m["faithfulness"]["images"],
                                 "scores": {k: {"pointing_game": v["pointing_game"], "per_image": v["per_image"]}
                                            for k, v in m["faithfulness"]["scores"].items()}}
        path.write_text(json.dumps(payload))
    out = tmp_path / "docs"
    render(out, results=results_copy)
    assert "### Pointing game" in (out / "explain.md").read_text()


def test_gradcam_caveat_names_grids_that_differ_and_grids_too_coarse_to_point() -> None:
    differ = gradcam_grids({"vit": (4, 4), "resnet50": (2, 2), "pyramid_swin": (2, 2)})
    assert "differ in resolution" in differ and "2×2 for pyramid_swin, resnet50; 4×4 for vit" in differ
    coarse = gradcam_grids({"vit": (4, 4), "resnet50": (4, 4)})
    assert "4×4 for every model" in coarse and "ceiling" in coarse and "differ" not in coarse
    assert gradcam_grids({"vit": (8, 8), "resnet50": (8, 8)}) is None
    assert gradcam_grids({}) is None


def test_the_page_says_which_masks_and_fill_and_how_each_fill_is_read(rendered: tuple[Path, list[Path]],
                                                                        paths: SimpleNamespace) -> None:
    text = (rendered[0] / "explain.md").read_text()
    assert "masks: evidence masks (every pixel the finding changed); deletion fill: lesion_free." in text
    curves = _section(text, "Deletion and insertion: what each model starts from")
    for r in _results(paths):
        removed = r["metrics"]["fully_removed"]
        top = [f"{removed[f]['any_image_max_finding_prob']:.2f}" for f in ("lesion_free", "black", "blur")]
        assert f"| {top[0]} / {top[1]} / {top[2]} |" in curves, r["model"]["name"]  # per image, never a mean
        scored = r["metrics"]["faithfulness"]["deletion"]["scored_images"]
        assert f"| {scored} / {len(r['metrics']['faithfulness']['images'])} |" in curves, r["model"]["name"]
    assert "No fully removed version of a scored image is read as a finding above 0.5 by any model" in text


def test_native_maps_show_how_flat_they_are(rendered: tuple[Path, list[Path]], paths: SimpleNamespace) -> None:
    text = (rendered[0] / "explain.md").read_text()
    for r in _results(paths):
        for m in r["metrics"]["native"]["maps"]:
            u = m["uniformity"]
            row = f"| {m['name']} | {u['entropy_ratio']:.3f} | {u['peak_over_uniform']:.2f} | {u['floor']:.2f} |"
            assert row in text, row


def test_scores_over_several_seeds_are_shown_beside_the_first_checkpoints(tmp_path: Path, results_copy: Path,
                                                                        render: Callable[..., list[Path]]) -> None:
    """An additional seed's result is read through the summary, never as a row of its own."""
    from bench.explain.summary import across_seeds

    folder = results_copy / "cpu-fixture-2c" / "quick"
    first = json.loads((folder / "explain__pyramid_softmax.json").read_text())
    again = json.loads(json.dumps(first))
    again["seed"], again["config"]["primary"] = 1, False
    for scores in again["metrics"]["faithfulness"]["scores"].values():
        scores["per_image"] = {k: [v * 0.5 for v in values] for k, values in scores["per_image"].items()}
    (folder / "explain__pyramid_softmax__seed1.json").write_text(json.dumps(again))
    summary = json.loads((folder / "explain.json").read_text())
    summary["metrics"]["across_seeds"] = across_seeds({"pyramid_softmax": {0: first["metrics"], 1: again["metrics"]}},
                                                      200, 0)
    (folder / "explain.json").write_text(json.dumps(summary))
    out = tmp_path / "docs"
    render(out, results=results_copy)
    text = (out / "explain.md").read_text()
    rows = _table_rows(_section(text, "Pointing game"))
    assert len(rows) == 8  # still one row per model and method
    entry = summary["metrics"]["across_seeds"]["pyramid_softmax"]["methods"]["saliency"]["pointing_game"]
    saliency = next(c for c in rows if c[0].startswith("[pyramid_softmax]") and c[1] == "Saliency")
    assert saliency[7] == f"{entry['value']:.3f} [{entry['ci95'][0]:.3f}–{entry['ci95'][1]:.3f}]"
    assert "over the checkpoints of seeds 0, 1" in text


def test_native_strips_are_drawn_wider_with_their_colour_bar(rendered: tuple[Path, list[Path]]) -> None:
    from PIL import Image

    out = rendered[0]
    text = (out / "gallery.md").read_text()
    figures = re.findall(r'<img src="([^"]+)" loading="lazy" width="(\d+)" height="96"', text)
    assert figures
    for src, width in figures:
        path = out / src.removeprefix("../") if not (out / src).exists() else out / src
        assert Image.open(path).size == (int(width), 96), src
    assert {w for s, w in figures if "native" in s} == {"328"}
    assert {w for s, w in figures if "native" not in s} == {"292"}
