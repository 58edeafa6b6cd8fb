"""``rtctl conformance client``: the Python SDK's driver passes every check, and drivers
broken in one way each fail exactly the checks for that rule (tests/conformance/fixtures/)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rtctl.cli.conformance_client import client
from rtctl.conformance.results import Outcome, Result
from rtctl.conformance.scenarios import SCENARIOS
from rtctl.conformance.scripted_run import run_scenarios, runs, select
from rtctl.exceptions import ConfigError

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "fixtures"
DRIVER = [sys.executable, "-m", "rtctl.conformance.driver"]
TIMEOUT = 3.0  # s per expected thing: loopback; a check that waits it out has failed


def fixture(name: str) -> list[str]:
    return [sys.executable, str(FIXTURES / f"{name}.py")]


async def play(command: list[str], *names: str, timeout: float = TIMEOUT) -> list[Result]:
    return await run_scenarios(select(names), command=command, timeout=timeout)


def outcomes(results: list[Result]) -> dict[str, Outcome]:
    return {r.check: r.outcome for r in results}


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


async def test_a_driver_without_backoff_fails_the_backoff_windows_only() -> None:
    results = await play(fixture("no_backoff"), "ping", "close-1001", "close-4008", "drop")
    assert failed(results) == {"close.1001-reconnect", "close.4008-reconnect"}, results
    assert "attempt 1 waits 50-100 ms" in next(r.detail for r in results
                                               if r.check == "close.1001-reconnect")


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


def test_the_command_prints_json_and_exits_0_when_nothing_failed() -> None:
    result = CliRunner().invoke(_app(), ["client", "--json", "--scenario", "ping", "--", *DRIVER])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.splitlines()[-1])
    assert (report["passed"], report["failed"], report["results"][0]["check"]) == (
        1, 0, "heartbeat.pong")


def test_the_command_exits_1_when_a_check_failed() -> None:
    result = CliRunner().invoke(_app(), ["client", "--timeout", "1", "--scenario", "error",
                                         "--", sys.executable, "-c", "pass"])
    assert result.exit_code == 1
    assert "0 passed, 1 failed" in result.stdout


def test_an_unknown_scenario_is_one_clear_error() -> None:
    result = CliRunner().invoke(_app(), ["client", "--scenario", "pong", "--", *DRIVER])
    assert isinstance(result.exception, ConfigError)
    assert "no scenario 'pong'; known: ping, error" in str(result.exception)
