"""Build the site with ``mkdocs build --strict`` and open it from file:// in headless Chromium.

The site must work offline: charts render, search answers, the console stays clean, and
no request leaves the machine. It builds the committed site_src/ when there is one, and
the golden results rendered into a temporary folder otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import pytest
import yaml

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory, paths: SimpleNamespace,
               render: Callable[..., list[Path]]) -> Path:
    """The built HTML site (its folder), from site_src/ or from the golden results."""
    tmp = tmp_path_factory.mktemp("browser")
    docs = paths.repo / "site_src"
    if not (docs / "index.md").is_file():
        docs = tmp / "docs"
        render(docs)
    config = yaml.safe_load((paths.repo / "mkdocs.yml").read_text())
    config["docs_dir"] = str(docs)
    config["site_dir"] = str(tmp / "site")
    config["theme"]["custom_dir"] = str(paths.repo / config["theme"]["custom_dir"])
    config_path = tmp / "mkdocs.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config_path)],
        capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=300,
    )
    output = build.stdout + build.stderr
    assert build.returncode == 0, output
    assert "WARNING" not in output, output
    return tmp / "site"


def test_site_works_offline_from_the_file_system(built_site: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    errors: list[str] = []
    remote: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda req: None if req.url.startswith(("file:", "data:")) else remote.append(req.url))
            page.goto((built_site / "index.html").as_uri())
            page.wait_for_selector(".js-plotly-plot .main-svg", timeout=15_000)
            assert page.locator(".js-plotly-plot .main-svg").count() >= 1
            # Search runs its worker in an iframe from file:// (the theme's shim), offline.
            page.fill("input.md-search__input", "primer", timeout=10_000)
            page.wait_for_selector(".md-search-result__item", timeout=10_000)
            page.goto((built_site / "performance.html").as_uri())
            page.wait_for_selector(".js-plotly-plot .main-svg", timeout=15_000)
        finally:
            browser.close()
    assert errors == []
    assert remote == []
