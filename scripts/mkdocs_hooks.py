"""mkdocs hooks (mkdocs.yml ``hooks:``): links from a page to repository files outside docs/.

On GitHub ``[the rules](../deploy/prometheus/alerts.yml)`` opens the file; on the site it
would be a dead link (a strict build's warning). Such a link becomes a link into the
repository when mkdocs.yml names one (``repo_url``), else the path as code (beside the text
when the text is not the path).
tests/test_docs_links.py checks that every such target exists.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

__all__ = ["on_page_markdown"]

_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s#]+)(#[^)\s]*)?\)")


def on_page_markdown(markdown: str, *, page: Any, config: Any, files: Any) -> str:
    def outside(match: re.Match[str]) -> str:
        text, target, anchor = match.group(1), match.group(2), match.group(3) or ""
        if re.match(r"[a-z]+:", target):
            return match.group(0)
        path = posixpath.normpath(posixpath.join(posixpath.dirname(page.file.src_uri), target))
        if not path.startswith("../"):
            return match.group(0)
        repository = path.removeprefix("../")
        if config.repo_url:
            return f"[{text}]({config.repo_url.rstrip('/')}/blob/HEAD/{repository}{anchor})"
        if repository.startswith(text.strip("`").rstrip("/")):
            return f"`{text.strip('`')}`"  # the text is the path already
        return f"{text} (`{repository}`)"

    return _LINK.sub(outside, markdown)
