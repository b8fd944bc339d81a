"""How every chart looks and how it becomes HTML: palette, template, rounding, escaping, the snippet.

Charts are plain plotly.js JSON (``bench.site.figure``); ``to_div`` turns one into a
``<div>`` and an inline ``Plotly.newPlot`` call with sorted keys and rounded numbers, so
the same context always gives the same bytes. plotly.js itself is not embedded; the
theme loads the site's copy on the pages that list it.
"""

from __future__ import annotations

import contextlib
import html
import json
import math
import re
from typing import Any, Iterable, Iterator

import plotly.io as pio
from plotly.colors import get_colorscale

from bench.site.context import LeaderRow
from bench.site.figure import Figure

HEIGHT = 440
SIGNIFICANT = 5
COLORS = ("#3f51b5", "#e6550d", "#31a354", "#756bb1", "#dd1c77", "#17becf", "#8c6d31", "#bcbd22", "#9e0142", "#2b8cbe")
# One colour per model in every chart: the registry's models in a fixed order, any other
# model (a timm contender) by a stable hash of its name. Baselines are greys, each with its dash.
MODEL_COLORS = dict(zip(("resnet50", "vit", "pyramid_softmax", "pyramid_linformer", "pyramid_performer",
                         "pyramid_fastformer", "pyramid_xca", "pyramid_xca_nolpi", "pyramid_swin"), COLORS))
BASELINE_STYLES = {"pixel_logreg": ("#555555", "dash"), "chance_uniform": ("#999999", "dot"),
                   "chance_majority": ("#bbbbbb", "dashdot")}
OTHER_GREY = ("#777777", "longdash")
PLOTLY_CONFIG = {"responsive": True, "displaylogo": False}
# A small explicit template: plotly's default embeds ~8 KB of styling into every chart.
TEMPLATE = {"layout": {
    "colorway": list(COLORS),
    "font": {"size": 13},
    "paper_bgcolor": "white",
    "plot_bgcolor": "white",
    "hovermode": "closest",
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    # below the plot, so that on a phone the plot keeps the width
    "legend": {"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},
    "xaxis": {"gridcolor": "#e5e5e5", "zeroline": False, "linecolor": "#999", "automargin": True},
    "yaxis": {"gridcolor": "#e5e5e5", "zeroline": False, "linecolor": "#999", "automargin": True},
}}


BLUES = get_colorscale("Blues")  # spelled out, as plotly's checks would spell it

def r(x: float | None, digits: int = SIGNIFICANT) -> float | None:
    """``x`` rounded to significant digits, so float noise never changes the page bytes."""
    if x is None or x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))


def model_color(name: str) -> str:
    """The colour of a model in every chart (a baseline's grey for a baseline)."""
    if name in MODEL_COLORS:
        return MODEL_COLORS[name]
    if name in BASELINE_STYLES:
        return BASELINE_STYLES[name][0]
    return COLORS[sum(name.encode()) % len(COLORS)]


def baseline_style(name: str) -> tuple[str, str]:
    """(grey, dash) of a baseline's line."""
    return BASELINE_STYLES.get(name, OTHER_GREY)


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


TITLE_LINE = 34  # characters a title line holds in a 390 px chart; longer lines are cut off at both ends


def _wrapped(text: str, width: int = TITLE_LINE) -> str:
    """``text`` broken at spaces into lines of at most ``width`` characters (a longer word stays whole)."""
    lines: list[str] = []
    for word in text.replace(" px", "\u00a0px").split(" "):  # a size stays with its unit
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


def _titled(text: str, synthetic: bool) -> dict[str, Any]:
    """A chart title, "(synthetic data)" added where it applies. A long one breaks after its first
    ": ", the rest (suite, machine) in smaller type below, and each part is wrapped to TITLE_LINE."""
    full = f"{text} (synthetic data)" if synthetic else text
    if len(full) <= TITLE_LINE:
        return _text(full)
    wrapped = (_wrapped(full) if ": " not in text else
               "{}<br><sup>{}</sup>".format(*(_wrapped(part, width) for part, width in
                                              zip(full.split(": ", 1), (TITLE_LINE, 2 * TITLE_LINE)))))
    # above the plot area, pushing the top margin as far as its lines need
    return {"text": wrapped, "automargin": True, "yref": "paper", "y": 1, "yanchor": "bottom"}


def pareto_front(points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not beaten by another with lower-or-equal cost and higher-or-equal score, by cost."""
    front: list[tuple[float, float]] = []
    for cost, score in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or score > front[-1][1]:
            front.append((cost, score))
    return front


def _error_bars(row: LeaderRow, metric: str) -> dict:
    """Asymmetric error bars from the row's interval for ``metric`` (none when it has none)."""
    mean, interval = row.metrics[metric].mean, row.intervals.get(metric)
    if mean is None or interval is None:
        return {"visible": False}
    return {"type": "data", "symmetric": False, "visible": True,
            "array": [r(max(interval.hi - mean, 0.0))], "arrayminus": [r(max(mean - interval.lo, 0.0))]}
