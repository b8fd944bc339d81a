"""Plotly charts as HTML snippets, byte-stable so that the generated site can be diffed.

Each chart gets the deterministic div id chosen in the context, numbers are rounded
before they reach plotly, and the JSON engine is pinned: the same context always gives
the same bytes. plotly.js itself is not embedded; the theme loads the site's copy.
"""

from __future__ import annotations

import logging
from typing import Iterable

from bench.site.chart_style import (  # noqa: F401 - re-exported for the tests and other callers
    BLUES, COLORS, HEIGHT, _error_bars, _text, _titled, baseline_style, label, model_color, pareto_front, r, to_div,
)
from bench.site.charts_quality import (  # noqa: F401 - re-exported
    calibration, class_distribution, faithfulness, metric_bars, per_class_heatmap,
)
from bench.site.charts_robustness import accuracy_by_severity, drop_heatmap
from bench.site.context import LeaderRow, SiteContext, TrainGroup
from bench.site.figure import Figure, bar, heatmap, scatter, subplots  # noqa: F401 - Figure re-exported
from bench.site.perf_context import AttentionBench, PerfMachine, PerfSuite

log = logging.getLogger(__name__)


# cost attribute of a leaderboard row → (axis title, short name for the chart title)
COSTS = {"gmacs": ("GMACs per image", "GMACs"),
         "params": ("parameters", "parameters")}
# A Pareto front (and a log axis) says something only where the costs differ by more than this share.
SPREAD_FOR_A_FRONT = 0.10


def cost_spread(costs: list[float]) -> float:
    """(max − min) / min of positive costs; 0 for fewer than two."""
    costs = [c for c in costs if c and c > 0]
    return (max(costs) - min(costs)) / min(costs) if len(costs) > 1 else 0.0


def _baseline_lines(fig: Figure, group: TrainGroup) -> None:
    """Chance and the pixel baseline as horizontal lines across an accuracy chart."""
    for row in group.baselines:
        mean = row.metrics["balanced_accuracy"].mean
        if mean is None:
            continue
        grey, dash = baseline_style(row.model)
        fig.add_hline(r(mean), {"color": grey, "dash": dash, "width": 1.5}, label(f"{row.model} {mean:.3f}"), grey)


def _accuracy_points(fig: Figure, rows: list[LeaderRow], costs: list[float], name_suffix: str = "",
                     symbol: str = "circle", legendgroup: str | None = None) -> None:
    for row, cost in zip(rows, costs):
        acc = row.metrics["balanced_accuracy"]
        fig.add_trace(scatter(
            x=[r(cost)], y=[r(acc.mean)], name=label(row.model) + name_suffix, mode="markers",
            marker={"size": 11, "color": model_color(row.model), "symbol": symbol}, legendgroup=legendgroup,
            error_y=_error_bars(row, "balanced_accuracy"),
            hovertemplate=(f"{label(row.model)}{name_suffix}<br>%{{x}}<br>balanced acc. %{{y:.3f}} "
                           f"(n={acc.n} seeds)<extra></extra>"),
        ))


def _pareto_trace(fig: Figure, points: Iterable[tuple[float, float]], name: str = "Pareto front") -> None:
    front = pareto_front(points)
    if len(front) > 1:
        fig.add_trace(scatter(
            x=[r(c) for c, _ in front], y=[r(s) for _, s in front], name=name, mode="lines",
            line={"dash": "dot", "color": "#888", "shape": "hv"}, hoverinfo="skip",
        ))


ACC_AXIS = "balanced acc. (seed mean, 95% CI)"  # short enough for a 390 px chart


def accuracy_vs_cost(group: TrainGroup, cost: str) -> Figure:
    """Balanced accuracy (across-seed mean with its interval) against GMACs or parameters, with
    chance and the pixel baseline as lines. The Pareto front and a log axis only where the costs
    spread by more than SPREAD_FOR_A_FRONT: over a few percent a front ranks noise."""
    axis, short = COSTS[cost]
    rows = [row for row in group.rows
            if getattr(row, cost) is not None and row.metrics["balanced_accuracy"].mean is not None]
    costs = [getattr(row, cost) for row in rows]
    spread = cost_spread(costs) > SPREAD_FOR_A_FRONT
    fig = Figure()
    _accuracy_points(fig, rows, costs)
    if spread:
        _pareto_trace(fig, zip(costs, (row.metrics["balanced_accuracy"].mean for row in rows)))
    _baseline_lines(fig, group)
    scale = f" at {group.image_size} px, {group.scale} scale" if group.image_size else ""
    title = f"Balanced accuracy vs {short}{scale}: {label(group.suite)} on {label(group.machine)}"
    fig.update_layout(title=_titled(title, group.synthetic),
                      xaxis={"title": _text(axis + (" (log)" if spread else "")), "type": "log" if spread else "linear"},
                      yaxis={"title": _text(ACC_AXIS)})
    return fig


def accuracy_vs_latency(group: TrainGroup) -> Figure:
    """Balanced accuracy against batch-1 latency (on the GPU where there is one), per profiling machine."""
    symbols = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star", "hexagon")
    fig = Figure()
    for m, machine in enumerate(group.latency_machines):
        rows = [row for row in group.rows if row.latency_p50_ms and row.latency_p50_ms[m] is not None
                and row.metrics["balanced_accuracy"].mean is not None]
        _accuracy_points(fig, rows, [row.latency_p50_ms[m] for row in rows], f" · {label(machine)}",
                         symbols[m % len(symbols)], legendgroup=machine)
        _pareto_trace(fig, ((row.latency_p50_ms[m], row.metrics["balanced_accuracy"].mean) for row in rows),
                      f"Pareto front · {label(machine)}")
    _baseline_lines(fig, group)
    scale = f" at {group.image_size} px" if group.image_size else ""
    title = f"Balanced accuracy vs latency per machine{scale}: {label(group.suite)}"
    fig.update_layout(title=_titled(title, group.synthetic), yaxis={"title": _text(ACC_AXIS)},
                      xaxis={"title": _text("latency at batch 1, p50 (ms, log; GPU where present)"), "type": "log"})
    return fig


def latency_columns(suite: PerfSuite) -> Figure:
    """p50 latency at batch 1 per model, one bar trace (hardware column) per machine, device,
    runtime and dtype, at the most threads measured."""
    columns: dict[str, dict[str, tuple[float, float]]] = {}
    for section in suite.machines:
        for prof in section.profiles:
            most = max((row.threads for row in prof.latency if row.device == "cpu"), default=None)
            for row in prof.latency:
                if row.batch_size == 1 and row.image_size == prof.image_size and (row.device != "cpu" or row.threads == most):
                    runtime = "" if row.runtime == "torch" else f" {row.runtime_label}"
                    name = f"{section.machine} · {row.device}{runtime} {row.dtype}"
                    columns.setdefault(name, {})[prof.model] = (row.p50_ms, row.p90_ms)
    models = sorted({m for col in columns.values() for m in col})
    fig = Figure()
    for name, values in sorted(columns.items()):
        xs = [m for m in models if m in values]
        fig.add_trace(bar(
            x=[label(m) for m in xs], y=[r(values[m][0]) for m in xs], name=label(name),
            error_y={"type": "data", "symmetric": False, "array": [r(values[m][1] - values[m][0]) for m in xs],
                     "arrayminus": [0] * len(xs)},
            hovertemplate=f"{label(name)}<br>%{{x}}: p50 %{{y}} ms<extra></extra>",
        ))
    fig.update_layout(
        title=_text(f"Latency per image at batch 1: {label(suite.suite)} suite"), showlegend=True,
        # no x title: the rotated model names are the axis, and a title there runs into the legend
        barmode="group",
        # bars on a linear axis: a bar's length is its value
        yaxis={"title": _text("p50 latency (ms), whisker to p90"), "rangemode": "tozero"},
    )
    return fig


def resolution_sweep(section: PerfMachine) -> Figure:
    """p50 latency against token count, one line per model (log-log)."""
    combos = {(pt.device, pt.dtype) for prof in section.profiles for pt in prof.sweep}
    fig = Figure()
    for prof in section.profiles:
        for device, dtype in sorted({(pt.device, pt.dtype) for pt in prof.sweep}):
            pts = [pt for pt in prof.sweep if (pt.device, pt.dtype) == (device, dtype) and pt.p50_ms is not None
                   and pt.tokens is not None]
            name = prof.model if len(combos) == 1 else f"{prof.model} ({device} {dtype})"
            fig.add_trace(scatter(
                x=[pt.tokens for pt in pts], y=[r(pt.p50_ms) for pt in pts], name=label(name), mode="lines+markers",
                text=[f"{pt.image_size} px" for pt in pts],
                hovertemplate=f"{label(name)}<br>%{{text}}, %{{x}} tokens: %{{y}} ms<extra></extra>",
            ))
    fig.update_layout(
        title=_text(f"Latency vs token count on {label(section.machine)}"), showlegend=True,
        xaxis={"title": _text("tokens at the first stage (log)"), "type": "log"},
        yaxis={"title": _text("p50 latency (ms, log)"), "type": "log"},
    )
    return fig


def attention_scaling(bench: AttentionBench) -> Figure:
    """Time per attention call against N, one line per module; the legend gives the fitted exponent."""
    fig = Figure()
    for module in bench.modules:
        ok = [pt for pt in module.points if pt.status == "ok" and pt.p50_ms is not None]
        slope = f" (N^{module.slope:.2f})" if module.slope is not None else ""
        fig.add_trace(scatter(
            x=[pt.tokens for pt in ok], y=[r(pt.p50_ms) for pt in ok], name=label(module.name) + slope,
            mode="lines+markers", hovertemplate=f"{label(module.name)}<br>N=%{{x}}: %{{y}} ms<extra></extra>",
        ))
    fig.update_layout(
        title=_text(f"Attention time vs sequence length on {label(bench.machine)}"), showlegend=True,
        xaxis={"title": _text("tokens N (log)"), "type": "log"},
        yaxis={"title": _text("p50 forward + backward time (ms, log)"), "type": "log"},
    )
    return fig


def training_curves(row: LeaderRow, synthetic: bool) -> Figure:
    """Train/val loss and validation balanced accuracy per epoch, one colour per seed."""
    fig = subplots(("Loss", "Validation balanced accuracy"))
    for i, curve in enumerate(row.curves):
        color = COLORS[i % len(COLORS)]  # seeds of one model, not models: the model colour map does not apply
        group = f"seed {curve.seed}"
        series = (
            ("train loss", curve.train_loss, 1, "solid"),
            ("val loss", curve.val_loss, 1, "dash"),
            ("val balanced acc.", curve.val_balanced_accuracy, 2, "solid"),
        )
        for j, (name, ys, col, dash) in enumerate(series):
            fig.add_trace(scatter(
                x=[r(e) for e in curve.epoch], y=[r(y) for y in ys], name=f"{name}, {group}", legendgroup=group,
                mode="lines", line={"color": color, "dash": dash}, showlegend=True,
            ), row=1, col=col)
    fig.update_layout(
        title=_titled(f"Training curves: {label(row.model)}", synthetic), margin={"t": 90},
        legend={"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0},
    )
    fig.update_xaxes(title_text="epoch")
    return fig


def confusion_matrix(row: LeaderRow, class_names: tuple[str, ...], synthetic: bool) -> Figure:
    """Counts summed over seeds; colour is the share of each true class (row-normalised)."""
    size = len(row.confusion)
    names = [label(n) for n in class_names] if len(class_names) == size else [str(i) for i in range(size)]
    shares = [[r(c / sum(counts), 3) if sum(counts) else 0.0 for c in counts] for counts in row.confusion]
    fig = Figure([heatmap(
        z=shares, x=names, y=names, text=[list(counts) for counts in row.confusion], texttemplate="%{text}",
        colorscale=BLUES, zmin=0, zmax=1, colorbar={"title": _text("share of<br>true class")},
        hovertemplate="true %{y}<br>predicted %{x}<br>%{text} images (%{z:.1%})<extra></extra>",
    )])
    seeds = f"{row.n_seeds} seed{'s' if row.n_seeds != 1 else ''}"
    fig.update_layout(
        title=_titled(f"Confusion matrix: {label(row.model)}, summed over {seeds}", synthetic),
        xaxis={"title": _text("predicted"), "tickangle": -45}, yaxis={"title": _text("true"), "autorange": "reversed"},
    )
    return fig


def build_charts(ctx: SiteContext) -> dict[str, str]:
    """Every chart the context names, as ``{div id: HTML snippet}``."""
    charts: dict[str, str] = {}

    def add(div_id: str | None, make, height: int = HEIGHT) -> None:  # noqa: ANN001 - a figure factory
        if div_id is None:
            return
        if div_id in charts:
            raise ValueError(f"two charts share the id {div_id!r}; rename one of the models or machines")
        charts[div_id] = to_div(make(), div_id, height)

    for group in ctx.train_groups:
        add(group.acc_gmacs_chart, lambda: accuracy_vs_cost(group, "gmacs"))
        add(group.acc_params_chart, lambda: accuracy_vs_cost(group, "params"))
        add(group.acc_latency_chart if group.latency_machines else None, lambda: accuracy_vs_latency(group))
        add(group.metrics_chart, lambda: metric_bars(group), 480)
        add(group.per_class_chart, lambda: per_class_heatmap(group), 120 + 36 * len(group.rows) + 120)
        add(group.calibration_chart, lambda: calibration(group), 480)
        for row in group.rows + group.baselines:
            add(row.curves_chart if row.curves else None, lambda: training_curves(row, group.synthetic), 460)
            add(row.confusion_chart if row.confusion else None,
                lambda: confusion_matrix(row, group.class_names, group.synthetic), 560)
    for suite in ctx.perf_suites:
        add(suite.latency_chart, lambda: latency_columns(suite))
        for section in suite.machines:
            add(section.sweep_chart, lambda: resolution_sweep(section))
    for bench in ctx.attention:
        add(bench.chart, lambda: attention_scaling(bench))
    for dataset in ctx.datasets:
        add(ctx.class_chart.get(dataset.name), lambda: class_distribution(dataset))
    for explained in ctx.explain:
        add(explained.chart, lambda: faithfulness(explained), 480)
    for studied in ctx.robustness:
        for severity, chart in studied.heatmap_charts:
            add(chart, lambda: drop_heatmap(studied, severity), 200 + 32 * len(studied.rows) + 110)
        add(studied.severity_chart, lambda: accuracy_by_severity(studied), 460)
    log.info("built %d charts", len(charts))
    return charts
