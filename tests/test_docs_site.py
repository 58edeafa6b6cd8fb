"""``make docs`` builds the site without a warning: what a reader browses is what the tests saw.

mkdocs.yml asks for a strict build and warns on every page left out of the nav, every
nav entry without a page, and every link or anchor it cannot resolve; this builds the
site the same way into a temporary directory.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from tests.conftest import TIMING

ROOT = Path(__file__).resolve().parent.parent


def test_site_builds_strict_without_warnings(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict",
         "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=120 * TIMING,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert build.returncode == 0, build.stdout + build.stderr
    assert "WARNING" not in build.stderr, build.stderr
    assert (tmp_path / "site" / "api" / "index.html").exists()  # it did build the pages


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mkdocs_hooks",
                                                  ROOT / "scripts" / "mkdocs_hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("repo_url", "expected"), [
    (None, "`deploy/grafana` and the rules (`deploy/prometheus/alerts.yml`), [b](b.md#x)"),
    ("https://example.org/rtctl/", "[deploy/grafana](https://example.org/rtctl/blob/HEAD/"
     "deploy/grafana) and [the rules](https://example.org/rtctl/blob/HEAD/deploy/prometheus/"
     "alerts.yml#L3), [b](b.md#x)"),
])
def test_links_out_of_docs_become_paths_or_repository_links(repo_url: str | None,
                                                            expected: str) -> None:
    text = ("[deploy/grafana](../deploy/grafana) and "
            "[the rules](../deploy/prometheus/alerts.yml#L3), [b](b.md#x)")
    page = SimpleNamespace(file=SimpleNamespace(src_uri="runbooks.md"))
    rewritten = _hooks().on_page_markdown(text, page=page, files=None,
                                          config=SimpleNamespace(repo_url=repo_url))
    assert rewritten == expected
