"""Every built page reads as rendered text: no Markdown left raw in what a reader sees.

A template that trims the blank line before a table, or runs a sentence into a heading,
leaves pipes, asterisks or backticks on the page, which no link or browser check notices.
This reads the visible text of each page's content column (scripts, styles, code, maths and
charts left out) and fails on the marks of Markdown that was not rendered.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ._built_site import built_site, site_pages  # noqa: F401 - the fixture

# Elements whose text is not prose: code is shown as written, maths and charts are drawn.
SKIPPED = {"script", "style", "code", "pre", "svg", "math", "template", "noscript", "textarea"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
RAW_MARKS = {
    "table row": re.compile(r"^\s*\|.*\|\s*$"),
    "table rule": re.compile(r"\|\s*:?-{2,}:?\s*\|"),
    "bold": re.compile(r"\*\*\S"),
    "backtick": re.compile(r"`"),
    "heading": re.compile(r"^\s*#{1,6} \S"),
    "link": re.compile(r"\]\([^)\s]+\)"),
}


class ContentText(HTMLParser):
    """The text lines of the page's article, outside SKIPPED elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0  # inside <article> when > 0
        self.skipping: list[str] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            return
        if tag == "article" or self.depth:
            self.depth += 1
        if self.depth and (tag in SKIPPED or ("class", "katex") in attrs or self.skipping):
            self.skipping.append(tag)
        if tag in ("p", "li", "tr", "h1", "h2", "h3", "h4", "div", "br", "td", "th"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if self.skipping:
            self.skipping.pop()
        if self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth and not self.skipping:
            self.parts.append(data)

    def lines(self) -> list[str]:
        return [line for line in "".join(self.parts).splitlines() if line.strip()]


def raw_markdown(html: str) -> list[str]:
    """``mark: line`` for every visible line that still carries a Markdown mark."""
    parser = ContentText()
    parser.feed(html)
    return [f"{mark}: {line.strip()[:120]}" for line in parser.lines()
            for mark, pattern in RAW_MARKS.items() if pattern.search(line)]


def test_the_checker_sees_raw_markdown_and_passes_rendered_text() -> None:
    raw = "<article><p>resnet50.Best epoch | Top-1 ↑ | Top-5 ↑ |\n|--:|--:|</p><p>**bold** and `code`</p></article>"
    found = raw_markdown(raw)
    assert any(f.startswith("table rule") for f in found) and any(f.startswith("bold") for f in found)
    assert any(f.startswith("backtick") for f in found)
    rendered = ("<article><table><tr><th>Top-1</th></tr></table><p><strong>bold</strong> and <code>`x`</code>"
                "</p><script>let a = '**'</script></article>")
    assert raw_markdown(rendered) == []


@pytest.mark.slow
def test_no_page_shows_unrendered_markdown(built_site: Path) -> None:  # noqa: F811 - the fixture
    problems = {page.relative_to(built_site).as_posix(): found for page in site_pages(built_site)
                if (found := raw_markdown(page.read_text(encoding="utf-8")))}
    assert not problems, "\n".join(f"{page}: {lines[:3]}" for page, lines in problems.items())
