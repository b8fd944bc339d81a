"""Strings from result files are text on every page, whatever they carry.

The golden results are copied with a payload of markup, script and Markdown in every
free-text field the site can show (commands, git state, CPU and GPU names, library
versions, devices, skipped files and their reasons, recipe values, a failed run's error),
rendered, built with mkdocs and opened page by page in Chromium. A dialog, a script that
ran (it would set ``window.__medbench_pwned``), an element that came from data, a
``javascript:`` link or an event-handler attribute inside the article fails the test.
Identifiers (models, machines, suites, datasets, classes) cannot carry markup at all: the
schema refuses them (tests/site/test_site_render.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import pytest

from ._built_site import mkdocs_build, site_pages

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PAYLOAD = ('<script>window.__medbench_pwned=1</script><img src=x onerror="window.__medbench_pwned=1">'
           '<b id="medbench-pwned">x</b>[link](javascript:window.__medbench_pwned=1)|*x*`y`'
           '{: onclick="window.__medbench_pwned=1"}"><svg onload="window.__medbench_pwned=1"></svg>'
           "$\\href{javascript:window.__medbench_pwned=1}{m}$ ]]>")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# What a page shows that came from data and should not be there.
FOUND = """() => ({
  ran: window.__medbench_pwned === 1,
  element: document.getElementById("medbench-pwned") !== null,
  links: Array.from(document.querySelectorAll("a[href]")).filter(a => /^\\s*javascript:/i.test(a.getAttribute("href")))
    .map(a => a.outerHTML.slice(0, 80)),
  handlers: Array.from(document.querySelectorAll("article *")).filter(e => Array.from(e.attributes)
    .some(a => /^on/i.test(a.name))).map(e => e.outerHTML.slice(0, 80)),
})"""


def poison(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with PAYLOAD in every free-text field the site may show."""
    payload["command"] = payload["git_sha"] = PAYLOAD
    payload["machine"]["cpu"] = PAYLOAD
    if isinstance(payload["machine"].get("gpu"), dict):
        payload["machine"]["gpu"].update(name=PAYLOAD, driver=PAYLOAD)
    payload["environment"] = {key: PAYLOAD if isinstance(value, str) else value
                              for key, value in payload["environment"].items()}
    if isinstance(payload.get("dataset"), dict):
        payload["dataset"].update(skipped_files=[{"path": PAYLOAD, "reason": PAYLOAD}], skipped_count=1,
                                  kind=PAYLOAD)
    train = (payload.get("config") or {}).get("train")
    if isinstance(train, dict) and "balance" in train:
        train["balance"] = PAYLOAD
    for row in (payload.get("metrics") or {}).get("latency", []):
        row["device"] = PAYLOAD
    return payload


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory: pytest.TempPathFactory, paths: SimpleNamespace,
                 render: Callable[..., list[Path]]) -> Path:
    tmp = tmp_path_factory.mktemp("hostile")
    results = tmp / "results"
    shutil.copytree(paths.results, results)
    for path in sorted(results.rglob("*.json")):
        path.write_text(json.dumps(poison(json.loads(path.read_text())), indent=2, sort_keys=True))
    failed = json.loads((results / "cpu-fixture-2c" / "quick" / "train__pyramid_swin__seed0.json").read_text())
    failed.update(metrics={}, error={"type": PAYLOAD, "message": PAYLOAD, "stage": PAYLOAD}, seed=7)
    (results / "cpu-fixture-2c" / "quick" / "train__pyramid_swin__seed7.json").write_text(json.dumps(failed))
    render(tmp / "docs", results=results)
    return mkdocs_build(paths.repo, tmp / "docs", tmp / "site")


@pytest.fixture(scope="module")
def page(hostile_site: Path) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_no_string_from_a_result_runs_or_becomes_an_element(hostile_site: Path, page: Any) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    problems: dict[str, Any] = {}
    pages = site_pages(hostile_site)
    for path in pages:
        page.goto(path.as_uri(), wait_until="load")
        page.wait_for_timeout(50)  # an onerror/onload handler runs after load
        found = page.evaluate(FOUND)
        if any(found.values()):
            problems[path.relative_to(hostile_site).as_posix()] = found
    text = (hostile_site / "index.html").read_text(encoding="utf-8")
    assert "medbench-pwned" not in text.replace("&quot;medbench-pwned&quot;", "")  # only as escaped text
    assert not dialogs, dialogs
    assert not problems, json.dumps(problems, indent=1)[:3000]
    assert len(pages) > 15  # every page of the golden site, a model page each included
    assert "window.__medbench_pwned" in "".join(p.read_text(encoding="utf-8") for p in pages)  # the payload is shown


def test_the_search_index_holds_the_payload_only_as_text(hostile_site: Path) -> None:
    index = json.loads((hostile_site / "search" / "search_index.json").read_text(encoding="utf-8"))
    for doc in index["docs"]:
        assert "<script>window.__medbench_pwned" not in doc["text"], doc["location"]
        assert "<script>" not in doc["title"] and "<img" not in doc["title"], doc["location"]
