"""The Try-it page in Chromium, from file:// and over http: browser predictions match PyTorch's.

Every model is chosen in turn, which loads it, and then runs in the page with onnxruntime-web
on each sample image; the export records hold PyTorch's probabilities for the sample images. A
PNG the site does not ship is dropped in too, and the other pages must not load any of the demo's
assets. (tests/site/test_site_demo_browser.py: DICOM and PNG parity, transfer, refusals.)
"""

from __future__ import annotations

import functools
import http.server
import json
import statistics
import threading
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from PIL import Image

from ._built_site import built_site  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
RESULTS = Path(__file__).resolve().parents[2] / "data" / "results"
SAMPLES_CHECKED = 3
DEMO_ASSETS = ("onnxruntime-web", "/assets/demo/", "demo.js")


def _records() -> dict[str, dict[str, Any]]:
    records = {}
    for path in sorted(RESULTS.glob("*/quick/export__*.json")):
        result = json.loads(path.read_text())
        if result["error"] is None:
            records[result["model"]["name"]] = result["metrics"]
    return records


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # the test's output is its own figures
        pass


@pytest.fixture(scope="module")
def server(built_site: Path) -> Iterator[str]:  # noqa: F811
    handler = functools.partial(_QuietHandler, directory=str(built_site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _dropped_png(tmp_path: Path) -> Path:
    """An RGB, non-square PNG of a brain-like disc: the site ships nothing like it."""
    yy, xx = np.mgrid[0:90, 0:70]
    disc = (((yy - 45) / 40) ** 2 + ((xx - 35) / 30) ** 2 < 1) * 180
    rgb = np.stack([disc, disc * 0.9, disc * 0.7], axis=-1).astype(np.uint8)
    path = tmp_path / "dropped.png"
    Image.fromarray(rgb).save(path)
    return path


@pytest.mark.parametrize("origin", ["file", "http"])
def test_browser_predictions_match_pytorch(built_site: Path, server: str, origin: str,  # noqa: F811
                                           tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    records = _records()
    if not (built_site / "demo.html").is_file() or not records:
        pytest.skip("no export results: the demo has no models")
    base = built_site.as_uri() if origin == "file" else server
    first = next(iter(records.values()))
    classes = first["class_names"]
    errors: list[str] = []
    outside: list[str] = []
    times: list[float] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: outside.append(r.url)
                    if not r.url.startswith((base, "blob:", "data:")) else None)
            page.goto(f"{base}/demo.html")
            page.wait_for_selector("#medbench-demo[data-state=done], #medbench-demo[data-state=error]",
                                   timeout=240_000)
            assert page.get_attribute("#medbench-demo", "data-state") != "error", \
                page.inner_text("[data-demo-status]")
            for name in page.eval_on_selector_all("[data-demo-choose] option", "os => os.map(o => o.value)"):
                page.select_option("[data-demo-choose]", name)  # loads it; it runs on the current image
                page.wait_for_selector(f'tr[data-demo-model][data-name="{name}"][data-top]', timeout=120_000)
            for sample in first["samples"][:SAMPLES_CHECKED]:
                page.click(f'[data-demo-sample="{sample["index"]}"]')
                page.wait_for_selector(f'#medbench-demo[data-state=done][data-input="sample-{sample["index"]}"]',
                                       timeout=120_000)
                rows = page.query_selector_all("tr[data-demo-model]")
                assert {r.get_attribute("data-name") for r in rows} == set(records)
                for row in rows:
                    name = row.get_attribute("data-name")
                    shown = np.array([float(x) for x in row.get_attribute("data-probs").split()])
                    torch_probs = np.array(next(s for s in records[name]["samples"]
                                                if s["index"] == sample["index"])["pytorch_probabilities"])
                    assert row.get_attribute("data-top") == classes[int(torch_probs.argmax())], (name, sample)
                    assert np.abs(shown - torch_probs).max() <= 0.01, (name, sample)
                    times.append(float(row.get_attribute("data-ms")))
            page.set_input_files("[data-demo-file]", str(_dropped_png(tmp_path)))
            page.wait_for_selector('#medbench-demo[data-state=done][data-input="file"]', timeout=120_000)
            dropped = page.query_selector_all("tr[data-demo-model]")
            assert dropped and all(r.get_attribute("data-top") in classes for r in dropped)
            home_requests: list[str] = []
            other = browser.new_page()
            other.on("request", lambda r: home_requests.append(r.url))
            other.goto(f"{base}/index.html", wait_until="load")
        finally:
            browser.close()
    assert errors == [], errors
    assert outside == [], outside
    assert not [u for u in home_requests if any(a in u for a in DEMO_ASSETS)], "the home page loads demo assets"
    print(f"\n{origin}: batch-1 in-browser inference, median {statistics.median(times):.1f} ms over "
          f"{len(times)} model runs")
