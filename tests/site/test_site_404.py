"""404.html works wherever the site is: from file://, and over http under a sub-path, whether it is
opened as itself or shown by the server for a missing page at the top or in a folder (as GitHub
Pages serves a project at /<repo>/). Styled, every request it makes answered, its links leading
into the site.

Shown for a missing page in a folder, the page sets a <base> at the site's root from a script;
Chromium's preload scanner has by then requested the head's stylesheets and scripts from the
folder. Those speculative requests fail and are ignored; each must also have been requested,
and answered, from the root, which is what the page uses."""

from __future__ import annotations

import functools
import http.server
import re
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from ._built_site import built_site  # noqa: F401  (a fixture)

CHROMIUM = Path("/usr/bin/chromium")
SUB = "/sub/"  # where the server mounts the site
# An attribute or JSON value holding a root-absolute URL ("/x", not "//host" or a full URL).
ROOT_ABSOLUTE = re.compile(r"""(?:\b(?:href|src|action)=["']|"base":\s*")/(?!/)""")
# Material's stylesheet makes the header sticky; unstyled, it is static.
HEADER_POSITION = "() => getComputedStyle(document.querySelector('.md-header')).position"
HOME_LINK = "() => document.querySelector('a.md-header__button.md-logo, a.md-nav__link[href$=\"index.html\"]').href"


class _SubPathHandler(http.server.SimpleHTTPRequestHandler):
    """The built site under SUB; a missing file gets 404.html with status 404, as GitHub Pages does."""

    def __init__(self, *args: Any, site: Path, **kwargs: Any) -> None:
        self.site = site
        super().__init__(*args, directory=str(site), **kwargs)

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        path = self.path.split("?")[0].split("#")[0]
        target = self.site / path.removeprefix(SUB) if path.startswith(SUB) else None
        if target is not None and target.is_file():
            self.path = "/" + path.removeprefix(SUB)
            super().do_GET()
            return
        body = (self.site / "404.html").read_bytes() if path.startswith(SUB) else b"outside the site"
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server(built_site: Path) -> Iterator[str]:  # noqa: F811
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_SubPathHandler, site=built_site))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_404_has_no_root_absolute_url(built_site: Path) -> None:  # noqa: F811
    text = (built_site / "404.html").read_text()
    assert not [m.group(0) for m in ROOT_ABSOLUTE.finditer(text)]
    assert '"base": "."' in text and 'href="./assets/stylesheets/' in text


@pytest.mark.browser
@pytest.mark.slow
def test_404_is_styled_from_file_and_from_a_sub_path(built_site: Path, server: str) -> None:  # noqa: F811
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    visits = {  # URL → the site root its links must lead to
        (built_site / "404.html").as_uri(): built_site.as_uri() + "/",
        f"{server}{SUB}404.html": f"{server}{SUB}",
        f"{server}{SUB}gone.html": f"{server}{SUB}",
        f"{server}{SUB}models/gone.html": f"{server}{SUB}",
    }
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            for url, root in visits.items():
                page = browser.new_page()
                failed: list[str] = []
                errors: list[str] = []
                answered: set[str] = set()
                page.on("response", lambda r, answered=answered: answered.add(r.url) if r.status < 400 else None)
                page.on("requestfailed", lambda r, failed=failed: failed.append(f"failed {r.url}"))
                page.on("response", lambda r, url=url, failed=failed: failed.append(f"{r.status} {r.url}")
                        if r.status >= 400 and r.url != url else None)
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                page.goto(url, wait_until="load")
                page.wait_for_load_state("networkidle")
                assert page.evaluate(HEADER_POSITION) == "sticky", f"{url} loads unstyled"
                assert page.evaluate(HOME_LINK) == root + "index.html", url
                assert "404 - Not found" in page.inner_text("article"), url
                unanswered = [f for f in failed if f.split(" ")[-1].replace("/models/assets/", "/assets/") not in answered]
                assert unanswered == [] and errors == [], (url, failed, errors)
                page.close()
        finally:
            browser.close()
