"""Rendering the golden results: pages, numbers, labels, escaping and byte-for-byte determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import pytest

from bench.results.store import ResultError
from markupsafe import Markup

from bench.site.leaderboard import mean_std
from bench.site.context import Interval
from bench.site.render import MANIFEST, ci, escape_text, finalize, fmt, pm, sig

PAGES = ["accuracy.md", "dataset.md", "demo.md", "downloads.md", "efficiency.md", "explain.md", "gallery.md", "hardware.md",
         "index.md", "methods.md", "misclassified.md", "models.md", "own-data.md", "primer.md", "reproduce.md",
         "robustness.md"]
MODEL_PAGES = ["models/pixel-logreg.md", "models/pyramid-performer.md", "models/pyramid-softmax.md",
               "models/pyramid-swin.md"]
CSVS = ["downloads/all-metrics.csv", "downloads/attention-scaling.csv", "downloads/latency.csv",
        "downloads/per-class.csv"]
CLASSES = ["acute_infarct", "arteriovenous_anomaly", "chronic_infarct", "edema", "extra", "focal_flair_hyper",
           "intra", "normal", "pituitary_lesion", "white_matter_changes"]


def page(out: Path, name: str) -> str:
    return (out / name).read_text()


def test_pages_and_assets_are_written(rendered: tuple[Path, list[Path]], paths: SimpleNamespace) -> None:
    out, written = rendered
    results = sorted(f"downloads/results/{p.relative_to(paths.results).as_posix()}" for p in paths.results.rglob("*.json"))
    strips = sorted(f"assets/{p.relative_to(paths.artifacts).as_posix()}"
                    for p in (paths.artifacts / "explain").rglob("*.webp"))
    assert strips, "the fixtures hold gallery strips"
    expected = PAGES + MODEL_PAGES + CSVS + results + strips + \
        [f"assets/dataset/synthetic-quick/{c}.png" for c in CLASSES]
    assert sorted(p.relative_to(out).as_posix() for p in written) == sorted(expected)
    assert (out / MANIFEST).read_text().split() == sorted(expected)
    for rel in results:  # downloads are the files as the engine wrote them
        assert (out / rel).read_bytes() == (paths.results / rel.removeprefix("downloads/results/")).read_bytes()


def test_the_stated_half_widths_are_the_comparisons(rendered: tuple[Path, list[Path]], paths: SimpleNamespace) -> None:
    """The leaderboard's "intervals reach ±a to ±b" is computed from the comparison file, not written by hand."""
    import json

    comparison = json.loads((paths.results / "cpu-fixture-2c" / "quick" / "comparison.json").read_text())
    widths = [(m["ci95"][1] - m["ci95"][0]) / 2 for m in comparison["metrics"]["models"].values()
              if not m.get("baseline")]
    index = " ".join(page(rendered[0], "index.md").split())
    assert f"the intervals reach ±{min(widths):.3f} to ±{max(widths):.3f}." in index


def test_leaderboard_shows_the_answer_first_and_every_cost_with_its_scale(rendered: tuple[Path, list[Path]]) -> None:
    """The first table holds what a reader came for (accuracy with its interval and tie mark,
    the size and the latency on the suite's own machine); every cost names its scale, input
    size or machine; the second table carries the rest, a latency column per machine."""
    index = page(rendered[0], "index.md")
    assert "| Model | Balanced acc. ↑ mean ± SD (seeds) | 95% CI | vs best | Params (quick) | ms ↓ on cpu-fixture-2c |" \
        in index
    assert "Costs are for the **quick** models at **64 px**; latency is the p50 of one image (batch 1, float32) " \
        "on **cpu-fixture-2c**'s CPU." in " ".join(index.split())
    softmax = [line for line in index.splitlines() if line.startswith("| [pyramid_softmax]")]
    cells = [c.strip() for c in softmax[0].strip("|").split("|")]
    # model, balanced acc (n), seeds × images CI (the comparison file's), vs best, params, latency on its machine
    assert cells == ["[pyramid_softmax](models/pyramid-softmax.md)", "0.820 ± 0.028 (2)", "0.731–0.897", "best",
                     "1.48 M", "4.31"]
    assert "| [pyramid_swin](models/pyramid-swin.md) | 0.730 ± 0.042 (2) | 0.624–0.822 | < | 1.50 M | 5.98 |" in index
    assert "| *pixel_logreg* (baseline) | 0.400 (1) | 0.300–0.499 | < | — | — |" in index
    assert index.index("| [pyramid_softmax]") < index.index("| [pyramid_swin]")
    assert "| Model | GMACs ↓ (64 px) | Macro AUC ↑ | ECE ↓ | ms ↓ on cpu-fixture-2c | ms ↓ on gpu-nvidia-h200 |" in index
    details = [c.strip() for c in softmax[1].strip("|").split("|")]
    assert details[1] == "0.156" and details[-2] == "4.31" and details[-1] == "1.98"  # the GPU machine's GPU latency


def test_findings_are_computed_from_the_results(rendered: tuple[Path, list[Path]]) -> None:
    index = page(rendered[0], "index.md")
    assert "- Best balanced accuracy on synthetic data: pyramid_softmax, 0.820 (95% CI 0.731–0.897)." in index
    assert "- 2 of 2 models beat the pixel baseline (pixel_logreg, 0.400 (95% CI 0.300–0.499))." in index


def test_synthetic_data_is_labelled(rendered: tuple[Path, list[Path]]) -> None:
    out = rendered[0]
    for name in ("index.md", "accuracy.md"):
        assert '!!! danger "Synthetic data"' in page(out, name)
    assert "**synthetic-quick** (synthetic data)" in page(out, "index.md")
    assert '!!! warning "Synthetic"' in page(out, "dataset.md")


def test_failed_run_is_listed_with_its_error(rendered: tuple[Path, list[Path]]) -> None:
    index = page(rendered[0], "index.md")
    assert "## Failed runs" in index
    assert "FloatingPointError: non-finite loss at epoch 3 (&#124;grad&#124; &gt; 1e4); lower train.lr" in index


def test_latency_chart_has_a_second_hardware_column(rendered: tuple[Path, list[Path]],
                                                    chart_data: Callable[[str, str], list[dict]]) -> None:
    traces = chart_data(page(rendered[0], "efficiency.md"), "latency-quick")
    machines = {t["name"].split(" · ")[0] for t in traces}
    assert machines == {"cpu-fixture-2c", "gpu-nvidia-h200"}
    assert all(t["type"] == "bar" for t in traces)


def test_pages_show_each_result_kind(rendered: tuple[Path, list[Path]]) -> None:
    out = rendered[0]
    perf = page(out, "efficiency.md")
    assert "| cpu-fixture-2c | [pyramid_softmax](models/pyramid-softmax.md) | cpu | float32 | 32 |" in perf
    assert "| machine record |" in perf
    assert "| softmax | 1.93 | 256–4,096 | 4,096 | oom at N=16384 |" in perf
    assert "| linformer | linformer 0.2.3 | 1,024 |" in perf
    model = page(out, "models/pyramid-softmax.md")
    assert model.count('class="plotly-graph-div"') == 2 and "| normal |" in model  # curves, confusion
    assert "](../downloads/results/cpu-fixture-2c/quick/train__pyramid_softmax__seed0.json)" in model
    methods = page(out, "methods.md")
    assert "| softmax | [pyramid_softmax](models/pyramid-softmax.md) | $O(N^2 C)$ |" in methods
    assert "python -m bench run" in page(out, "reproduce.md") or "medbench" in page(out, "reproduce.md")
    dataset = page(out, "dataset.md")
    assert "![Sample images of class normal](assets/dataset/synthetic-quick/normal.png)" in dataset
    assert "| normal | 1,239 | 265 | 266 | 1,770 | 57.8% |" in dataset
    # the golden fixtures hold no export or shift results; tests/site/test_site_robustness.py renders a shift summary
    assert "Not run yet" not in "".join(page(out, p) for p in PAGES if p not in ("demo.md", "robustness.md"))


def test_an_identifier_outside_the_safe_pattern_is_refused_in_one_line(tmp_path: Path, results_copy: Path,
                                                                       render: Callable[..., list[Path]]) -> None:
    path = results_copy / "cpu-fixture-2c" / "quick" / "train__pyramid_swin__seed0.json"
    payload = json.loads(path.read_text())
    payload["model"]["name"] = "<script>alert(1)</script>|*x*"
    path.write_text(json.dumps(payload))
    with pytest.raises(ResultError) as caught:
        render(tmp_path / "docs", results=results_copy)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path)) and "model/name: '<script>" in message


def test_free_text_from_results_is_escaped(tmp_path: Path, results_copy: Path, render: Callable[..., list[Path]]) -> None:
    hostile = "<script>alert(1)</script>|*x*"
    for seed in (0, 1):
        path = results_copy / "cpu-fixture-2c" / "quick" / f"train__pyramid_swin__seed{seed}.json"
        payload = json.loads(path.read_text())
        payload["dataset"]["skipped_files"] = [{"path": hostile, "reason": hostile}]
        payload["dataset"]["skipped_count"] = 1
        payload["command"] = hostile
        path.write_text(json.dumps(payload))
    out = tmp_path / "docs"
    render(out, results=results_copy)
    text = "".join(page(out, p.relative_to(out).as_posix()) for p in out.rglob("*.md"))
    assert "<script>alert(1)" not in text and "alert(1)</script>" not in text
    assert "| &lt;script&gt;alert(1)&lt;/script&gt;&#124;&#42;x&#42; | &lt;script&gt;alert(1)&lt;/script&gt;&#124;&#42;x&#42; |" \
        in page(out, "index.md")


def test_rendering_is_byte_for_byte_reproducible(tmp_path: Path, rendered: tuple[Path, list[Path]],
                                                 render: Callable[..., list[Path]],
                                                 tree_bytes: Callable[[Path], dict[str, bytes]]) -> None:
    again = tmp_path / "again"
    render(again)
    assert tree_bytes(again) == tree_bytes(rendered[0])
    before = {p: p.stat().st_mtime_ns for p in again.rglob("*") if p.is_file() and p.name != MANIFEST}
    render(again)  # unchanged files are not rewritten
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_stale_generated_files_are_removed(tmp_path: Path, render: Callable[..., list[Path]]) -> None:
    out = tmp_path / "docs"
    render(out)
    assert (out / "assets" / "dataset" / "synthetic-quick" / "normal.png").is_file()
    render(out, artifacts=tmp_path / "no-artifacts")
    assert not (out / "assets" / "dataset").exists()
    assert (out / "index.md").is_file() and "No dataset artifacts yet" in page(out, "dataset.md")


def test_refuses_a_folder_it_did_not_generate(tmp_path: Path, render: Callable[..., list[Path]]) -> None:
    (tmp_path / "notes.md").write_text("mine")
    with pytest.raises(FileExistsError, match="has no .medbench-site"):
        render(tmp_path)
    assert (tmp_path / "notes.md").read_text() == "mine"


def test_every_page_renders_without_results(tmp_path: Path, render: Callable[..., list[Path]]) -> None:
    out = tmp_path / "docs"
    render(out, results=tmp_path / "none", artifacts=tmp_path / "none")
    assert sorted(p.name for p in out.glob("*.md")) == PAGES
    for name in ("index.md", "accuracy.md", "efficiency.md", "hardware.md", "reproduce.md", "models.md", "explain.md",
                 "gallery.md", "misclassified.md", "robustness.md"):
        assert "Not run yet" in page(out, name), name
    assert "Synthetic data" not in page(out, "index.md")


def test_filters_format_numbers_and_dashes() -> None:
    assert fmt(None) == "—" and fmt(1234567) == "1,234,567" and fmt(0.12345) == "0.123" and fmt(True) == "yes"
    assert sig(0.012345) == "0.0123" and sig(1234.5) == "1,234" and sig(4.3078) == "4.31"
    assert pm(mean_std([0.8, 0.84])) == "0.820 ± 0.028"
    assert pm(mean_std([0.5])) == "0.500" and pm(mean_std([])) == "—"
    assert ci(Interval(0.1, 0.25)) == "0.100–0.250" and ci(None) == "—"


def test_escape_makes_markdown_and_html_inert() -> None:
    assert escape_text("a|b *c* `d` [e](f) {g}") == "a&#124;b &#42;c&#42; &#96;d&#96; &#91;e&#93;(f) &#123;g&#125;"
    assert escape_text("pyramid_softmax") == "pyramid_softmax"  # intraword underscores are not emphasis
    assert escape_text("_x_ __init__") == "&#95;x&#95; &#95;&#95;init&#95;&#95;"
    assert escape_text("two\nlines  <b>") == "two lines &lt;b&gt;"
    assert finalize(None) == "—" and finalize(Markup("<div>")) == "<div>" and finalize(3) == 3


def test_site_package_does_not_import_the_engine_stack(paths: SimpleNamespace, tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from bench.site.render import render_site; "
        f"render_site(Path({str(paths.results)!r}), Path({str(paths.artifacts)!r}), Path({str(paths.templates)!r}), "
        f"Path({str(tmp_path / 'docs')!r})); "
        "print(sorted(m for m in ('torch', 'timm', 'captum', 'fvcore', 'torchvision', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_skipped_files_are_listed_on_the_home_page(tmp_path: Path, results_copy: Path,
                                                   render: Callable[..., list[Path]]) -> None:
    for seed in (0, 1):
        path = results_copy / "cpu-fixture-2c" / "quick" / f"train__pyramid_swin__seed{seed}.json"
        payload = json.loads(path.read_text())
        payload["dataset"].update(skipped_count=2, skipped_files=[
            {"path": "radiology_ai/MR/brain/edema/broken.png", "reason": "truncated PNG file"},
            {"path": "radiology_ai/MR/brain/normal/x.dcm", "reason": "no pixel data"}])
        path.write_text(json.dumps(payload))
    out = tmp_path / "docs"
    render(out, results=results_copy)
    index = page(out, "index.md")
    assert "2 unreadable files skipped" in index
    assert "| radiology_ai/MR/brain/edema/broken.png | truncated PNG file |" in index
