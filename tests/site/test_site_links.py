"""Every internal link of the built site leads somewhere, and the downloads are what they say.

Links: every href and src of every HTML page of the built site (all *.html but 404.html and
those under assets/ and search/) that is relative (no scheme such as http:, mailto:, data:,
javascript:) must name a file of the built site, and a #fragment must be an id (or an <a name>)
in the page it points to. All broken links are reported at once.

Downloads (once the site has a downloads/ folder): downloads/all-metrics.csv has one row per
(machine, suite, model, seed), the same keys as the train and baseline result files under
downloads/results/, and every .json that a page links to exists.
"""

from __future__ import annotations

import json
import posixpath
from collections import Counter
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from ._built_site import built_site, site_pages  # noqa: F401  (built_site is a fixture)

KEY = ["machine", "suite", "model", "seed"]
LINK_ATTRS = ("href", "src")


class _PageParser(HTMLParser):
    """The links (tag, attribute, value) and the anchors (ids and <a name>) of one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str, str]] = []
        self.anchors: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in LINK_ATTRS:
                self.links.append((tag, name, value.strip()))
            elif name == "id" or (name == "name" and tag == "a"):
                self.anchors.add(value)

    handle_startendtag = handle_starttag


@lru_cache(maxsize=None)
def _parse(path: Path) -> _PageParser:
    parser = _PageParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    return parser


def _is_internal(value: str) -> bool:
    parts = urlsplit(value)
    return not parts.scheme and not parts.netloc and not value.startswith("//")


def _check_link(site: Path, page: Path, value: str) -> str | None:
    """Why an internal link from page is broken, or None when it is fine."""
    parts = urlsplit(value)
    path, fragment = unquote(parts.path), unquote(parts.fragment)
    if path.startswith("/"):
        return "an absolute path, which leads off the site when it is opened from the file system"
    page_rel = page.relative_to(site).as_posix()
    if path:
        rel = posixpath.normpath(posixpath.join(posixpath.dirname(page_rel), path))
        if rel == ".." or rel.startswith("../"):
            return "leads out of the site"
        target = site / rel
        if target.is_dir():
            target = target / "index.html"
            if not target.is_file():
                return f"{rel}/ is a folder with no index.html"
        elif not target.is_file():
            return f"no file {rel}"
    else:
        target = page
    if fragment and target.suffix == ".html" and fragment not in _parse(target).anchors:
        return f"no id {fragment!r} in {target.relative_to(site).as_posix()}"
    return None


def test_every_internal_link_leads_somewhere(built_site: Path) -> None:
    pages = site_pages(built_site)
    assert pages, f"no HTML pages in {built_site}"
    broken: list[str] = []
    checked = 0
    for page in pages:
        for tag, attr, value in _parse(page).links:
            if not value or not _is_internal(value):
                continue
            checked += 1
            reason = _check_link(built_site, page, value)
            if reason:
                broken.append(f"{page.relative_to(built_site).as_posix()}: <{tag} {attr}=\"{value}\">: {reason}")
    assert checked, "no internal links found: is the parser reading the pages?"
    assert not broken, f"{len(broken)} broken of {checked} internal links:\n" + "\n".join(broken)


def _downloads(site: Path) -> Path:
    downloads = site / "downloads"
    if not downloads.is_dir():
        pytest.xfail("downloads page not built yet")
    return downloads


def test_all_metrics_csv_has_one_row_per_run(built_site: Path) -> None:
    pd = pytest.importorskip("pandas")
    downloads = _downloads(built_site)
    csv = downloads / "all-metrics.csv"
    assert csv.is_file(), f"the site has downloads/ but no downloads/all-metrics.csv: {sorted(downloads.iterdir())}"
    frame = pd.read_csv(csv)
    missing = [c for c in KEY if c not in frame.columns]
    assert not missing, f"all-metrics.csv has no column {missing}: {list(frame.columns)}"
    assert len(frame), "all-metrics.csv has no rows"
    empty = frame[frame[KEY].isna().any(axis=1)]
    assert empty.empty, f"all-metrics.csv rows with an empty key column:\n{empty[KEY].to_string()}"
    keys = [tuple(str(v) for v in row) for row in frame[KEY].itertuples(index=False)]
    duplicates = sorted(k for k, n in Counter(keys).items() if n > 1)
    assert not duplicates, f"all-metrics.csv has more than one row for {duplicates}"

    # The same runs as the train and baseline result files offered for download.
    runs = set()
    for path in sorted((downloads / "results").rglob("*.json")) if (downloads / "results").is_dir() else []:
        payload = json.loads(path.read_text())
        if isinstance(payload, dict) and payload.get("kind") in ("train", "baseline"):
            runs.add((str(payload["machine"]["id"]), str(payload["suite"]), str(payload["model"]["name"]),
                      str(payload["seed"])))
    assert runs, "downloads/results/ holds no train or baseline result file"
    assert set(keys) == runs, (f"all-metrics.csv rows and result files differ: rows without a result file "
                               f"{sorted(set(keys) - runs)}, result files without a row {sorted(runs - set(keys))}")
    if "result_file" in frame.columns:
        absent = sorted(f for f in frame["result_file"].dropna() if not (built_site / f).is_file())
        assert not absent, f"all-metrics.csv names result files the site does not have: {absent}"


def test_every_linked_json_exists(built_site: Path) -> None:
    _downloads(built_site)
    linked, absent = 0, []
    for page in site_pages(built_site):
        for tag, attr, value in _parse(page).links:
            if not value or not _is_internal(value) or not unquote(urlsplit(value).path).endswith(".json"):
                continue
            linked += 1
            reason = _check_link(built_site, page, value)
            if reason:
                absent.append(f"{page.relative_to(built_site).as_posix()}: {value}: {reason}")
    assert linked, "no page links to a .json file (the result files offered for download)"
    assert not absent, f"{len(absent)} of {linked} linked .json files are missing:\n" + "\n".join(absent)
