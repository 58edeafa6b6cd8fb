"""Every command block and every ```python block of docs/*.md and README.md runs, or says why not.

Rules for writers (a fence's language decides what happens to it):

* Every fence has a language. ```sh (or ```bash) and ```console are commands; ```python runs
  (below); anything else (``json``, ``toml``, ``js``, ``text`` for diagrams, URL
  templates and sample output) is only shown. An untagged fence fails.
* ```sh runs with ``bash -euo pipefail`` in a fresh directory holding a symlink to
  each top-level entry of the repository (``.venv/bin/rtctl``, ``examples.x:router``,
  ``benchmarks/`` work as from a checkout) and the page's file blocks that are not
  in the repository; ``rtctl`` on PATH, HOME inside it, no ``RTCTL_*`` variable, its
  own network namespace when the machine allows (the pages' ports are free; else a
  block whose fixed port is taken is skipped, failed under CI), and a timeout. Its exit
  status must be 0: a command meant to fail is written ``cmd || echo "exit $?"  # exit N``
  and the block must print ``exit N``. ``set -e`` does not stop at the ``a`` of ``a && b``
  nor at ``export X=$(a)``: in sh blocks and ``before:`` markers write ``&&`` only in an
  ``if``/``while`` condition, and ``X=$(a); export X``. ``# comments`` are prose.
* A block using node, redis-server, nats-server, jq or openssl is skipped where the
  program is missing (failed under CI), as tests/conftest.py's ``require_program`` does.
* ```console: each ``$ `` line runs in turn in one bash (``export`` carries over);
  the lines up to the next ``$ `` are its output, stdout and stderr, compared line by
  line (a line ``...`` stands for any number of lines). Each must exit 0: show an
  expected failure as ``$ cmd; echo $?``, its code the last line shown.
* A line ending in `` &`` starts a background process (a server); the block's
  process group is killed when it ends. The page waits for it with a check the
  reader could run too, never a sleep:
  ``curl -sf --retry-connrefused --retry 20 --retry-delay 1 http://127.0.0.1:8765/readyz``.
* ``<!-- before: SHELL -->`` on the line before a fence runs SHELL first in the same
  bash, its output unseen (a gateway the prose says is running).
* ``<!-- not-run: reason -->`` on the line before a fence (invisible when rendered):
  installs, docker, production deploys, other machines, benchmarks that take
  minutes, interactive screens. A ```python block with it is still compiled.
* A console block whose foreground ``$ rtctl serve --router M:A`` serves one of the
  page's file blocks is *served*: the python convention below runs it (its banner is
  not compared: keep it as ``rtctl serve`` prints it).
* Every ``rtctl`` command in a sh or console block, marked or not, must name a
  command and options (long and short) the CLI has (``rtctl X --help``); a quoted
  ``"$(rtctl ...)"`` counts, and ``$RTCTL`` where the block sets RTCTL to an rtctl.
* Two headings of a page may not share a slug (the site and GitHub number repeats
  differently, so links to the second would break on one of them).

tests/test_docs_commands.py runs the command blocks (tests/docs_runner.py the bash),
tests/test_docs_links.py checks every link and anchor, tests/test_docs_site.py builds
the site (``make docs``; every page in mkdocs.yml's nav, no warning).

```python blocks:

* A block whose first line names a file (``# mygame/rpc.py``) is written to
  that path under ``tmp_path`` and imported. If its page serves it
  (``rtctl serve --router mygame.rpc:router`` in a shell or console block), a
  gateway starts in process with that router, the page's first ``rtctl call``
  after it is made over a real WebSocket, and the result must be the output
  the page shows (the next console line, or a ``# comment`` in a shell block).
* A block with ``<!-- not-run: reason -->`` on the line before its fence
  (invisible in the rendered page) is only compiled: it needs a gateway, or
  it is a fragment of the reader's own code.
* Every other block is executed, with ``url`` and ``token`` defined: the
  guides' names for the reader's gateway and token (building a ``Client``
  connects nowhere).

Blocks are compiled as ``python -m asyncio`` would take them: top-level
``await`` is allowed. ``test_every_block_is_accounted_for`` checks that no
block was missed and prints how many ran, were served, compiled and marked
(``pytest -rP`` shows it).
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import json
import re
import shlex
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import CodeType
from typing import Any

import pytest

from tests.conftest import TIMING, GatewayFactory, rpc
from tests.test_docs import Fence, fences
from tests.test_examples import serving

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
GIVEN = {"url": "ws://127.0.0.1:1", "token": "eyJ..."}  # the reader's own, in the guides
_NOT_RUN = re.compile(r"<!--\s*not-run:\s*(.*?)\s*-->")
_FILE = re.compile(r"#\s*([\w/-]+\.py)\b")  # "# mygame/rpc.py", "# examples/x.py (abridged)"
_BEFORE = re.compile(r"<!--\s*before:\s*(.*?)\s*-->")
_SHELL = {"sh", "bash", "console"}


@dataclass(frozen=True)
class Call:
    """``rtctl call URL METHOD [PARAMS]`` as a page shows it."""

    method: str
    params: Any
    shown: tuple[Any, ...]  # the output the page shows, decoded; () if none (or not JSON)


@dataclass(frozen=True)
class Example:
    page: str  # relative to the repository, e.g. docs/api.md
    line: int  # of the opening fence
    source: str
    file: str | None  # the path the first line names
    not_run: str | None  # the marker's reason
    router: str | None  # MODULE:ATTR the page serves the file with
    call: Call | None  # the page's first call to it

    @property
    def kind(self) -> str:
        if self.file is not None:
            return "serve" if self.router is not None else "import"
        return "not-run" if self.not_run is not None else "run"

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"

    def compiled(self) -> CodeType:
        code: CodeType = compile(self.source, self.name, "exec",
                                 flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        return code


def _shown(text: str | None) -> tuple[Any, ...]:
    try:
        return () if text is None else (json.loads(text),)
    except ValueError:
        return ()


def _commands(text: str) -> Iterator[tuple[list[str], tuple[Any, ...]]]:
    """Each ``rtctl`` command line of a page's shell blocks, split as a shell would, with
    the output shown for it: a ``# comment`` on the line, else the next console line."""
    for fence in fences(text):
        if fence.info not in _SHELL:
            continue
        lines = fence.body.replace("\\\n", " ").splitlines()  # continuation lines joined
        for index, line in enumerate(lines):
            if "rtctl " not in line or (fence.info == "console" and not line.startswith("$ ")):
                continue
            comment = re.search(r"\s#\s*(.+)$", line)
            following = lines[index + 1] if index + 1 < len(lines) else "$"
            shown = (comment.group(1) if comment
                     else None if following.startswith("$") else following)
            yield shlex.split(line.removeprefix("$ "), comments=True), _shown(shown)


def _served(text: str, module: str) -> tuple[str | None, Call | None]:
    """How the page serves ``module`` (``MODULE:ATTR``), and its first call after that."""
    router = None
    for words, shown in _commands(text):
        rtctl = next((i for i, word in enumerate(words) if word.endswith("rtctl")), None)
        if rtctl is None or len(words) <= rtctl + 1:
            continue
        command, args = words[rtctl + 1], [w for w in words[rtctl + 2:] if not w.startswith("-")]
        if command == "serve" and "--router" in words:
            spec = words[words.index("--router") + 1]
            if spec.partition(":")[0] == module:
                router = spec
        elif command == "call" and router is not None and len(args) >= 2:
            return router, Call(args[1], json.loads(args[2]) if len(args) > 2 else None, shown)
    return router, None


def preceding(lines: list[str], fence: Fence) -> str:
    """The last non-blank line before a fence: where its marker would be."""
    return next((line.strip() for line in reversed(lines[:fence.opening - 1]) if line.strip()),
                "")


def examples(page: Path) -> Iterator[Example]:
    text = page.read_text(encoding="utf-8")
    lines = text.splitlines()
    for fence in fences(text):
        if fence.info != "python":
            continue
        marker = _NOT_RUN.fullmatch(preceding(lines, fence))
        named = _FILE.match(fence.body)
        file = named.group(1) if named else None
        router, call = (_served(text, file.removesuffix(".py").replace("/", "."))
                        if file else (None, None))
        yield Example(str(page.relative_to(ROOT)), fence.opening, fence.body, file,
                      marker.group(1) if marker else None, router, call)


EXAMPLES = [example for page in PAGES for example in examples(page)]


def _of(*kinds: str) -> pytest.MarkDecorator:
    chosen = [example for example in EXAMPLES if example.kind in kinds]
    return pytest.mark.parametrize("example", chosen, ids=[e.name for e in chosen])


@contextmanager
def written(example: Example, root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The block as the file it names under ``root``, importable; yields its module name.

    Each folder on the way is a package, so it wins over a namesake in the
    repository (``examples``) while the test runs; sys.modules is put back after.
    """
    assert example.file is not None
    path = root / example.file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(example.source, encoding="utf-8")
    parts = Path(example.file).with_suffix("").parts
    for depth in range(1, len(parts)):
        root.joinpath(*parts[:depth], "__init__.py").touch()
    names = [".".join(parts[:depth]) for depth in range(1, len(parts) + 1)]
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    monkeypatch.syspath_prepend(str(root))  # undone after the test, with load_router's ""
    try:
        yield names[-1]
    finally:
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def test_every_block_is_accounted_for() -> None:
    texts = [page.read_text(encoding="utf-8") for page in PAGES]
    assert len(EXAMPLES) == sum(text.count("```python") for text in texts), (
        "a ```python block the parser did not see")
    marked = [e for e in EXAMPLES if e.not_run is not None]
    assert all(e.not_run for e in marked), "a not-run marker without a reason"
    assert not [e.name for e in marked if e.file is not None], "file blocks always run"
    assert not [e.name for e in EXAMPLES if e.router is not None and e.call is None], (
        "a served example whose page shows no `rtctl call` to it")
    counts = Counter(example.kind for example in EXAMPLES)
    print(f"docs examples: {len(EXAMPLES)} python blocks, all compiled; "
          f"{counts['run']} executed, {counts['import']} imported, "
          f"{counts['serve']} imported and served, {counts['not-run']} marked not-run")
    assert counts["serve"] >= 2  # docs/api.md's mygame/rpc.py and the README's game_rpc.py


@_of("not-run")
def test_marked_block_compiles(example: Example) -> None:
    example.compiled()


@_of("run")
def test_block_runs(example: Example) -> None:
    namespace: dict[str, Any] = {"__name__": "__docs__", **GIVEN}
    result = eval(example.compiled(), namespace)  # exec, but returns the top-level coroutine
    if inspect.iscoroutine(result):
        asyncio.run(asyncio.wait_for(result, 5 * TIMING))


@_of("import", "serve")
async def test_file_block_imports_and_serves(example: Example, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             start_gateway: GatewayFactory) -> None:
    example.compiled()
    with written(example, tmp_path, monkeypatch) as module:
        imported = importlib.import_module(module)
        assert Path(str(imported.__file__)).is_relative_to(tmp_path)  # not a namesake
        if example.router is None:
            return
        call = example.call
        assert call is not None
        async with serving(start_gateway, example.router, user="alice") as ws:
            reply = await rpc(ws, call.method, call.params)
    assert "result" in reply, f"{example.router}: {call.method} answered {reply}"
    if call.shown:
        assert reply["result"] == call.shown[0], (
            f"{example.page} shows {call.shown[0]!r} for {call.method}")
