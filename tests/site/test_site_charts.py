"""Chart snippets: deterministic ids and bytes, no bundled or remote plotly.js, right traces."""

from __future__ import annotations

import json
import re

from types import SimpleNamespace

import plotly.graph_objects as go
import pytest

from bench.site import charts
from bench.site.aggregate import build_context
from bench.site.context import SiteContext
from bench.site.load import load_datasets, load_results


@pytest.fixture(scope="module")
def ctx(paths: SimpleNamespace) -> SiteContext:
    return build_context(load_results(paths.results), load_datasets(paths.artifacts))


def plotly_figure(fig: charts.Figure) -> go.Figure:
    """The chart as plotly.py's checked object (attribute access, and every property validated)."""
    return go.Figure(fig.to_dict())


def test_pareto_front_keeps_only_undominated_points() -> None:
    points = [(1.0, 0.5), (2.0, 0.7), (2.5, 0.6), (3.0, 0.9), (0.5, 0.4), (3.0, 0.8)]
    assert charts.pareto_front(points) == [(0.5, 0.4), (1.0, 0.5), (2.0, 0.7), (3.0, 0.9)]


def test_rounding_is_to_significant_digits() -> None:
    assert charts.r(0.123456789) == 0.12346
    assert charts.r(12345.678) == 12346.0
    assert charts.r(None) is None and charts.r(0.0) == 0.0


def test_snippet_is_deterministic_and_self_contained() -> None:
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4], name="a  b"))
    first = charts.to_div(fig, "chart-x")
    second = charts.to_div(go.Figure(go.Scatter(x=[1, 2], y=[3, 4], name="a  b")), "chart-x")
    assert first == second
    assert first.startswith("<div") and first.endswith("</div>") and "\n" not in first
    assert 'id="chart-x"' in first and '"a  b"' in first  # padding collapsed, data strings untouched
    assert "<script src" not in first and "cdn" not in first.lower() and "https://" not in first
    assert '"responsive": true' in first


def test_latency_chart_has_a_trace_per_hardware_column(ctx: SiteContext) -> None:
    fig = plotly_figure(charts.latency_columns(ctx.perf_suites[0]))
    names = [t.name for t in fig.data]
    assert names == ["cpu-fixture-2c · cpu float32", "gpu-nvidia-h200 · cuda bfloat16",
                     "gpu-nvidia-h200 · cuda float32"]
    assert list(fig.data[0].x) == ["pyramid_softmax", "pyramid_swin"] and list(fig.data[1].x) == ["pyramid_softmax"]
    assert fig.layout.yaxis.type != "log"  # a bar's length is its value


def test_accuracy_chart_draws_error_bars_baselines_and_a_front_only_where_costs_spread(ctx: SiteContext) -> None:
    import dataclasses

    group = ctx.train_groups[0]
    fig = plotly_figure(charts.accuracy_vs_cost(group, "gmacs"))
    softmax = fig.data[0]
    assert softmax.name == "pyramid_softmax" and softmax.y[0] == pytest.approx(0.82)
    # the comparison's 95% interval of the across-seed mean (0.731–0.897), not the seeds' std
    assert softmax.error_y.arrayminus[0] == pytest.approx(0.82 - 0.731, abs=1e-3)
    assert softmax.error_y.array[0] == pytest.approx(0.897 - 0.82, abs=1e-3)
    # GMACs 0.150 and 0.156 differ by 4%: no front, a linear axis
    assert "Pareto front" not in [t.name for t in fig.data] and fig.layout.xaxis.type == "linear"
    assert [round(shape.y0, 3) for shape in fig.layout.shapes] == [0.4]  # the pixel baseline's line
    assert "pixel_logreg 0.400" in [a.text for a in fig.layout.annotations]
    title = fig.layout.title.text.replace("<br>", " ").replace("\u00a0", " ")
    assert "(synthetic data)" in title and "at 64 px, quick scale" in title
    spread = dataclasses.replace(group, rows=tuple(dataclasses.replace(row, gmacs=g)
                                                   for row, g in zip(group.rows, (0.5, 0.1))))
    fig = plotly_figure(charts.accuracy_vs_cost(spread, "gmacs"))
    assert fig.data[-1].name == "Pareto front" and fig.layout.xaxis.type == "log"


def test_attention_legend_gives_the_fitted_exponent(ctx: SiteContext) -> None:
    fig = plotly_figure(charts.attention_scaling(ctx.attention[0]))
    assert "softmax (N^1.93)" in [t.name for t in fig.data]
    softmax = next(t for t in fig.data if t.name.startswith("softmax"))
    assert list(softmax.x) == [256, 1024, 4096]  # the oom point is not plotted
    assert fig.layout.xaxis.type == fig.layout.yaxis.type == "log"


def test_data_strings_are_escaped_for_plotly_text() -> None:
    assert charts.label("<b>x</b> & y") == "&lt;b&gt;x&lt;/b&gt; &amp; y"


def test_build_charts_covers_every_chart_the_context_names(ctx: SiteContext) -> None:
    built = charts.build_charts(ctx)
    named = {c for g in ctx.train_groups for c in (g.acc_gmacs_chart, g.acc_latency_chart, g.acc_params_chart,
                                                   g.metrics_chart, g.per_class_chart, g.calibration_chart)}
    named |= {r.curves_chart for g in ctx.train_groups for r in g.rows}
    named |= {r.confusion_chart for g in ctx.train_groups for r in g.rows + g.baselines}
    named |= set(ctx.class_chart.values()) | {e.chart for e in ctx.explain}
    named |= {s.latency_chart for s in ctx.perf_suites} | {m.sweep_chart for s in ctx.perf_suites for m in s.machines}
    named |= {b.chart for b in ctx.attention}
    assert set(built) == named - {None}
    assert all(f'id="{key}"' in html for key, html in built.items())


def test_accuracy_page_charts_carry_every_model_and_interval(ctx: SiteContext) -> None:
    group = ctx.train_groups[0]
    bars = plotly_figure(charts.metric_bars(group))
    assert [t.name for t in bars.data] == ["pyramid_softmax", "pyramid_swin", "pixel_logreg (baseline)"]
    softmax = bars.data[0]
    assert "balanced accuracy" in softmax.x and all(v >= 0 for v in softmax.error_y.array)
    heat = plotly_figure(charts.per_class_heatmap(group))
    assert [t.type for t in heat.data] == ["heatmap", "heatmap"]
    assert list(heat.data[0].y) == ["pyramid_softmax", "pyramid_swin"] and len(heat.data[0].x) == 10
    params = plotly_figure(charts.accuracy_vs_cost(group, "params"))
    assert params.layout.xaxis.type == "linear" and "parameters" in params.layout.xaxis.title.text  # 1.48M–1.50M


def test_calibration_pools_the_seeds_reliability_bins(ctx: SiteContext) -> None:
    group = ctx.train_groups[0]
    softmax = group.rows[0]
    assert [b.count for b in softmax.reliability] == [66, 66, 68]  # two seeds of 33/33/34 images
    fig = plotly_figure(charts.calibration(group))
    curve = next(t for t in fig.data if t.type == "scatter" and t.name == "pyramid_softmax")
    assert list(curve.x) == [0.5, 0.7, 0.9] and all(0 <= y <= 1 for y in curve.y)
    assert fig.data[-1].name == "perfect calibration"


def test_every_chart_passes_plotlys_own_checks(ctx: SiteContext) -> None:
    """Charts are written as plain JSON; plotly.py's validation must accept every one of them."""
    for key, html in charts.build_charts(ctx).items():
        call = re.search(rf'Plotly\.newPlot\(\s*"{re.escape(key)}",\s*', html)
        rest, args = html[call.end():], []
        for _ in range(2):  # data, layout
            value, end = json.JSONDecoder().raw_decode(rest)
            args.append(value)
            rest = rest[end:].lstrip(" ,")
        go.Figure({"data": args[0], "layout": args[1]})  # raises on any unknown or malformed property


def _chart_json(snippet: str) -> tuple[list[dict], dict]:
    """(traces, layout) of a chart snippet: the data and layout arguments of its ``Plotly.newPlot`` call."""
    import json

    decoder = json.JSONDecoder()
    at = snippet.index("Plotly.newPlot(")
    at = snippet.index("[", snippet.index(",", at))  # past the div id
    traces, end = decoder.raw_decode(snippet, at)
    layout, _ = decoder.raw_decode(snippet, snippet.index("{", end))
    return traces, layout


def test_one_colour_per_model_in_every_chart_and_no_bars_on_a_log_axis(ctx: SiteContext) -> None:
    """Every trace named after a model has that model's colour, in every chart the site builds;
    no bar chart puts its bars on a log axis."""
    from bench.site.chart_style import MODEL_COLORS, model_color

    models = {row.model for group in ctx.train_groups for row in group.rows + group.baselines}
    seen: dict[str, set[str]] = {}
    for div_id, snippet in charts.build_charts(ctx).items():
        traces, layout = _chart_json(snippet)
        for trace in traces:
            name = (trace.get("name") or "").removesuffix(" (baseline)")
            color = (trace.get("marker") or {}).get("color") or (trace.get("line") or {}).get("color")
            if name in models and isinstance(color, str):
                seen.setdefault(name, set()).add(color)
            if trace.get("type") == "bar":
                axis = "yaxis" if trace.get("orientation") != "h" else "xaxis"
                suffix = (trace.get(axis[0] + "axis") or axis[0])[1:]
                assert (layout.get(f"{axis}{suffix}") or {}).get("type") != "log", div_id
    assert seen and all(colors == {model_color(name)} for name, colors in seen.items()), seen
    assert len(set(MODEL_COLORS.values())) == len(MODEL_COLORS)  # no two registry models share a colour


def test_a_long_chart_title_breaks_after_its_first_colon() -> None:
    from bench.site.chart_style import _titled

    short = _titled("Latency: quick", synthetic=False)["text"]
    assert short == "Latency: quick"
    titled = _titled("Balanced accuracy vs GMACs at 64 px, quick scale: quick on cpu-amd-epyc-2c", synthetic=True)
    long = titled["text"]
    assert titled["automargin"] and titled["yanchor"] == "bottom"  # above the plot, the margin made room
    assert long == ("Balanced accuracy vs GMACs at<br>64\u00a0px, quick scale"
                    "<br><sup>quick on cpu-amd-epyc-2c (synthetic data)</sup>")
    assert all(len(line) <= 34 for line in long.split("<sup>")[0].split("<br>"))
