"""The docs' ```sh and ```console blocks run, and every rtctl command they show exists.

The rules for writers are at the top of tests/test_docs_examples.py (this module runs
the command half of them; that one the python blocks and the serve+call convention).
Even a block marked not-run is read: each ``rtctl`` command in it must name a command
and ``--options`` the CLI has today (``rtctl X --help``), so a renamed flag is caught
on every page. ``test_every_command_block_is_accounted_for`` prints what ran, page by
page (``pytest -rP`` shows it).
"""

from __future__ import annotations

import re
import shlex
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.core import TyperGroup

from rtctl.cli import app
from tests.conftest import TIMING, require_program
from tests.docs_runner import console_script, matches, run_bash, sandbox, split_console
from tests.test_docs import fences
from tests.test_docs_examples import (
    _BEFORE,
    _NOT_RUN,
    _SHELL,
    EXAMPLES,
    PAGES,
    ROOT,
    preceding,
)

BLOCK_TIMEOUT = 20 * TIMING  # seconds a command block may run, its servers included
_RTCTL = re.compile(r"(?:^|/|\$\()rtctl$")  # rtctl, .venv/bin/rtctl, $(rtctl
_EXPECTED = re.compile(r'\|\|\s*echo\s+"exit \$\?"(?:\s*#\s*exit (\d+)\b)?')  # `# exit N`
_AND = re.compile(r"^(?!\s*(?:if|elif|while|until)\b)[^#]*&&")  # set -e ignores `a` in `a && b`
_EXPORT = re.compile(r"\bexport\s+\w+=\$\(")  # export's status hides the command's
_PROGRAMS = re.compile(r"(?:^|[|;&(]|\$\()\s*(node|redis-server|nats-server|jq|openssl)\b",
                       re.MULTILINE)  # programs not every machine has, where they start a command
_END = {"|", "||", "&&", ";", "&", ">", ">>", "2>&1", "--"}  # where one command's words stop


@dataclass(frozen=True)
class Block:
    """A ```sh or ```console block, with the markers before it."""

    page: str
    line: int
    info: str
    body: str
    not_run: str | None
    before: str | None  # shell run first, unseen
    served: bool  # its ``rtctl serve --router`` is the python serve convention's

    @property
    def kind(self) -> str:
        if self.not_run is not None:
            return "not-run"
        return "served" if self.served else "console" if self.info == "console" else "sh"

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"

    def console(self) -> list[tuple[str, list[str]]]:
        """Each ``$`` command with the output lines shown after it."""
        steps: list[tuple[str, list[str]]] = []
        for line in self.body.splitlines():
            if line.startswith("$ "):
                steps.append((line.removeprefix("$ "), []))
            else:
                assert steps, f"{self.name}: output before the first $ command"
                steps[-1][1].append(line)
        return steps


def blocks(page: Path) -> Iterator[Block]:
    text = page.read_text(encoding="utf-8")
    lines = text.splitlines()
    routers = {e.router for e in EXAMPLES if e.page == str(page.relative_to(ROOT)) and e.router}
    for fence in fences(text):
        if fence.info not in _SHELL:
            continue
        before_fence = preceding(lines, fence)
        marker, before = _NOT_RUN.fullmatch(before_fence), _BEFORE.fullmatch(before_fence)
        served = fence.info == "console" and any(
            re.search(rf"rtctl serve .*--router {re.escape(router)}(\s|$)(?!.*&$)", line)
            for line in fence.body.splitlines() if line.startswith("$ ") for router in routers)
        yield Block(str(page.relative_to(ROOT)), fence.opening, fence.info, fence.body,
                    marker.group(1) if marker else None, before.group(1) if before else None,
                    served)


BLOCKS = [block for page in PAGES for block in blocks(page)]


def page_files(page: str) -> dict[str, str]:
    """The page's file blocks a reader would create: those not in the repository already."""
    return {e.file: e.source for e in EXAMPLES
            if e.page == page and e.file and not (ROOT / Path(e.file).parts[0]).exists()}


def command_lines(block: Block) -> Iterator[str]:
    """The block's command lines, continuations joined; a console block's ``$`` lines only."""
    for line in block.body.replace("\\\n", " ").splitlines():
        if block.info != "console":
            yield line
        elif line.startswith("$ "):
            yield line.removeprefix("$ ")


def aliases(block: Block) -> frozenset[str]:
    """The words standing for rtctl in ``block``: ``$RTCTL`` if it sets RTCTL to an rtctl."""
    defined = re.search(r"\bRTCTL=\S*rtctl\b", block.body)
    return frozenset({"$RTCTL", "${RTCTL}"} if defined else ())


def unknown_options(line: str, cli: Any, rtctl: frozenset[str] = frozenset()) -> Iterator[str]:
    """Each command or option of an ``rtctl`` command in ``line`` that ``cli`` lacks.

    ``cli`` is typer's command tree (typer brings its own click: groups have ``commands``);
    ``rtctl`` the variables naming it. A quoted ``"$(...)"`` is a command line of its own."""
    words = shlex.split(line, comments=True)
    for word in words:
        for inner in re.findall(r"\$\(([^()]*)\)", word):
            yield from unknown_options(inner, cli, rtctl)
    for index, word in enumerate(words):
        if word not in rtctl and (not _RTCTL.search(word) or ("=" in word and "$(" not in word)):
            continue  # not a call of rtctl (RTCTL=$PWD/.venv/bin/rtctl names it)
        command = cli
        path = "rtctl"
        valued = False  # the word is the value of the option before it
        for following in words[index + 1:]:
            word = following.rstrip(");")  # $(rtctl token --sub a); cmd1; cmd2
            if word in _END or word.startswith(">"):
                break
            if valued:
                valued = False
            elif isinstance(command, TyperGroup) and not word.startswith("-"):
                sub = command.get_command(typer.Context(command), word)
                if sub is None:
                    yield f"{path} has no command {word!r}"
                    break
                command, path = sub, f"{path} {word}"
            elif re.match(r"-[A-Za-z]|--", word):
                name, equals, _ = word.partition("=")
                options = {o: p for p in command.params for o in [*p.opts, *p.secondary_opts]}
                if name in options:
                    option = options[name]
                    valued = not (equals or getattr(option, "is_flag", True)
                                  or getattr(option, "count", False))
                elif name != "--help":
                    yield f"{path} has no option {name}"
            if word != following:
                break


def stray_markers(page: Path) -> Iterator[str]:
    """Where a marker is not on the line before a block that runs (so it means nothing)."""
    text = page.read_text(encoding="utf-8")
    runs = {fence.opening for fence in fences(text) if fence.info in {"python", *_SHELL}}
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if _NOT_RUN.search(line) or _BEFORE.search(line):
            following = next((n for n in range(number + 1, len(lines) + 1)
                              if lines[n - 1].strip()), None)
            if following not in runs or not (_NOT_RUN.fullmatch(line.strip())
                                             or _BEFORE.fullmatch(line.strip())):
                yield f"{page.relative_to(ROOT)}:{number}"


def test_every_fence_has_a_language() -> None:
    untagged = [f"{page.relative_to(ROOT)}:{fence.opening}" for page in PAGES
                for fence in fences(page.read_text(encoding="utf-8")) if not fence.info]
    assert untagged == [], "tag these fences: sh or console if a command, else text, json..."


def test_unknown_commands_and_options_are_found() -> None:
    cli = typer.main.get_command(app)
    line = ("TOKEN=$(rtctl token --sub a --nope) && .venv/bin/rtctl simulate set --loss 5% "
            "--bogus=1; rtctl simulate --latency 50ms --list-profiles | rtctl frobnicate; "
            "RTCTL=$PWD/.venv/bin/rtctl --fine # rtctl --comment")
    assert list(unknown_options(line, cli)) == [
        "rtctl token has no option --nope", "rtctl simulate set has no option --bogus",
        "rtctl has no command 'frobnicate'"]
    quoted = 'X="$(rtctl token --sub a -q)"; $RTCTL tokn'
    assert list(unknown_options(quoted, cli, frozenset({"$RTCTL"}))) == [
        "rtctl token has no option -q", "rtctl has no command 'tokn'"]


def test_every_rtctl_command_shown_exists() -> None:
    cli = typer.main.get_command(app)
    wrong = [f"{block.name}: {problem}" for block in BLOCKS for line in command_lines(block)
             for problem in unknown_options(line, cli, aliases(block))]
    assert wrong == [], "check them against `rtctl COMMAND --help`"


def test_every_command_block_is_accounted_for() -> None:
    kinds = Counter(block.kind for block in BLOCKS)
    print(f"docs command blocks: {len(BLOCKS)}; {kinds['sh']} sh and {kinds['console']} console "
          f"run, {kinds['served']} served, {kinds['not-run']} marked not-run")
    for page in PAGES:
        mine = Counter(block.kind for block in BLOCKS if block.page == str(page.relative_to(ROOT)))
        if mine:
            print(f"  {page.relative_to(ROOT)}: sh {mine['sh']}, console {mine['console']}, "
                  f"served {mine['served']}, not-run {mine['not-run']}")
    texts = [page.read_text(encoding="utf-8") for page in PAGES]
    assert len(BLOCKS) == sum(text.count(f"```{info}\n") for text in texts for info in _SHELL), (
        "a command block the parser did not see")
    assert [stray for page in PAGES for stray in stray_markers(page)] == [], (
        "markers belong on the line before a python, sh or console block")
    assert all(b.not_run or b.before for b in BLOCKS if b.not_run is not None
               or b.before is not None), "a marker without a reason or a command"
    assert set(kinds) <= {"sh", "console", "served", "not-run"}


def unstopped(block: Block) -> Iterator[str]:
    """Where a failing command would not fail the block: ``&&`` outside a condition or
    ``export X=$(...)`` where ``set -e`` stops a block (sh, ``before:``; a console block
    checks each line's status), ``|| echo "exit $?"`` without ``# exit N``."""
    shell = [] if block.info == "console" else list(command_lines(block))
    for line in [*shell, *([block.before] if block.before else [])]:  # under set -e
        if _AND.search(line):
            yield f"{block.name}: `{line.strip()}`: write the commands on lines of their own"
        if _EXPORT.search(line):
            yield f"{block.name}: `{line.strip()}`: write X=$(...); export X"
    for line in command_lines(block):
        expected = _EXPECTED.search(line)
        if expected and expected.group(1) is None:
            yield f"{block.name}: `{line.strip()}`: add the status it exits with: # exit N"


def test_a_failure_that_would_pass_is_found() -> None:
    body = ('a && b\nif a && b; then :; fi\nexport X=$(false)\nc || echo "exit $?"\n'
            'd || echo "exit $?"  # exit 3, error 4001\n')
    block = Block("p.md", 1, "sh", body, None, "{ e && f; }", False)
    assert [problem.partition("`")[2] for problem in unstopped(block)] == [
        "a && b`: write the commands on lines of their own",
        "export X=$(false)`: write X=$(...); export X",
        "{ e && f; }`: write the commands on lines of their own",
        'c || echo "exit $?"`: add the status it exits with: # exit N']


def test_every_failing_command_fails_its_block() -> None:
    assert [problem for block in BLOCKS if block.kind != "not-run"
            for problem in unstopped(block)] == []


def _require_programs(block: Block) -> None:
    for name in sorted(set(_PROGRAMS.findall(f"{block.before or ''}\n{block.body}"))):
        require_program(name)


def _commands_of(*kinds: str) -> pytest.MarkDecorator:
    chosen = [block for block in BLOCKS if block.kind in kinds]
    return pytest.mark.parametrize("block", chosen, ids=[b.name for b in chosen])


def _before(block: Block) -> str:
    return f"{{ {block.before}\n}} >/dev/null 2>&1\n" if block.before else ""


@_commands_of("sh")
def test_shell_block_runs(block: Block, tmp_path: Path) -> None:
    _require_programs(block)
    env = sandbox(tmp_path, page_files(block.page))
    script = "set -euo pipefail\n" + _before(block) + block.body
    status, output = run_bash(script, tmp_path, env, BLOCK_TIMEOUT)
    assert status == 0, f"{block.name} exited {status}:\n{output[-4000:]}"
    for line in command_lines(block):
        expected = _EXPECTED.search(line)
        assert expected is None or f"exit {expected.group(1)}\n" in output, (
            f"{block.name}: `{line}` did not exit {expected.group(1)}:\n{output[-4000:]}")


@_commands_of("console")
def test_console_block_shows_what_runs(block: Block, tmp_path: Path) -> None:
    steps = block.console()
    _require_programs(block)
    env = sandbox(tmp_path, page_files(block.page))
    script = console_script([command for command, _ in steps])
    status, output = run_bash(script.replace("\n", "\n" + _before(block), 1), tmp_path, env,
                              BLOCK_TIMEOUT)
    ran = split_console(output)
    assert len(ran) == len(steps), f"{block.name} stopped ({status}) after {len(ran)}:\n{output}"
    for (command, shown), (code, seen) in zip(steps, ran, strict=True):
        assert code == 0, f"{block.name}: `{command}` exited {code}:\n{seen}"
        assert matches(shown, seen), (
            f"{block.name}: `{command}` printed\n{seen}\nbut the page shows\n" + "\n".join(shown))
