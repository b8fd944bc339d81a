"""Plotly charts as HTML snippets, byte-stable so that the generated site can be diffed.

Each chart gets the deterministic div id chosen in the context, numbers are rounded
before they reach plotly, and the JSON engine is pinned: the same context always gives
the same bytes. plotly.js itself is not embedded; the theme loads the site's copy.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import math
import re
from typing import Any, Iterable, Iterator

import plotly.io as pio
from plotly.colors import get_colorscale

from bench.site.figure import Figure, bar, heatmap, scatter, subplots
from bench.site.context import (
    AttentionBench, DatasetInfo, LeaderRow, PerfMachine, PerfSuite, SiteContext, TrainGroup,
)

log = logging.getLogger(__name__)

HEIGHT = 440
SIGNIFICANT = 5
COLORS = ("#3f51b5", "#e6550d", "#31a354", "#756bb1", "#dd1c77", "#17becf", "#8c6d31", "#636363", "#bcbd22", "#9e0142")
PLOTLY_CONFIG = {"responsive": True, "displaylogo": False}
# A small explicit template: plotly's default embeds ~8 KB of styling into every chart.
TEMPLATE = {"layout": {
    "colorway": list(COLORS),
    "font": {"size": 13},
    "paper_bgcolor": "white",
    "plot_bgcolor": "white",
    "hovermode": "closest",
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    "xaxis": {"gridcolor": "#e5e5e5", "zeroline": False, "linecolor": "#999", "automargin": True},
    "yaxis": {"gridcolor": "#e5e5e5", "zeroline": False, "linecolor": "#999", "automargin": True},
}}


BLUES = get_colorscale("Blues")  # spelled out, as plotly's checks would spell it

def r(x: float | None, digits: int = SIGNIFICANT) -> float | None:
    """``x`` rounded to significant digits, so float noise never changes the page bytes."""
    if x is None or x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))


def label(text: str) -> str:
    """A data string as plotly text: plotly renders a subset of HTML, so escape it."""
    return html.escape(text, quote=False)


# A JSON string literal (kept as is) or a run of whitespace (plotly's padding).
_PADDING = re.compile(r'("(?:[^"\\]|\\.)*")|\s{2,}')


@contextlib.contextmanager
def _json_engine() -> Iterator[None]:
    # "auto" would switch to orjson when installed and change the number formatting.
    config = pio.json.config
    previous, config.default_engine = config.default_engine, "json"
    try:
        yield
    finally:
        config.default_engine = previous


def to_div(fig: Figure, div_id: str, height: int = HEIGHT) -> str:
    """The figure as a ``<div>`` + inline script that expects ``Plotly`` on the page."""
    fig.update_layout(template=TEMPLATE, height=height)
    # keys sorted: the bytes depend only on the figure's content
    canonical = json.loads(json.dumps(fig.to_dict(), sort_keys=True))
    with _json_engine():
        snippet = pio.to_html(
            canonical, validate=False, config=PLOTLY_CONFIG, include_plotlyjs=False, full_html=False,
            div_id=div_id, default_width="100%", default_height=f"{height}px",
        )
    # plotly pads its one-line snippet with runs of spaces; drop them outside quoted strings.
    return _PADDING.sub(lambda m: m.group(1) or " ", snippet).strip()


def _text(text: str) -> dict[str, str]:
    """A title in plotly.js's own form (its bare-string shorthand is gone in plotly.js 3)."""
    return {"text": text}


def _titled(text: str, synthetic: bool) -> dict[str, str]:
    return _text(f"{text} (synthetic data)" if synthetic else text)


def pareto_front(points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not beaten by another with lower-or-equal cost and higher-or-equal score, by cost."""
    front: list[tuple[float, float]] = []
    for cost, score in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or score > front[-1][1]:
            front.append((cost, score))
    return front


# cost attribute of a leaderboard row → (axis title, short name for the chart title)
COSTS = {"gmacs": ("GMACs per image (log)", "GMACs"),
         "params": ("parameters (log)", "parameters")}
METRIC_LABELS = {"top1": "top-1 accuracy", "top5": "top-5 accuracy", "balanced_accuracy": "balanced accuracy",
                 "macro_auc": "macro AUC", "cohen_kappa": "Cohen's κ", "ece": "ECE"}


def _error_bars(row: LeaderRow, metric: str) -> dict:
    """Asymmetric error bars from the row's interval for ``metric`` (none when it has none)."""
    mean, interval = row.metrics[metric].mean, row.intervals.get(metric)
    if mean is None or interval is None:
        return {"visible": False}
    return {"type": "data", "symmetric": False, "visible": True,
            "array": [r(max(interval.hi - mean, 0.0))], "arrayminus": [r(max(mean - interval.lo, 0.0))]}


def _accuracy_points(fig: Figure, rows: list[LeaderRow], costs: list[float], name_suffix: str = "",
                     symbol: str = "circle", legendgroup: str | None = None) -> None:
    for i, (row, cost) in enumerate(zip(rows, costs)):
        acc = row.metrics["balanced_accuracy"]
        fig.add_trace(scatter(
            x=[r(cost)], y=[r(acc.mean)], name=label(row.model) + name_suffix, mode="markers",
            marker={"size": 11, "color": COLORS[i % len(COLORS)], "symbol": symbol}, legendgroup=legendgroup,
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


ACC_AXIS = "balanced accuracy (mean over seeds, 95% CI)"


def accuracy_vs_cost(group: TrainGroup, cost: str) -> Figure:
    """Balanced accuracy (across-seed mean with its interval) against GMACs or parameters, with the Pareto front."""
    axis, short = COSTS[cost]
    rows = [row for row in group.rows
            if getattr(row, cost) is not None and row.metrics["balanced_accuracy"].mean is not None]
    fig = Figure()
    _accuracy_points(fig, rows, [getattr(row, cost) for row in rows])
    _pareto_trace(fig, ((getattr(row, cost), row.metrics["balanced_accuracy"].mean) for row in rows))
    title = f"Balanced accuracy vs {short}: {label(group.suite)} on {label(group.machine)}"
    fig.update_layout(title=_titled(title, group.synthetic), xaxis={"title": _text(axis), "type": "log"},
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
    title = f"Balanced accuracy vs latency per machine: {label(group.suite)}"
    fig.update_layout(title=_titled(title, group.synthetic), yaxis={"title": _text(ACC_AXIS)},
                      xaxis={"title": _text("latency at batch 1, p50 (ms, log; GPU where present)"), "type": "log"})
    return fig


def metric_bars(group: TrainGroup) -> Figure:
    """Grouped bars: every model's test metrics with their intervals."""
    metrics = ("top1", "top5", "balanced_accuracy", "macro_auc", "cohen_kappa")
    fig = Figure()
    for i, row in enumerate(group.rows + group.baselines):
        shown = [m for m in metrics if row.metrics[m].mean is not None]
        bars = [_error_bars(row, m) for m in shown]
        fig.add_trace(bar(
            x=[METRIC_LABELS[m] for m in shown], y=[r(row.metrics[m].mean) for m in shown],
            name=label(row.model) + (" (baseline)" if row.baseline else ""),
            marker={"color": COLORS[i % len(COLORS)], "opacity": 0.55 if row.baseline else 1.0},
            error_y={"type": "data", "symmetric": False, "visible": True,
                     "array": [b.get("array", [0])[0] for b in bars],
                     "arrayminus": [b.get("arrayminus", [0])[0] for b in bars]},
            hovertemplate=f"{label(row.model)}<br>%{{x}}: %{{y:.3f}}<extra></extra>",
        ))
    title = f"Test metrics with 95% intervals: {label(group.suite)} on {label(group.machine)}"
    fig.update_layout(title=_titled(title, group.synthetic), barmode="group",
                      xaxis={"title": _text("metric")},
                      yaxis={"title": _text("score (higher is better)"), "range": [0, 1]})
    return fig


def per_class_heatmap(group: TrainGroup) -> Figure:
    """Sensitivity and specificity per class (columns) and model (rows), means over seeds."""
    rows = [row for row in group.rows if row.per_class]
    classes = list(group.class_names) or sorted({c.name for row in rows for c in row.per_class})
    fig = subplots(("Sensitivity", "Specificity"), spacing=0.12)
    for col, attr in ((1, "sensitivity"), (2, "specificity")):
        z = []
        for row in rows:
            by_name = {c.name: getattr(c, attr).mean for c in row.per_class}
            z.append([r(by_name.get(c), 3) for c in classes])
        fig.add_trace(heatmap(
            z=z, x=[label(c) for c in classes], y=[label(row.model) for row in rows], zmin=0, zmax=1,
            colorscale="Viridis", showscale=col == 2, texttemplate="%{z:.2f}",
            colorbar={"title": _text("rate")},
            hovertemplate=f"%{{y}}<br>%{{x}}<br>{attr} %{{z:.3f}}<extra></extra>",
        ), row=1, col=col)
    fig.update_xaxes(tickangle=-45)
    fig.update_yaxes(autorange="reversed")
    title = f"Per-class sensitivity and specificity: {label(group.suite)} on {label(group.machine)}"
    fig.update_layout(title=_titled(title, group.synthetic))
    return fig


def calibration(group: TrainGroup) -> Figure:
    """ECE per model (with its interval) and the reliability diagram, seeds pooled."""
    fig = subplots(("ECE (lower is better)", "Reliability diagram"))
    rows = [row for row in group.rows if row.metrics["ece"].mean is not None]
    for i, row in enumerate(rows):
        bars = _error_bars(row, "ece")
        fig.add_trace(bar(
            x=[label(row.model)], y=[r(row.metrics["ece"].mean)], name=label(row.model), legendgroup=row.model,
            marker={"color": COLORS[i % len(COLORS)]}, showlegend=False, error_y=bars,
            hovertemplate=f"{label(row.model)}<br>ECE %{{y:.3f}}<extra></extra>",
        ), row=1, col=1)
        if row.reliability:
            fig.add_trace(scatter(
                x=[r(b.confidence) for b in row.reliability], y=[r(b.accuracy) for b in row.reliability],
                name=label(row.model), legendgroup=row.model, mode="lines+markers",
                line={"color": COLORS[i % len(COLORS)]}, text=[str(b.count) for b in row.reliability],
                hovertemplate=f"{label(row.model)}<br>confidence %{{x:.2f}}: accuracy %{{y:.2f}} "
                              f"(%{{text}} images)<extra></extra>",
            ), row=1, col=2)
    fig.add_trace(scatter(
        x=[0, 1], y=[0, 1], name="perfect calibration", mode="lines",
                             line={"dash": "dot", "color": "#888"}, hoverinfo="skip"), row=1, col=2)
    fig.update_xaxes(title_text="model", tickangle=-45, row=1, col=1)
    fig.update_yaxes(title_text="ECE", row=1, col=1)
    fig.update_xaxes(title_text="mean confidence in bin", range=[0, 1], row=1, col=2)
    fig.update_yaxes(title_text="accuracy in bin", range=[0, 1], row=1, col=2)
    title = f"Calibration: {label(group.suite)} on {label(group.machine)}"
    fig.update_layout(title=_titled(title, group.synthetic))
    return fig


def class_distribution(dataset: DatasetInfo) -> Figure:
    """Images per class, stacked by split."""
    fig = Figure()
    for s, split in enumerate(dataset.splits):
        fig.add_trace(bar(
            x=[label(c.name) for c in dataset.classes], y=[c.counts[s] or 0 for c in dataset.classes],
            name=label(split), marker={"color": COLORS[s % len(COLORS)]},
            hovertemplate=f"{label(split)}<br>%{{x}}: %{{y}} images<extra></extra>",
        ))
    fig.update_layout(title=_titled(f"Class distribution: {label(dataset.name)}", dataset.synthetic),
                      barmode="stack", xaxis={"title": _text("class"), "tickangle": -45},
                      yaxis={"title": _text("images")})
    return fig


def latency_columns(suite: PerfSuite) -> Figure:
    """p50 latency at batch 1 per model, one bar trace (hardware column) per machine, device and dtype."""
    columns: dict[str, dict[str, tuple[float, float]]] = {}
    for section in suite.machines:
        for prof in section.profiles:
            for row in prof.latency:
                if row.batch_size == 1 and row.image_size == prof.image_size:
                    name = f"{section.machine} · {row.device} {row.dtype}"
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
        barmode="group", xaxis={"title": _text("model")},
        yaxis={"title": _text("p50 latency (ms), whisker to p90"), "type": "log"},
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
        color = COLORS[i % len(COLORS)]
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
            add(row.confusion_chart, lambda: confusion_matrix(row, group.class_names, group.synthetic), 560)
    for suite in ctx.perf_suites:
        add(suite.latency_chart, lambda: latency_columns(suite))
        for section in suite.machines:
            add(section.sweep_chart, lambda: resolution_sweep(section))
    for bench in ctx.attention:
        add(bench.chart, lambda: attention_scaling(bench))
    for dataset in ctx.datasets:
        add(ctx.class_chart.get(dataset.name), lambda: class_distribution(dataset))
    log.info("built %d charts", len(charts))
    return charts
