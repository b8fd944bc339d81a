"""Fixtures of the site tests: the golden results, one rendering of them, and page helpers.

Helpers are handed out as fixtures rather than imported, so the tests do not depend on
how pytest names test modules.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import pytest

from bench.site.render import render_site

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(scope="session")
def paths() -> SimpleNamespace:
    """Where the repository keeps what the site is made from."""
    return SimpleNamespace(repo=REPO, fixtures=FIXTURES, results=FIXTURES / "results", bad=FIXTURES / "bad",
                           artifacts=FIXTURES / "artifacts", templates=REPO / "templates")


@pytest.fixture(scope="session")
def render(paths: SimpleNamespace) -> Callable[..., list[Path]]:
    """``render(out_dir, results=golden, artifacts=golden)`` with the repository's templates."""
    def _render(out_dir: Path, results: Path = paths.results, artifacts: Path = paths.artifacts) -> list[Path]:
        return render_site(results, artifacts, paths.templates, out_dir)
    return _render


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory, render: Callable[..., list[Path]]) -> tuple[Path, list[Path]]:
    """The golden results rendered once: (docs folder, files render_site returned). Read only."""
    out = tmp_path_factory.mktemp("site") / "docs"
    return out, render(out)


@pytest.fixture()
def results_copy(tmp_path: Path, paths: SimpleNamespace) -> Path:
    """A writable copy of the golden results, for tests that alter a file."""
    copy = tmp_path / "results"
    shutil.copytree(paths.results, copy)
    return copy


def _chart_data(page: str, div_id: str) -> list[dict]:
    call = re.search(rf'Plotly\.newPlot\(\s*"{re.escape(div_id)}",\s*', page)
    assert call, f"no chart {div_id!r} on the page"
    data, _ = json.JSONDecoder().raw_decode(page, call.end())
    return data


@pytest.fixture(scope="session")
def chart_data() -> Callable[[str, str], list[dict]]:
    """``chart_data(page_text, div_id)``: the traces handed to ``Plotly.newPlot`` for that chart."""
    return _chart_data


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def tree_bytes() -> Callable[[Path], dict[str, bytes]]:
    """``tree_bytes(root)``: every file under root (dotfiles included) by relative path."""
    return _tree_bytes
