"""``rtctl conformance client``: the Python SDK's driver passes every check, and drivers
broken in one way each fail exactly the checks for that rule (tests/conformance/fixtures/)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from urllib.request import urlopen

import pytest
import typer
from typer.testing import CliRunner
from websockets.asyncio.client import connect

from rtctl.cli.conformance_client import client
from rtctl.conformance.results import Outcome, Result
from rtctl.conformance.scenarios import SCENARIOS
from rtctl.conformance.scripted import ScriptedGateway
from rtctl.conformance.scripted_run import run_scenarios, runs, select
from rtctl.exceptions import ConfigError
from rtctl.protocol.codes import ErrorCode
from tests.conformance.test_server import outcomes

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "fixtures"
DOCS = Path(__file__).parents[2] / "docs" / "conformance.md"
DRIVER = [sys.executable, "-m", "rtctl.conformance.driver"]
TIMEOUT = 3.0  # s per expected thing: loopback; a check that waits it out has failed


def fixture(name: str) -> list[str]:
    return [sys.executable, str(FIXTURES / f"{name}.py")]


async def play(command: list[str], *names: str, timeout: float = TIMEOUT) -> list[Result]:
    return await run_scenarios(select(names), command=command, timeout=timeout)


def failed(results: list[Result]) -> set[str]:
    return {r.check for r in results if r.outcome is Outcome.FAIL}


async def test_the_python_sdk_passes_every_check_on_rtctl_v1_binary() -> None:
    results = await play(DRIVER)
    every = {c.id for s in SCENARIOS for c in s.checks}
    assert outcomes(results) == {check: Outcome.SKIP if check == "state.json" else Outcome.PASS
                                 for check in every}, results


async def test_the_python_sdk_applies_the_json_twin_on_rtctl_v1() -> None:
    results = await play([*DRIVER, "--no-binary"], "state")
    assert outcomes(results) == {"state.json": Outcome.PASS, "state.binary": Outcome.SKIP}


def detail(results: list[Result], check: str) -> str:
    return next(r.detail for r in results if r.check == check)


async def test_a_driver_without_backoff_fails_the_backoff_checks_only() -> None:
    results = await play(fixture("no_backoff"), "ping", "close-1001", "close-4008", "drop")
    assert failed(results) == {"close.1001-reconnect", "close.4008-reconnect"}, results
    assert ("attempt 1 waits at least 50 ms; below the protocol's own 50-100 ms (+250)"
            in detail(results, "close.1001-reconnect"))


async def test_a_driver_with_other_backoff_numbers_passes_and_is_told_so() -> None:
    results = await play(fixture("other_numbers"), "close-1001", "close-4008")
    assert set(outcomes(results).values()) == {Outcome.PASS}, results
    assert "above the protocol's own 100-200 ms" in detail(results, "close.4008-reconnect")


async def test_a_driver_whose_backoff_does_not_grow_fails_the_second_attempt() -> None:
    results = await play(fixture("flat_backoff"), "close-1001", "close-4008")
    assert failed(results) == {"close.4008-reconnect"}, results
    assert "attempt 2 waits at least 100 ms" in detail(results, "close.4008-reconnect")


async def test_a_driver_that_never_reconnects_fails_from_the_first_close_on() -> None:
    results = await play(fixture("never_reconnects"), "ping", "close-1001", "close-4008")
    assert outcomes(results) == {"heartbeat.pong": Outcome.PASS,
                                 "close.1001-reconnect": Outcome.FAIL,
                                 "recovery.token-offered": Outcome.FAIL,
                                 "close.4008-reconnect": Outcome.FAIL}
    # The run lost its client: the later scenario fails with that cause, not its own wait.
    assert {r.detail for r in results if r.outcome is Outcome.FAIL} == {
        f"no reconnection after 1001 within {TIMEOUT:g} s"}


async def test_a_driver_that_reconnects_after_4009_and_4003_fails_those() -> None:
    results = await play(fixture("reconnects_after_stop"), "ping", "close-4009", "close-4003")
    assert outcomes(results) == {"heartbeat.pong": Outcome.PASS,
                                 "close.4009-no-reconnect": Outcome.FAIL,
                                 "close.4003-no-reconnect": Outcome.FAIL}


async def test_a_driver_that_keeps_its_expired_token_fails_the_4001_check_only() -> None:
    results = await play(fixture("stale_token"), "ping", "close-4001")
    assert outcomes(results) == {"heartbeat.pong": Outcome.PASS,
                                 "close.4001-new-token": Outcome.FAIL}
    assert "refused: expired" in results[-1].detail


async def test_a_driver_that_loses_since_fails_the_replay_only() -> None:
    results = await play(fixture("loses_since"), "drop", "replay")
    assert failed(results) == {"replay.since"}, results
    assert "since=None" in next(r.detail for r in results if r.check == "replay.since")


async def test_a_driver_that_sends_an_unkeyed_call_again_fails_at_once() -> None:
    results = await play(fixture("keys_everything"), "drop", timeout=5.0)
    assert outcomes(results) == {"drop.keyed-resent": Outcome.PASS,
                                 "drop.unkeyed-lost": Outcome.FAIL}
    assert detail(results, "drop.unkeyed-lost") == (
        "drop.plain, which had no idempotency_key, was sent again on the next connection")
    assert results[0].seconds < 5.0  # not a wait for an outcome that never comes


async def test_room_join_without_params_is_invalid_params() -> None:
    async with ScriptedGateway() as gw:
        token = await asyncio.to_thread(lambda: urlopen(gw.token_url).read().decode())
        async with connect(gw.url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "method": "room.join", "id": 1}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert reply["error"]["code"] == ErrorCode.INVALID_PARAMS, reply


async def test_a_client_that_drops_on_a_ping_fails_that_check_and_the_run_goes_on() -> None:
    results = await play(fixture("drops_on_ping"), "ping", "error", timeout=1.0)
    assert outcomes(results) == {"heartbeat.pong": Outcome.FAIL,
                                 "call.error-intact": Outcome.FAIL}
    assert results[0].detail.startswith("the client's connection closed mid-scenario")
    assert results[1].detail == "no connection from the client within 1 s"


async def test_a_driver_that_exits_at_once_fails_everything_with_that_cause() -> None:
    results = await play([sys.executable, "-c", "pass"])
    assert {r.outcome for r in results} == {Outcome.FAIL}
    assert {r.detail for r in results} == {"the driver exited with status 0 before connecting"}


async def test_a_silent_client_fails_everything_within_the_timeout() -> None:
    started = time.monotonic()
    results = await play([sys.executable, "-c", "import time; time.sleep(60)"], timeout=1.0)
    assert {r.outcome for r in results} == {Outcome.FAIL}
    assert {r.detail for r in results} == {"no connection from the client within 1 s"}
    assert time.monotonic() - started < 1.0 + 3.0  # one wait, then the process is ended


async def test_a_scenarios_time_is_counted_once_on_its_first_check() -> None:
    reconnect, token = await play(DRIVER, "close-1001")
    assert (reconnect.outcome, token.outcome) == (Outcome.PASS, Outcome.PASS)
    assert reconnect.seconds > 0
    assert token.seconds == 0


def test_the_summary_reports_the_runs_wall_time() -> None:
    # A no-show: no check owns the wait for a connection, the summary counts it anyway.
    result = CliRunner().invoke(_app(), ["client", "--timeout", "1", "--scenario", "ping", "--",
                                         sys.executable, "-c", "import time; time.sleep(60)"])
    summary = result.stdout.rstrip().rsplit("\n", 1)[-1]
    assert summary.startswith("0 passed, 1 failed, 0 skipped in ")
    assert float(summary.split(" in ")[1].removesuffix(" s")) >= 1.0


async def test_a_client_started_by_hand_gets_the_longer_wait_to_connect() -> None:
    announced: list[str] = []
    results = await run_scenarios(select(["ping"]), command=[], timeout=5.0, first_wait=0.5,
                                  announce=lambda gw: announced.append(gw.url))
    assert len(announced) == 1
    assert [r.detail for r in results] == ["no connection from the client within 0.5 s"]


def test_the_docs_table_cites_the_sections_the_report_prints() -> None:
    text = DOCS.read_text()
    table = text[text.index("### The client checks"):text.index("**The backoff floor**")]
    rows = [line.split("|")[1:5] for line in table.splitlines() if line.startswith("| `")]
    documented = {cells[1].strip(" `"): (cells[0].strip(" `"), cells[2].strip())
                  for cells in rows}
    assert documented == {c.id: (s.name, c.section) for s in SCENARIOS for c in s.checks}


def test_scenarios_are_cut_into_runs_at_the_ones_that_end_the_client() -> None:
    names = [[s.name for s in run] for run in runs(select([]))]
    assert names == [["ping", "error", "order", "close-1001", "close-4008", "close-4001",
                      "drop", "replay", "state"], ["close-4009"], ["close-4003"]]
    assert [[s.name for s in run] for run in runs(select(["close-4003", "ping"]))] == [
        ["ping"], ["close-4003"]]


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("client")(client)
    app.callback()(lambda: None)
    return app


async def kit(*args: str, driver: str = "says_connected") -> asyncio.subprocess.Process:
    """``rtctl conformance client ARGS`` as its own process, with a chatty driver."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtctl", "conformance", "client", *args, "--",
        *fixture(driver), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)


async def test_json_output_stays_clean_of_what_the_driver_prints() -> None:
    process = await kit("--json", "--scenario", "ping")
    async with asyncio.timeout(30):
        stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr
    report = json.loads(stdout)  # the whole of it: the driver's line went to stderr
    assert (report["passed"], report["failed"], report["results"][0]["check"]) == (
        1, 0, "heartbeat.pong")
    assert b"connected " in stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize(("driver", "when", "args"), [
    ("says_connected", b"connected ", ()),  # mid-run
    ("ignores_done", b"done ", ("--scenario", "ping")),  # waiting for it to exit after done
])
async def test_a_signal_to_the_command_ends_the_driver_too(
        sig: signal.Signals, driver: str, when: bytes, args: tuple[str, ...]) -> None:
    process = await kit("--timeout", "20", *args, driver=driver)
    assert process.stderr is not None
    pid: int | None = None
    try:
        async with asyncio.timeout(30):
            while not (line := await process.stderr.readline()).startswith(when):
                assert line, f"the kit ended before its driver printed {when!r}"
            pid = int(line.split()[1])
            process.send_signal(sig)
            await process.wait()
        assert process.returncode == 128 + sig
        with pytest.raises(ProcessLookupError):  # ended and reaped by the kit
            os.kill(pid, 0)
    finally:  # a kit that left it running fails above; the test leaves nothing behind
        if process.returncode is None:
            process.kill()
            await process.wait()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_the_command_exits_0_when_nothing_failed() -> None:
    result = CliRunner().invoke(_app(), ["client", "--scenario", "ping", "--", *DRIVER])
    assert result.exit_code == 0, result.output
    assert "1 passed, 0 failed" in result.stdout


def test_the_command_exits_1_when_a_check_failed() -> None:
    result = CliRunner().invoke(_app(), ["client", "--timeout", "1", "--scenario", "error",
                                         "--", sys.executable, "-c", "pass"])
    assert result.exit_code == 1
    assert "0 passed, 1 failed" in result.stdout


def test_an_unknown_scenario_is_one_clear_error() -> None:
    result = CliRunner().invoke(_app(), ["client", "--scenario", "pong", "--", *DRIVER])
    assert isinstance(result.exception, ConfigError)
    assert "no scenario 'pong'; known: ping, error" in str(result.exception)
