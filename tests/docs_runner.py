"""Running the docs' command blocks as a reader would: bash in a fresh checkout-like directory.

tests/test_docs_examples.py decides which blocks run (its docstring has the rules); this
module only runs one block. The directory holds a symlink to each top-level entry of the
repository (so ``.venv/bin/rtctl``, ``examples.game_rpc:router`` and ``benchmarks/`` work as
from a checkout) and the page's own file blocks; HOME is inside it (dev mode's secret lands
there) and no ``RTCTL_*`` variable leaks in. When unprivileged user namespaces are available
the block gets a network namespace of its own (``unshare -rn``), so the pages' fixed ports
(8765, 8766, 8767) never meet another test's; else it shares the host's loopback.

Output goes to a file, not a pipe: a background server keeps a pipe open and would hold
the reader until the timeout. The whole process group is killed when the block ends.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

__all__ = ["CONSOLE_STATUS", "console_script", "matches", "run_bash", "sandbox", "split_console"]

ROOT = Path(__file__).resolve().parent.parent
CONSOLE_STATUS = "\x1f"  # starts the line the runner adds after each console command: its $?
_STATUS = re.compile(rf"\n?{CONSOLE_STATUS}(\d+)\n")


@functools.cache
def _isolating() -> list[str]:
    """``unshare -rn`` and bringing its loopback up, if this machine allows it."""
    try:
        subprocess.run(["unshare", "-rn", "ip", "link", "set", "lo", "up"], check=True,
                       capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return ["unshare", "-rn"]


def sandbox(tmp: Path, files: Mapping[str, str]) -> dict[str, str]:
    """Fill ``tmp`` like a checkout with ``files`` (path -> text) added; the environment."""
    for entry in ROOT.iterdir():
        if entry.name not in {".git", "site"}:
            (tmp / entry.name).symlink_to(entry)
    for name, text in files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    home = tmp / ".home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("RTCTL_", "XDG_"))}
    env |= {"HOME": str(home), "PATH": f"{tmp / '.venv' / 'bin'}{os.pathsep}{env['PATH']}",
            "NO_COLOR": "1", "COLUMNS": "100", "TERM": "dumb"}
    return env


def run_bash(script: str, cwd: Path, env: Mapping[str, str], timeout: float) -> tuple[int, str]:
    """Run ``script`` with bash; its exit status and its stdout and stderr, interleaved.

    A block still running after ``timeout`` seconds gets status -9 (and what it printed)."""
    isolate = _isolating()
    prelude = "ip link set lo up\n" if isolate else ""
    log = cwd / ".output"
    with log.open("wb") as out:
        process = subprocess.Popen([*isolate, "bash", "-c", prelude + script], cwd=cwd,
                                   env=dict(env), stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            status = process.wait(timeout)
        except subprocess.TimeoutExpired:
            status = -signal.SIGKILL
        finally:
            with contextlib.suppress(ProcessLookupError):  # the servers the block left behind
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return status, log.read_text(encoding="utf-8", errors="replace")


def console_script(commands: list[str]) -> str:
    """One bash running each ``$`` command in turn, printing its status on a line of its own."""
    return "set -uo pipefail\n" + "".join(
        f"{command}\nprintf '\\n{CONSOLE_STATUS}%d\\n' \"$?\"\n" for command in commands)


def split_console(output: str) -> list[tuple[int, str]]:
    """``console_script``'s output as (status, output) per command that finished."""
    parts = _STATUS.split(output)
    return [(int(parts[i + 1]), parts[i]) for i in range(0, len(parts) - 1, 2)]


def matches(shown: list[str], seen: str) -> bool:
    """Whether the output a page shows is what ran: line by line, trailing blanks ignored,
    a line ``...`` standing for any number of lines."""
    pattern = "".join(r"(?:[^\n]*\n)*?" if line.strip() == "..." else re.escape(line.rstrip())
                      + r"[ \t]*\n" for line in shown)
    text = "".join(line.rstrip() + "\n" for line in seen.splitlines())
    return re.fullmatch(pattern, text) is not None
