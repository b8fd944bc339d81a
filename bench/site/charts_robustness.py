"""The robustness page's charts: drops from clean per model and shift at each severity, and each
model's balanced accuracy as the shifts grow."""

from __future__ import annotations

from bench.site.chart_style import _text, _titled, label, model_color, r
from bench.site.figure import Figure, heatmap, scatter, subplots
from bench.site.robustness import RobustnessGroup


def drop_heatmap(group: RobustnessGroup) -> Figure:
    """Balanced accuracy under shift minus clean: models (rows) × shifts (columns), one panel per severity."""
    fig = subplots(tuple(f"Severity {s}" for s in group.severities), spacing=0.04)
    lowest = min(c.drop for row in group.rows for c in row.cells)
    for col, severity in enumerate(group.severities, start=1):
        z = [[r(row.cell(k, severity).drop, 3) for k in group.kinds] for row in group.rows]
        fig.add_trace(heatmap(
            z=z, x=[label(k) for k in group.kinds], y=[label(row.model) for row in group.rows],
            zmin=r(min(lowest, -0.01), 3), zmax=0, colorscale="Reds", reversescale=True,
            showscale=col == len(group.severities), texttemplate="%{z:.2f}", colorbar={"title": _text("drop")},
            hovertemplate=f"%{{y}}<br>%{{x}}, severity {severity}<br>drop %{{z:.3f}}<extra></extra>",
        ), row=1, col=col)
    fig.update_xaxes(tickangle=-45, automargin=True)
    fig.update_yaxes(autorange="reversed", automargin=True)
    for col in range(2, len(group.severities) + 1):
        fig.update_yaxes(col=col, showticklabels=False)
    title = f"Balanced accuracy drop under shift: {label(group.suite)} on {label(group.machine)}"
    fig.update_layout(title=_titled(title, group.synthetic))
    return fig


def accuracy_by_severity(group: RobustnessGroup) -> Figure:
    """Each model's balanced accuracy, clean (severity 0) and averaged over the shifts at each severity."""
    fig = Figure()
    xs = [0, *group.severities]
    for row in group.rows:
        ys = [row.clean] + [row.mean_accuracy_at(s) for s in group.severities]
        fig.add_trace(scatter(
            x=xs, y=[r(y, 4) for y in ys], name=label(row.model), mode="lines+markers",
            line={"color": model_color(row.model)}, marker={"color": model_color(row.model)},
            hovertemplate=f"{label(row.model)}<br>severity %{{x}}<br>balanced acc. %{{y:.3f}}<extra></extra>",
        ))
    fig.update_xaxes(title=_text("severity (0: clean; mean over the shifts)"), tickvals=xs)
    fig.update_yaxes(title=_text("balanced accuracy"))
    title = f"Balanced accuracy as the shifts grow: {label(group.suite)} on {label(group.machine)}"
    fig.update_layout(title=_titled(title, group.synthetic))
    return fig
