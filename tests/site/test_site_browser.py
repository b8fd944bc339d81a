"""Build the site with ``mkdocs build --strict`` and open every page from file:// in headless Chromium.

The site must work offline, in both palettes, on a desktop and on a phone. Every HTML page of
the built site (all *.html but 404.html and those under assets/ and search/) is visited in the
light palette and again in the dark one (switched with Material's palette toggle), and on each:

- the console stays clean (no console error, no uncaught exception);
- no request leaves the built site (only file:// under its folder, data: and blob:);
- every chart (div.plotly-graph-div) is drawn (holds a .main-svg);
- each chart's paper background is the page's background (body's computed background);
- in the light palette, at 1280 px and at 390 px wide, no table is cut off: each one ends within
  the viewport and the content column, or sits in a box that scrolls sideways.

Besides: search answers from file://, the home page's first table re-orders when a numeric header is clicked (tablesort),
the home page loads at most 2.0 MB of HTML, JS and CSS, and full-page screenshots of every
page at 1280 and 390 px, light and dark, are saved (to $MEDBENCH_SCREENSHOTS, else a temporary folder that the run prints).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote, urlparse

import pytest

from ._built_site import built_site, site_pages  # noqa: F401  (built_site is a fixture)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Pages to photograph when they exist (site paths without .html), plus the first model page.
TRANSFER_LIMIT = 2_000_000  # bytes (2.0 MB) of HTML + JS + CSS for the home page
TRANSFER_TYPES = ("document", "script", "stylesheet")
CHART_TIMEOUT_MS = 15_000
PALETTE_TIMEOUT_MS = 2_000

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# --------------------------------------------------------------------------- scripts run in the page

# Charts not drawn yet: their ids (or their index when they have none).
UNDRAWN_CHARTS = """() => Array.from(document.querySelectorAll("div.plotly-graph-div"))
    .map((d, i) => d.querySelector(".main-svg") ? null : (d.id || `#${i}`)).filter(x => x !== null)"""
# Done waiting: every chart drawn, or none ever will be (the page's inline Plotly.newPlot calls
# ran before the load event, so without Plotly by then there is nothing more to wait for).
CHARTS_SETTLED = f"() => ({UNDRAWN_CHARTS})().length === 0 || typeof Plotly === 'undefined'"

# The palette toggle as Material marks it up: the options and the scheme now on body.
PALETTE_STATE = """() => {
  const form = document.querySelector("form[data-md-component=palette]");
  return {
    scheme: document.body.getAttribute("data-md-color-scheme"),
    form: !!form,
    options: form ? Array.from(form.querySelectorAll("input[name=__palette]")).map(i => ({
      scheme: i.getAttribute("data-md-color-scheme") || "default",
      media: i.getAttribute("data-md-color-media") || ""})) : [],
  };
}"""

# Each chart's paper background against the page's, both as the opaque rgb one sees: a colour
# with transparency is composited over the backgrounds of the elements behind it (the chart's
# ancestors, then white, the canvas), so a transparent paper counts as what shows through.
CHART_BACKGROUNDS = """() => {
  const probe = document.createElement("span");
  probe.style.display = "none";
  document.body.appendChild(probe);
  const rgba = css => {
    if (!css) return null;
    probe.style.color = "";
    probe.style.color = css;
    if (!probe.style.color) return null;  // not a CSS colour
    const m = getComputedStyle(probe).color.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const v = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1];
  };
  // Composite layers (front first) over white.
  const flatten = layers => {
    let rgb = [255, 255, 255];
    for (const c of layers.filter(Boolean).reverse()) {
      rgb = rgb.map((x, k) => c[k] * c[3] + x * (1 - c[3]));
    }
    return rgb.map(Math.round);
  };
  const behind = el => {
    const out = [];
    for (let e = el; e; e = e.parentElement) out.push(rgba(getComputedStyle(e).backgroundColor));
    return out;
  };
  const page = flatten(behind(document.body));
  // Charts not drawn are reported as such, not here.
  const charts = Array.from(document.querySelectorAll("div.plotly-graph-div")).map((gd, i) => {
    if (!gd.querySelector(".main-svg")) return null;
    const layout = gd._fullLayout;
    const svg = gd.querySelector(".main-svg");
    const raw = layout && layout.paper_bgcolor ? layout.paper_bgcolor
      : (svg ? getComputedStyle(svg).backgroundColor : null);
    const paper = rgba(raw);
    return {id: gd.id || `#${i}`, raw: raw, seen: paper ? flatten([paper, ...behind(gd)]) : null};
  }).filter(c => c !== null);
  probe.remove();
  return {page: page, body: getComputedStyle(document.body).backgroundColor, charts: charts};
}"""

# Tables that end past the viewport or the content column with no sideways-scrolling box.
CUT_OFF_TABLES = """() => {
  const content = document.querySelector(".md-content") || document.body;
  const bound = Math.min(document.documentElement.clientWidth, content.getBoundingClientRect().right) + 1;
  const out = [];
  document.querySelectorAll("table").forEach((t, i) => {
    const r = t.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) return;  // not displayed
    if (r.right <= bound) return;
    for (let e = t; e && e !== document.documentElement; e = e.parentElement) {
      const ox = getComputedStyle(e).overflowX;
      if ((ox === "auto" || ox === "scroll") && e.scrollWidth > e.clientWidth
          && e.getBoundingClientRect().right <= bound) return;
    }
    const head = t.querySelector("th, td");
    out.push(`table ${i} (${head ? head.textContent.trim().slice(0, 30) : ""}...) ends at ` +
             `${Math.round(r.right)} px, past ${Math.round(bound - 1)} px, and nothing scrolls it`);
  });
  return out;
}"""

# How far the page as a whole scrolls sideways (0: it does not; wide tables scroll in their own box).
PAGE_OVERFLOW = """() => Math.max(0, document.documentElement.scrollWidth - document.documentElement.clientWidth)"""

# The home page's first leaderboard table: its headers and whether it fits its box without scrolling.
FIRST_TABLE_FIT = """() => {
  const table = document.querySelector("article table");
  const wrap = table.closest(".md-typeset__scrollwrap") || table.parentElement;
  return {headers: Array.from(table.tHead.rows[0].cells).map(c => c.textContent.trim()),
          overflow: Math.max(0, wrap.scrollWidth - wrap.clientWidth),
          right: table.getBoundingClientRect().right, viewport: document.documentElement.clientWidth};
}"""

# The first article table: its header texts, body rows, and its numeric columns (every body
# cell a leading number or missing, at least two different numbers) with their values.
TABLE_STATE = """() => {
  const table = document.querySelector("article table") || document.querySelector("table");
  if (!table) return null;
  const MISSING = /^(?:[—–\\-−]*|n\\/?a|none)$/i;
  const LEADING = /^([+\\-−]?(?:\\d{1,3}(?:,\\d{3})+|\\d+)?(?:\\.\\d+)?(?:[eE][+\\-]?\\d+)?)(?:\\s*([kMGT])(?![A-Za-z]))?/;
  const SI = {k: 1e3, M: 1e6, G: 1e9, T: 1e12};
  const number = text => {
    const s = text.trim();
    if (MISSING.test(s)) return null;
    const m = LEADING.exec(s);
    if (!m || !/\\d/.test(m[1])) return undefined;  // not a number: not a numeric column
    const x = parseFloat(m[1].replace(/,/g, "").replace("−", "-"));
    return m[2] ? x * SI[m[2]] : x;
  };
  const head = table.tHead && table.tHead.rows.length ? table.tHead.rows[table.tHead.rows.length - 1] : table.rows[0];
  const body = Array.from(table.tBodies[0] ? table.tBodies[0].rows : table.rows).filter(r => r !== head);
  const headers = Array.from(head.cells).map(c => c.textContent.trim());
  const numeric = [];
  headers.forEach((_, c) => {
    const values = body.map(r => r.cells[c] ? number(r.cells[c].textContent) : null);
    if (values.includes(undefined)) return;
    if (new Set(values.filter(v => v !== null)).size < 2) return;
    numeric.push({column: c, values: values});
  });
  return {headers: headers, rows: body.map(r => r.textContent.replace(/\\s+/g, " ").trim()), numeric: numeric};
}"""


# --------------------------------------------------------------------------- helpers


def _url_path(url: str) -> Path:
    return Path(unquote(urlparse(url).path))


def _inside(url: str, site: Path) -> bool:
    """Whether a request stays in the built site: file:// under it, or data:/blob:."""
    if url.startswith(("data:", "blob:")):
        return True
    if not url.startswith("file:"):
        return False
    path = Path(os.path.normpath(_url_path(url)))
    return path == site or site in path.parents


@dataclass
class Visitor:
    """One browser page reused for every visit in one palette, with what it saw."""

    page: Any
    site: Path
    current: str = ""
    problems: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.page.on("console", lambda msg: self.note(f"console error: {msg.text}") if msg.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.note(f"uncaught exception: {exc}"))
        self.page.on("request", lambda req: None if _inside(req.url, self.site) else
                     self.note(f"request outside the site: {req.url}"))

    def note(self, problem: str) -> None:
        self.problems.setdefault(self.current or "(before any page)", []).append(problem)

    def visit(self, page_path: Path) -> bool:
        self.current = page_path.relative_to(self.site).as_posix()
        try:
            self.page.goto(page_path.as_uri(), wait_until="load")
        except Exception as exc:  # noqa: BLE001 (reported with the rest)
            self.note(f"did not load: {exc}")
            return False
        return True

    def wait_for_charts(self) -> None:
        waited = f"after {CHART_TIMEOUT_MS / 1000:.0f} s"
        try:
            self.page.wait_for_function(CHARTS_SETTLED, timeout=CHART_TIMEOUT_MS)
            waited = "(no Plotly on the page)"
        except Exception:  # noqa: BLE001 (a Playwright TimeoutError; reported below)
            pass
        undrawn = self.page.evaluate(UNDRAWN_CHARTS)
        if undrawn:
            self.note(f"charts not drawn {waited}: {', '.join(undrawn)}")

    def set_palette(self, dark: bool) -> bool:
        """Switch to the dark (or light) palette with Material's toggle. False (and a problem
        noted) when the page has no such palette or the toggle does not reach it."""
        want = "dark" if dark else "light"
        state = self.page.evaluate(PALETTE_STATE)
        if not state["form"]:
            if not dark:
                return True  # one palette only: the light one
            self.note("no palette toggle (form[data-md-component=palette]): the dark palette cannot be shown")
            return False
        dark_schemes = {o["scheme"] for o in state["options"] if o["scheme"] == "slate" or "dark" in o["media"]}
        if not dark_schemes or len(dark_schemes) == len(state["options"]):
            self.note(f"the palette toggle does not offer both a light and a dark palette: {state['options']}")
            return False
        for _ in range(len(state["options"])):
            if (state["scheme"] in dark_schemes) == dark:
                return True
            label = self.page.locator("form[data-md-component=palette] label.md-header__button:visible").first
            try:
                label.click(timeout=5_000)
                self.page.wait_for_function(
                    "s => document.body.getAttribute('data-md-color-scheme') !== s", arg=state["scheme"],
                    timeout=5_000)
            except Exception as exc:  # noqa: BLE001
                self.note(f"the palette toggle did not switch to the {want} palette: {exc}")
                return False
            state = self.page.evaluate(PALETTE_STATE)
        if (state["scheme"] in dark_schemes) == dark:
            return True
        self.note(f"the palette toggle did not reach the {want} palette (scheme {state['scheme']!r})")
        return False

    def check_chart_backgrounds(self, palette: str) -> None:
        def mismatches(bg: dict) -> list[dict]:
            return [c for c in bg["charts"] if c["seen"] is None
                    or max(abs(a - b) for a, b in zip(c["seen"], bg["page"])) > 1]

        # Charts may take the palette a moment after it changes: wait for it, then report.
        deadline = time.monotonic() + PALETTE_TIMEOUT_MS / 1000
        while True:
            bg = self.page.evaluate(CHART_BACKGROUNDS)
            bad = mismatches(bg)
            if not bad or time.monotonic() > deadline:
                break
            self.page.wait_for_timeout(100)
        for c in bad:
            seen = "not a colour" if c["seen"] is None else "rgb({}, {}, {})".format(*c["seen"])
            self.note(f"{palette} palette: chart {c['id']} background {c['raw']!r} (seen as {seen}) is not the "
                      "page background rgb({}, {}, {}) (body: {})".format(*bg["page"], bg["body"]))

    def check_tables(self, width: int) -> None:
        for problem in self.page.evaluate(CUT_OFF_TABLES):
            self.note(f"at {width} px: {problem}")
        overflow = self.page.evaluate(PAGE_OVERFLOW)
        if overflow > 0:
            self.note(f"at {width} px: the page itself scrolls sideways by {overflow} px")

    def report(self) -> str:
        return "\n".join(f"{page}:\n" + "\n".join(f"  - {p}" for p in problems)
                         for page, problems in self.problems.items())


def _screenshot_names(site: Path) -> dict[str, str]:
    """Site path → screenshot name: every page, so that each can be looked at before a change lands."""
    return {page.relative_to(site).as_posix(): page.relative_to(site).with_suffix("").as_posix().replace("/", "-")
            for page in site_pages(site)}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    pw = sync_api.sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        pw.stop()


def _context(browser: Any) -> Any:
    # Both start light (the system preference); the dark one is reached with the toggle.
    context = browser.new_context(viewport=DESKTOP, color_scheme="light")
    # Nothing may leave the machine: fail fast rather than wait on the network.
    context.route(re.compile(r"^(https?|wss?|ftp):"), lambda route: route.abort())
    return context


@pytest.fixture(scope="module")
def light_context(browser: Any) -> Iterator[Any]:
    context = _context(browser)
    yield context
    context.close()


@pytest.fixture(scope="module")
def dark_context(browser: Any) -> Iterator[Any]:
    context = _context(browser)
    yield context
    context.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ["MEDBENCH_SCREENSHOTS"]) if os.environ.get("MEDBENCH_SCREENSHOTS") \
        else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --------------------------------------------------------------------------- tests


def test_every_page_in_the_light_palette(built_site: Path, light_context: Any, screenshots: Path) -> None:
    pages = site_pages(built_site)
    assert pages, f"no HTML pages in {built_site}"
    shoot = _screenshot_names(built_site)
    visitor = Visitor(light_context.new_page(), built_site.resolve())
    started = time.monotonic()
    for path in pages:
        rel = path.relative_to(built_site).as_posix()
        visitor.page.set_viewport_size(DESKTOP)
        if not visitor.visit(path) or not visitor.set_palette(dark=False):
            continue
        visitor.wait_for_charts()
        visitor.check_chart_backgrounds("light")
        visitor.check_tables(DESKTOP["width"])
        if rel in shoot:
            visitor.page.screenshot(path=str(screenshots / f"{shoot[rel]}-{DESKTOP['width']}.png"), full_page=True)
        visitor.page.set_viewport_size(PHONE)
        visitor.check_tables(PHONE["width"])
        if rel in shoot:
            visitor.page.wait_for_timeout(500)  # responsive charts redraw after a resize
            visitor.page.screenshot(path=str(screenshots / f"{shoot[rel]}-{PHONE['width']}.png"), full_page=True)
    visitor.page.close()
    print(f"\nlight palette: {len(pages)} pages in {time.monotonic() - started:.1f} s; screenshots in {screenshots}")
    assert not visitor.problems, f"in the light palette, of {len(pages)} pages:\n{visitor.report()}"


def test_every_page_in_the_dark_palette(built_site: Path, dark_context: Any, screenshots: Path) -> None:
    pages = site_pages(built_site)
    assert pages, f"no HTML pages in {built_site}"
    shoot = _screenshot_names(built_site)
    visitor = Visitor(dark_context.new_page(), built_site.resolve())
    started = time.monotonic()
    for path in pages:
        rel = path.relative_to(built_site).as_posix()
        if not visitor.visit(path):
            continue
        visitor.wait_for_charts()
        if not visitor.set_palette(dark=True):
            continue
        visitor.check_chart_backgrounds("dark")
        if rel in shoot:
            visitor.page.screenshot(path=str(screenshots / f"{shoot[rel]}-{DESKTOP['width']}-dark.png"),
                                    full_page=True)
            visitor.page.set_viewport_size(PHONE)
            visitor.page.wait_for_timeout(500)  # responsive charts redraw after a resize
            visitor.page.screenshot(path=str(screenshots / f"{shoot[rel]}-{PHONE['width']}-dark.png"), full_page=True)
            visitor.page.set_viewport_size(DESKTOP)
    visitor.page.close()
    print(f"\ndark palette: {len(pages)} pages in {time.monotonic() - started:.1f} s")
    assert not visitor.problems, f"in the dark palette, of {len(pages)} pages:\n{visitor.report()}"


def test_the_home_leaderboard_answers_without_scrolling_at_desktop_width(built_site: Path, light_context: Any) -> None:
    """At 1280 px the first leaderboard shows accuracy with its interval and tie mark and the cost
    on the reference machine, all in view: its box does not scroll."""
    page = light_context.new_page()
    try:
        page.set_viewport_size(DESKTOP)
        page.goto((built_site / "index.html").as_uri(), wait_until="load")
        fit = page.evaluate(FIRST_TABLE_FIT)
    finally:
        page.close()
    wanted = ("Model", "Balanced acc.", "95% CI", "vs best", "Params", "ms")
    assert all(any(h.startswith(w) for h in fit["headers"]) for w in wanted), fit["headers"]
    assert fit["overflow"] == 0 and fit["right"] <= fit["viewport"], fit


def test_home_table_sorts_when_a_numeric_header_is_clicked(built_site: Path, light_context: Any) -> None:
    page = light_context.new_page()
    try:
        page.goto((built_site / "index.html").as_uri(), wait_until="load")
        if page.evaluate("typeof Tablesort === 'undefined'"):
            pytest.skip("tablesort is not on the home page yet (no Tablesort global)")
        before = page.evaluate(TABLE_STATE)
        assert before is not None, "the home page has no table"
        assert len(before["rows"]) >= 2, f"the home page's first table has {len(before['rows'])} row(s)"
        assert before["numeric"], f"the home page's first table has no numeric column: {before['headers']}"
        # A column not in order yet re-orders on the first click; otherwise the second does it.
        unsorted = [n for n in before["numeric"]
                    if not _monotonic([v for v in n["values"] if v is not None])]
        column = (unsorted or before["numeric"])[0]["column"]
        header = before["headers"][column]
        table = page.locator("article table").first if page.locator("article table").count() else \
            page.locator("table").first
        th = table.locator("thead tr").last.locator("th").nth(column) if table.locator("thead tr").count() else \
            table.locator("tr").first.locator("th, td").nth(column)
        after = before
        for _ in range(2):
            th.click()
            after = page.evaluate(TABLE_STATE)
            if after["rows"] != before["rows"]:
                break
        assert after["rows"] != before["rows"], \
            f"clicking the header {header!r} (twice) left the order of the home page's first table as it was"
        sorted_values = next(n["values"] for n in after["numeric"] if n["column"] == column)
        present = [v for v in sorted_values if v is not None]
        assert _monotonic(present), f"after clicking {header!r} the column is not in numeric order: {present}"
        assert sorted(after["rows"]) == sorted(before["rows"]), "sorting changed the rows themselves"
    finally:
        page.close()


def test_search_answers_offline(built_site: Path, light_context: Any) -> None:
    """Search runs its worker in an iframe from file:// (the theme's shim), with no server."""
    page = light_context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto((built_site / "index.html").as_uri(), wait_until="load")
        # A word the home page's title holds, so the index has it whatever the pages are.
        title = page.locator("article h1").first.inner_text() if page.locator("article h1").count() else page.title()
        word = next((w for w in re.findall(r"[A-Za-z]{3,}", title)), None)
        assert word, f"no word to search for in the home page's title {title!r}"
        page.fill("input.md-search__input", word, timeout=10_000)
        try:
            page.wait_for_selector(".md-search-result__item", timeout=10_000)
        except Exception:  # noqa: BLE001
            meta = page.locator(".md-search-result__meta").first
            pytest.fail(f"searching {word!r} from file:// found nothing in 10 s "
                        f"({meta.inner_text() if meta.count() else 'no search result panel'}); errors: {errors}")
    finally:
        page.close()
    assert errors == [], f"console errors while searching: {errors}"


def _monotonic(values: list[float]) -> bool:
    return all(a <= b for a, b in zip(values, values[1:])) or all(a >= b for a, b in zip(values, values[1:]))


def test_home_page_transfer_is_small(built_site: Path, browser: Any, screenshots: Path) -> None:
    # A context of its own, so nothing comes from a cache the other tests filled.
    context = _context(browser)
    requested: dict[str, str] = {}
    try:
        page = context.new_page()
        page.on("request", lambda req: requested.setdefault(req.url.split("#")[0], req.resource_type))
        page.goto((built_site / "index.html").as_uri(), wait_until="load")
        page.wait_for_load_state("networkidle")
    finally:
        context.close()
    site = built_site.resolve()
    files = []
    for url, kind in sorted(requested.items()):
        if not url.startswith("file:"):
            continue
        path = Path(os.path.normpath(_url_path(url)))
        files.append({"path": path.relative_to(site).as_posix() if site in path.parents else str(path),
                      "type": kind, "bytes": path.stat().st_size if path.is_file() else 0})
    by_type: dict[str, int] = {}
    for f in files:
        by_type[f["type"]] = by_type.get(f["type"], 0) + f["bytes"]
    total = sum(by_type.get(kind, 0) for kind in TRANSFER_TYPES)
    report = {"page": "index.html", "total_bytes": total, "limit_bytes": TRANSFER_LIMIT,
              "counted_types": list(TRANSFER_TYPES), "bytes_by_type": by_type,
              "files": sorted(files, key=lambda f: -f["bytes"])}
    (screenshots / "home_transfer.json").write_text(json.dumps(report, indent=2) + "\n")
    largest = ", ".join(f"{f['path']} {f['bytes'] / 1e6:.2f} MB" for f in report["files"][:3])
    print(f"\nhome page transfer (HTML + JS + CSS): {total / 1e6:.2f} MB in "
          f"{sum(1 for f in files if f['type'] in TRANSFER_TYPES)} files (largest: {largest}); "
          f"written to {screenshots / 'home_transfer.json'}")
    assert total <= TRANSFER_LIMIT, (
        f"the home page loads {total / 1e6:.2f} MB of HTML, JS and CSS, over the {TRANSFER_LIMIT / 1e6:.1f} MB "
        f"budget; largest: {largest}")


VISIBLE_ITEMS = """(gallery) => Array.from(document.querySelectorAll(gallery + ' [data-item]'))
    .filter(el => !el.hidden).map(el => el.querySelector('img').getAttribute('src'))"""


@pytest.mark.parametrize("name", ["gallery.html", "misclassified.html"])
def test_gallery_filters_change_what_is_shown(built_site: Path, light_context: Any, name: str) -> None:
    path = built_site / name
    if not path.is_file():
        pytest.skip(f"no {name} in this build (no explain results)")
    page = light_context.new_page()
    try:
        page.goto(path.as_uri())
        filters = page.locator(".medbench-filters").first
        gallery = "#" + filters.get_attribute("data-target")
        before = page.evaluate(VISIBLE_ITEMS, gallery)
        total = page.locator(f"{gallery} [data-item]").count()
        assert before and len(before) < total, f"{name}: the initial filter shows {len(before)} of {total} items"
        select = filters.locator("select[data-filter]").first
        values = select.locator("option").evaluate_all("options => options.map(o => o.value)")
        current = select.input_value()
        other = next(v for v in values if v != current)
        select.select_option(other)
        after = page.evaluate(VISIBLE_ITEMS, gallery)
        assert after != before, f"{name}: choosing {other!r} in the first filter changed nothing"
        attribute = select.get_attribute("data-filter")
        if other:
            shown = page.locator(f"{gallery} [data-item]:not([hidden])")
            kept = shown.evaluate_all(f"els => els.map(e => e.getAttribute('data-{attribute}'))")
            assert kept and all(v in (other, "either") for v in kept), f"{name}: {attribute}={other!r} kept {set(kept)}"
    finally:
        page.close()
