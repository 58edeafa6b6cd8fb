"""tests/docs_runner.py: output matching, console splitting, and what a block leaves behind."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests import docs_runner
from tests.conftest import TIMING
from tests.docs_runner import (
    console_script,
    matches,
    require_free_ports,
    run_bash,
    sandbox,
    split_console,
)


@pytest.mark.parametrize(("shown", "seen", "same"), [
    (["[1,\"a\"]"], "[1,\"a\"]\n", True),
    (["a"], "a   \n", True),  # trailing blanks are not the reader's business
    (["a"], "a\nb\n", False),
    (["a", "...", "z"], "a\nb\nc\nz\n", True),
    (["a", "...", "z"], "a\nz\n", True),
    (["a", "...", "z"], "a\nb\n", False),
    ([], "", True),
    ([], "noise\n", False),
])
def test_shown_output_matches_line_by_line(shown: list[str], seen: str, same: bool) -> None:
    assert matches(shown, seen) is same


def test_console_commands_run_in_one_shell_each_with_its_status(tmp_path: Path) -> None:
    env = sandbox(tmp_path, {})
    script = console_script(["export X=1", "echo $X; false", "printf 'no newline'", "echo ok"])
    status, output = run_bash(script, tmp_path, env, 10 * TIMING)
    assert status == 0
    assert split_console(output) == [(0, ""), (1, "1\n"), (0, "no newline"), (0, "ok\n")]


def test_a_block_is_a_checkout_with_its_files_and_no_rtctl_variables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTCTL_TOKEN", "leaked")
    env = sandbox(tmp_path, {"mygame/rpc.py": "x = 1\n"})
    status, output = run_bash("set -euo pipefail\ncat mygame/rpc.py\ntest -x .venv/bin/rtctl\n"
                              "command -v rtctl\necho ${RTCTL_TOKEN:-unset} $HOME",
                              tmp_path, env, 10 * TIMING)
    assert status == 0, output
    assert output.splitlines() == ["x = 1", f"{tmp_path}/.venv/bin/rtctl",
                                   f"unset {tmp_path}/.home"]


def test_background_processes_die_with_the_block(tmp_path: Path) -> None:
    started = time.monotonic()
    status, output = run_bash("sleep 60 &\necho $!", tmp_path, sandbox(tmp_path, {}), 30 * TIMING)
    assert status == 0
    assert time.monotonic() - started < 10 * TIMING  # the block's end, not the sleep's
    deadline = time.monotonic() + 5 * TIMING
    while _alive(int(output)):  # SIGKILL is delivered, not waited for: the exit takes a moment
        assert time.monotonic() < deadline, "the background sleep outlived its block"
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs: neither gone nor a zombie (the sleep's new parent reaps it later)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_a_block_that_outlives_its_timeout_is_killed(tmp_path: Path) -> None:
    status, output = run_bash("echo started\nsleep 60", tmp_path, sandbox(tmp_path, {}), 0.5)
    assert (status, output) == (-9, "started\n")


def test_a_timed_out_block_gets_sigterm_before_sigkill(tmp_path: Path) -> None:
    # what `rtctl conformance client` needs to end its driver, out of the group's reach
    script = "trap 'echo terminated; exit 1' TERM\necho started\nsleep 60 & wait"
    status, output = run_bash(script, tmp_path, sandbox(tmp_path, {}), 0.5)
    assert (status, output) == (-9, "started\nterminated\n")


def test_a_taken_fixed_port_skips_a_block_without_its_own_network(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        require_free_ports("rtctl serve --port 1\n")  # free: nothing happens
        monkeypatch.setattr(docs_runner, "IN_CI", False)
        with pytest.raises(pytest.skip.Exception, match=str(port)):
            require_free_ports(f"rtctl serve --port {port} &\n")
        monkeypatch.setattr(docs_runner, "IN_CI", True)
        with pytest.raises(pytest.fail.Exception, match=str(port)):
            require_free_ports(f"rtctl serve --port={port} &\n")
