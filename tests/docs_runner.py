"""Running the docs' command blocks as a reader would: bash in a fresh checkout-like directory.

tests/test_docs_examples.py decides which blocks run (its docstring has the rules); this
module only runs one block. The directory holds a symlink to each top-level entry of the
repository (so ``.venv/bin/rtctl``, ``examples.game_rpc:router`` and ``benchmarks/`` work as
from a checkout) and the page's own file blocks; HOME is inside it (dev mode's secret lands
there) and no ``RTCTL_*`` variable leaks in. When unprivileged user namespaces are available
the block gets a network namespace of its own (``unshare -rn``), so the pages' fixed ports
(8765, 8766, 8767) never meet another test's; else it shares the host's loopback (a
warning says so once), and a block naming a fixed port that something else holds is
skipped (failed under CI): its own server would fail in the background while its
readiness checks succeeded against the stranger, a developer's Redis say.

A served console block (tests/test_docs_examples.py) never runs here: its ``rtctl serve``
banner is not compared.

Output goes to a file, not a pipe: a background server keeps a pipe open and would hold
the reader until the timeout. The whole process group is killed when the block ends. A
block that times out gets SIGTERM first and ~2 s to go: ``rtctl conformance client`` ends
its driver, which runs in a session of its own out of the group's reach, only then.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.conftest import IN_CI

__all__ = ["CONSOLE_STATUS", "console_script", "matches", "require_free_ports", "run_bash",
           "sandbox", "split_console"]

ROOT = Path(__file__).resolve().parent.parent
CONSOLE_STATUS = "\x1f"  # starts the line the runner adds after each console command: its $?
_STATUS = re.compile(rf"\n?{CONSOLE_STATUS}(\d+)\n")
# the fixed ports the pages use (gateway, simulator, its stats; Redis; NATS and its monitor)
_PORTS = re.compile(r"\b(8765|8766|8767|6379|4222|8222)\b|--port[ =](\d+)")
_GRACE = 2.0  # seconds a timed-out block has between SIGTERM and SIGKILL


@functools.cache
def _isolating() -> list[str]:
    """``unshare -rn`` and bringing its loopback up, if this machine allows it."""
    try:
        subprocess.run(["unshare", "-rn", "ip", "link", "set", "lo", "up"], check=True,
                       capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        warnings.warn("no network namespace (unshare -rn refused): docs blocks use this "
                      "machine's loopback; a block whose fixed port is taken is skipped",
                      stacklevel=2)
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


def _taken(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def require_free_ports(script: str) -> None:
    """Skip (fail under CI) a block sharing the host's loopback whose fixed ports are taken."""
    ports = {int(a or b) for a, b in _PORTS.findall(script)}
    taken = sorted(port for port in ports if _taken(port))
    if taken:
        message = f"ports {taken} are taken and this machine gives blocks no network namespace"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the block's group, then up to ``_GRACE`` s for it to empty (polled: no
    event tells when the last member of a process group is gone)."""
    deadline = time.monotonic() + _GRACE
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(_GRACE)  # reaped, or the group would never look empty
    with contextlib.suppress(ProcessLookupError):
        while time.monotonic() < deadline:
            os.killpg(process.pid, 0)
            time.sleep(0.05)


def run_bash(script: str, cwd: Path, env: Mapping[str, str], timeout: float) -> tuple[int, str]:
    """Run ``script`` with bash; its exit status and its stdout and stderr, interleaved.

    A block still running after ``timeout`` seconds gets status -9 (and what it printed)."""
    isolate = _isolating()
    if not isolate:
        require_free_ports(script)
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
            _terminate(process)
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
