"""Charts of the accuracy, explainability and dataset pages: metrics with intervals, per class,
calibration, faithfulness to the lesion masks, class distribution."""

from __future__ import annotations

from bench.site.chart_style import COLORS, _error_bars, _text, _titled, label, model_color, r
from bench.site.context import DatasetInfo, TrainGroup
from bench.site.explain_pages import METHOD_LABELS, ExplainGroup
from bench.site.figure import Figure, bar, heatmap, scatter, subplots

METRIC_LABELS = {"top1": "top-1 accuracy", "top5": "top-5 accuracy", "balanced_accuracy": "balanced accuracy",
                 "macro_auc": "macro AUC", "cohen_kappa": "Cohen's κ", "ece": "ECE"}


def metric_bars(group: TrainGroup) -> Figure:
    """Grouped bars: every model's test metrics with their intervals."""
    metrics = ("top1", "top5", "balanced_accuracy", "macro_auc", "cohen_kappa")
    fig = Figure()
    for row in group.rows + group.baselines:
        shown = [m for m in metrics if row.metrics[m].mean is not None]
        bars = [_error_bars(row, m) for m in shown]
        fig.add_trace(bar(
            x=[METRIC_LABELS[m] for m in shown], y=[r(row.metrics[m].mean) for m in shown],
            name=label(row.model) + (" (baseline)" if row.baseline else ""),
            marker={"color": model_color(row.model), "opacity": 0.55 if row.baseline else 1.0},
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
    fig.update_xaxes(tickangle=-45, automargin=True)
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_yaxes(col=2, showticklabels=False)  # the same models as the left panel: names once, no overlap
    title = f"Per-class sensitivity and specificity: {label(group.suite)} on {label(group.machine)}"
    fig.update_layout(title=_titled(title, group.synthetic))
    return fig


def calibration(group: TrainGroup) -> Figure:
    """ECE per model (with its interval) and the reliability diagram, seeds pooled."""
    fig = subplots(("ECE (lower is better)", "Reliability diagram"))
    rows = [row for row in group.rows if row.metrics["ece"].mean is not None]
    for row in rows:
        bars = _error_bars(row, "ece")
        fig.add_trace(bar(
            x=[label(row.model)], y=[r(row.metrics["ece"].mean)], name=label(row.model), legendgroup=row.model,
            marker={"color": model_color(row.model)}, showlegend=False, error_y=bars,
            hovertemplate=f"{label(row.model)}<br>ECE %{{y:.3f}}<extra></extra>",
        ), row=1, col=1)
        if row.reliability:
            fig.add_trace(scatter(
                x=[r(b.confidence) for b in row.reliability], y=[r(b.accuracy) for b in row.reliability],
                name=label(row.model), legendgroup=row.model, mode="lines+markers",
                line={"color": model_color(row.model)}, text=[str(b.count) for b in row.reliability],
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


def faithfulness(group: ExplainGroup) -> Figure:
    """Pointing game per model, one bar group per method (methods that pass every sanity check
    first; a flagged method is labelled and drawn faint), with 95% CIs. A bar is solid only where
    the pair beats the strongest model-free baseline by the paired test; lines mark that baseline,
    the random point in the head and in the image, and Grad-CAM's ceiling at its grid."""
    fig = Figure()
    for i, method in enumerate(group.methods):
        rows = [row for row in group.rows if row.method == method and row.scores["pointing_game"].value is not None]
        if not rows:
            continue
        flagged = any(row.flagged for row in rows)
        name = METHOD_LABELS.get(method, method) + (" (fails a sanity check)" if flagged else "")
        scores = [row.scores["pointing_game"] for row in rows]
        fig.add_trace(bar(
            x=[label(row.model) for row in rows], y=[r(s.value) for s in scores], name=label(name),
            marker={"color": COLORS[i % len(COLORS)],
                    "opacity": [0.35 if flagged else (1.0 if s.beats else 0.55) for s in scores],
                    "pattern": {"shape": "/" if flagged else ""}},
            error_y={"type": "data", "symmetric": False, "visible": True,
                     "array": [r(s.ci95.hi - s.value) if s.ci95 else 0 for s in scores],
                     "arrayminus": [r(s.value - s.ci95.lo) if s.ci95 else 0 for s in scores]},
            text=["beats the strongest baseline" if s.beats else "not above the strongest baseline" for s in scores],
            hovertemplate=f"{label(name)}<br>%{{x}}: %{{y:.3f}}<br>%{{text}}<extra></extra>",
        ))
    models = [label(m) for m in group.models if any(row.model == m for row in group.rows)]
    lines = []
    strongest = next((row.scores["pointing_game"] for row in group.rows if row.scores["pointing_game"].baseline_stat),
                     None)
    if strongest is not None:
        lines.append((f"strongest model-free baseline ({strongest.baseline})", strongest.baseline_stat.value, "#444"))
    by_label = {b.label: b.scores.get("pointing_game") for b in group.baselines}
    for text, color in (("random point in the head", "#888"), ("random point in the image", "#bbb")):
        if by_label.get(text) is not None:
            lines.append((text, by_label[text].value, color))
    ceiling = next((v for k, v in by_label.items() if k.startswith("perfect map") and v is not None), None)
    if ceiling is not None:
        lines.append(("Grad-CAM ceiling (perfect map at its grid)", ceiling.value, "#2a9d8f"))
    for text, value, color in lines:
        fig.add_trace(scatter(
            x=models, y=[r(value)] * len(models), name=label(text), mode="lines",
            line={"dash": "dot", "color": color}, hovertemplate=f"{label(text)} %{{y:.3f}}<extra></extra>",
        ))
    title = f"Pointing game against the lesion masks: {label(group.suite)} on {label(group.machine)}"
    # no x title: the rotated model names are the axis, and a title there would run into the legend
    fig.update_layout(title=_titled(title, group.synthetic), barmode="group",
                      yaxis={"title": _text("pointing game (95% CI)"), "range": [0, 1]})
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
