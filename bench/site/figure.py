"""A plotly figure as a plain dict, built without plotly.py's objects.

plotly.py checks and copies every property as a figure is built, which made a site of a
few hundred charts take seconds; the figures here are fixed code, so they are written in
plotly.js's own JSON form directly. The tests load each one into ``go.Figure``, which
runs plotly's full checks, so a wrong property still fails there.
"""

from __future__ import annotations

import copy
from typing import Any


def _merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def _expand(props: dict[str, Any]) -> dict[str, Any]:
    """plotly's magic underscores for the few keys used here: ``title_text`` → ``{"title": {"text": …}}``."""
    out: dict[str, Any] = {}
    for key, value in props.items():
        if key == "title_text":
            _merge(out, {"title": {"text": value}})
        else:
            out[key] = value
    return out


def trace(kind: str, **props: Any) -> dict[str, Any]:
    return {"type": kind, **props}


def scatter(**props: Any) -> dict[str, Any]:
    return trace("scatter", **props)


def bar(**props: Any) -> dict[str, Any]:
    return trace("bar", **props)


def heatmap(**props: Any) -> dict[str, Any]:
    return trace("heatmap", **props)


class Figure:
    """Traces and a layout; ``cols`` > 1 lays the axes out side by side like ``make_subplots``."""

    def __init__(self, data: list[dict[str, Any]] | None = None) -> None:
        self.data: list[dict[str, Any]] = list(data or [])
        self.layout: dict[str, Any] = {}
        self.cols = 1

    def add_trace(self, item: dict[str, Any], row: int = 1, col: int = 1) -> None:
        if col > 1:
            item = {**item, "xaxis": f"x{col}", "yaxis": f"y{col}"}
        self.data.append(item)

    def update_layout(self, **props: Any) -> None:
        _merge(self.layout, props)

    def add_hline(self, y: float, line: dict[str, Any], text: str, color: str) -> None:
        """A horizontal reference line across the plot, labelled at its right end."""
        self.layout.setdefault("shapes", []).append(
            {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": y, "y1": y, "line": line})
        self.layout.setdefault("annotations", []).append(
            {"text": text, "xref": "paper", "x": 1, "yref": "y", "y": y, "xanchor": "right", "yanchor": "bottom",
             "showarrow": False, "font": {"size": 11, "color": color}})

    def _axes(self, letter: str, col: int | None) -> list[str]:
        cols = range(1, self.cols + 1) if col is None else [col]
        return [f"{letter}axis" if c == 1 else f"{letter}axis{c}" for c in cols]

    def update_xaxes(self, row: int | None = None, col: int | None = None, **props: Any) -> None:
        for axis in self._axes("x", col):
            _merge(self.layout.setdefault(axis, {}), _expand(props))

    def update_yaxes(self, row: int | None = None, col: int | None = None, **props: Any) -> None:
        for axis in self._axes("y", col):
            _merge(self.layout.setdefault(axis, {}), _expand(props))

    def to_dict(self) -> dict[str, Any]:
        return {"data": copy.deepcopy(self.data), "layout": copy.deepcopy(self.layout)}


def subplots(titles: tuple[str, ...], spacing: float = 0.1) -> Figure:
    """One row of ``len(titles)`` panels, each with its own axes and a title above it."""
    fig = Figure()
    fig.cols = cols = len(titles)
    width = (1.0 - spacing * (cols - 1)) / cols
    annotations = []
    for c in range(1, cols + 1):
        lo = (c - 1) * (width + spacing)
        hi = 1.0 if c == cols else lo + width
        suffix = "" if c == 1 else str(c)
        fig.layout[f"xaxis{suffix}"] = {"domain": [round(lo, 6), round(hi, 6)], "anchor": f"y{suffix}"}
        fig.layout[f"yaxis{suffix}"] = {"domain": [0.0, 1.0], "anchor": f"x{suffix}"}
        annotations.append({"text": titles[c - 1], "x": round((lo + hi) / 2, 6), "y": 1.0, "xref": "paper",
                            "yref": "paper", "xanchor": "center", "yanchor": "bottom", "showarrow": False,
                            "font": {"size": 16}})
    fig.layout["annotations"] = annotations
    return fig
