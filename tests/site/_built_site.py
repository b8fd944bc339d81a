"""The built HTML site, shared by the browser and link tests.

``built_site`` builds the committed site_src/ (or, in a checkout without one, the golden
results rendered into a temporary folder) with the repository's mkdocs.yml and
``mkdocs build --strict`` into a temporary folder, once per test session, whichever test
module asks first. The repository's mkdocs.yml is loaded as it is, with only docs_dir and
site_dir overridden, so paths in it (custom_dir, hooks, extra files) resolve as they do for
``mkdocs build`` and nothing is written into the repository.

Import the fixture into a test module with ``from ._built_site import built_site``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import pytest

# Built once per session even though each importing module registers its own fixture.
_BUILT: dict[str, Path] = {}

# `mkdocs build --strict` with two options overridden; warnings printed as "WARNING - ...".
_BUILD_SCRIPT = """
import logging, sys
from mkdocs.commands.build import build
from mkdocs.config import load_config
logging.basicConfig(format="%(levelname)s - %(name)s: %(message)s", level=logging.WARNING)
config, docs, site = sys.argv[1:4]
build(load_config(config_file=config, docs_dir=docs, site_dir=site, strict=True))
"""


def site_pages(site: Path) -> list[Path]:
    """Every HTML page of a built site: all *.html except 404.html and those under assets/ or
    search/. Sorted, with index.html first."""
    pages = []
    for path in site.rglob("*.html"):
        rel = path.relative_to(site)
        if rel.parts[0] in ("assets", "search") or rel.as_posix() == "404.html":
            continue
        pages.append(path)
    return sorted(pages, key=lambda p: (p.relative_to(site).as_posix() != "index.html", p.relative_to(site).as_posix()))


def build_site(tmp_path_factory: pytest.TempPathFactory, paths: SimpleNamespace,
               render: Callable[..., list[Path]]) -> Path:
    key = str(tmp_path_factory.getbasetemp())
    if key in _BUILT:
        return _BUILT[key]
    tmp = tmp_path_factory.mktemp("built_site")
    docs = paths.repo / "site_src"
    if not (docs / "index.md").is_file():
        docs = tmp / "docs"
        render(docs)
    _BUILT[key] = mkdocs_build(paths.repo, docs, tmp / "site")
    return _BUILT[key]


def mkdocs_build(repo: Path, docs: Path, site: Path) -> Path:
    """``mkdocs build --strict`` of ``docs`` into ``site`` with the repository's mkdocs.yml; fails on a warning."""
    build = subprocess.run(
        [sys.executable, "-c", _BUILD_SCRIPT, str(repo / "mkdocs.yml"), str(docs), str(site)],
        capture_output=True, text=True, cwd=repo, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    output = build.stdout + build.stderr
    assert build.returncode == 0, f"mkdocs build --strict of {docs} failed:\n{output}"
    assert "WARNING" not in output, f"mkdocs build of {docs} warned:\n{output}"
    assert (site / "index.html").is_file(), f"the build of {docs} wrote no index.html"
    return site


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory, paths: SimpleNamespace,
               render: Callable[..., list[Path]]) -> Path:
    """The built HTML site (its folder), from site_src/ or from the golden results. Read only."""
    return build_site(tmp_path_factory, paths, render)
