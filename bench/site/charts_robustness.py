"""The robustness page's charts: drops from clean per model and shift at each severity, and each
model's balanced accuracy as the shifts grow."""

from __future__ import annotations

from bench.site.chart_style import _text, _titled, label, model_color, r
from bench.site.figure import Figure, heatmap, scatter
from bench.site.robustness import RobustnessGroup


def drop_heatmap(group: RobustnessGroup, severity: int) -> Figure:
    """Balanced accuracy under shift minus clean at one severity: models (rows) × shifts (columns).
    One chart per severity, each the column's full width, so that a phone can read it; all share
    one colour scale."""
    fig = Figure()
    lowest = min(c.drop for row in group.rows for c in row.cells)
    z = [[r(row.cell(k, severity).drop, 3) for k in group.kinds] for row in group.rows]
    fig.add_trace(heatmap(
        z=z, x=[label(k) for k in group.kinds], y=[label(row.model) for row in group.rows],
        zmin=r(min(lowest, -0.01), 3), zmax=0, colorscale="Reds", reversescale=True, texttemplate="%{z:.2f}",
        colorbar={"title": _text("drop")},
        hovertemplate=f"%{{y}}<br>%{{x}}, severity {severity}<br>drop %{{z:.3f}}<extra></extra>",
    ))
    fig.update_xaxes(tickangle=-45, automargin=True)
    fig.update_yaxes(autorange="reversed", automargin=True)
    title = f"Drop from clean at severity {severity}: {label(group.suite)} on {label(group.machine)}"
    fig.update_layout(title={**_titled(title, group.synthetic), "pad": {"b": 12}})  # clear of the top row's labels
    return fig


def accuracy_by_severity(group: RobustnessGroup) -> Figure:
    """Each model's balanced accuracy, clean and averaged over the shifts at each severity."""
    fig = Figure()
    xs = [0, *group.severities]
    for row in group.rows:
        ys = [row.clean] + [row.mean_accuracy_at(s) for s in group.severities]
        fig.add_trace(scatter(
            x=xs, y=[r(y, 4) for y in ys], name=label(row.model), mode="lines+markers",
            line={"color": model_color(row.model)}, marker={"color": model_color(row.model)},
            hovertemplate=f"{label(row.model)}<br>severity %{{x}}<br>balanced acc. %{{y:.3f}}<extra></extra>",
        ))
    # the ticks say what each point is, so no axis title has to share the space under the plot with the legend
    fig.update_xaxes(tickvals=xs, ticktext=["clean", *(f"severity {s}" for s in group.severities)])
    fig.update_yaxes(title=_text("balanced accuracy"))
    title = f"Balanced accuracy by severity, mean over the shifts: {label(group.suite)} on {label(group.machine)}"
    fig.update_layout(title=_titled(title, group.synthetic))
    return fig
