"""Every link of every page (docs/*.md, README.md) leads somewhere, anchors included.

Pages are rendered with the Markdown extensions and the slug function mkdocs.yml gives
the site (GitHub's: lower case, punctuation dropped, each space a ``-``), so an anchor
is checked as the site generates it, and links inside code blocks are not links. A link
to a file outside docs/ (``../deploy/...``) must name one that exists in the repository:
on GitHub it opens it; on the site scripts/mkdocs_hooks.py turns it into the path.
Two headings of a page may not share a slug: their suffixes differ on the site and GitHub.
"""

from __future__ import annotations

import functools
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import markdown
import pytest
from mkdocs.config import load_config

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]


class _Anchors(HTMLParser):
    """The ids a page defines and the links (href, src) it makes."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.headings: list[str] = []  # their ids, in order
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
            if re.fullmatch(r"h[1-6]", tag):
                self.headings.append(str(found["id"]))
        link = found.get("href") if tag == "a" else found.get("src") if tag == "img" else None
        if link:
            self.links.append(link)


@functools.cache
def _renderer() -> markdown.Markdown:
    config = load_config(str(ROOT / "mkdocs.yml"))
    return markdown.Markdown(extensions=config["markdown_extensions"],
                             extension_configs=config["mdx_configs"])


@functools.cache
def rendered(page: Path) -> _Anchors:
    renderer = _renderer()
    html = renderer.reset().convert(page.read_text(encoding="utf-8"))
    anchors = _Anchors()
    anchors.feed(html)
    return anchors


def broken(page: Path) -> list[str]:
    """The page's links that lead nowhere, each with why."""
    wrong = []
    for link in rendered(page).links:
        if re.match(r"[a-z][a-z0-9+.-]*:", link):
            continue  # https:, mailto:: another site's business
        path, _, anchor = unquote(link).partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            wrong.append(f"{link}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in rendered(target).ids:
            wrong.append(f"{link}: no heading or id '{anchor}' in {target.name}")
    return wrong


def test_a_broken_link_and_anchor_are_found(tmp_path: Path) -> None:
    page = tmp_path / "a.md"
    page.write_text("# Top\n## Versions, gaps and `state.resync`\n"
                    "[ok](#versions-gaps-and-stateresync) [self](a.md#top) [bad](#nope) "
                    "[gone](b.md) [web](https://example.com/x.md)\n\n"
                    "```sh\n[not](a-link.md)\n```\n", encoding="utf-8")
    assert broken(page) == ["#nope: no heading or id 'nope' in a.md", "b.md: no such file"]


def repeated_headings(page: Path) -> list[str]:
    """Headings whose slug an earlier one took: the site suffixes ``_1``, GitHub ``-1``, so a
    link to the second works in one place only."""
    ids = rendered(page).headings
    return [slug for slug in ids
            if (base := re.fullmatch(r"(.+)_\d+", slug)) and base.group(1) in ids]


def test_a_repeated_heading_is_found(tmp_path: Path) -> None:
    page = tmp_path / "a.md"
    page.write_text("# A\n## FAQ\n## Faq_1 notes\n# B\n## FAQ\n", encoding="utf-8")
    assert repeated_headings(page) == ["faq_1"]


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(ROOT)) for page in PAGES])
def test_every_link_leads_somewhere(page: Path) -> None:
    assert broken(page) == []
    assert repeated_headings(page) == [], "give each heading of a page its own wording"
