"""``rtctl conformance server`` against our gateway (passes), broken servers (fail the right
checks) and no server at all (fails every check with the connect error, at once)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import typer
from typer.testing import CliRunner
from websockets.asyncio.server import ServerConnection, serve

from rtctl.bench.cluster import free_port
from rtctl.cli.conformance_server import server
from rtctl.cli.devsecret import dev_secret_path, load_or_create_dev_secret
from rtctl.cli.serve import BUILTIN_ROOM_TYPES
from rtctl.config import TRANSPORTS, Heartbeat, Limits
from rtctl.conformance.results import Outcome, Result
from rtctl.conformance.server import CHECKS, Target, run_checks, select_checks
from rtctl.exceptions import ConfigError
from rtctl.gateway.auth import AuthConfig
from rtctl.services import builtin_services
from tests.conftest import SECRET, TIMING, GatewayFactory, make_token

TIMEOUT = 2.0 * TIMING  # per wait of a check; our gateway answers in milliseconds


def outcomes(results: list[Result]) -> dict[str, Outcome]:
    return {r.check: r.outcome for r in results}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_our_gateway_passes_every_check(start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(services=builtin_services(room_types=BUILTIN_ROOM_TYPES),
                                  heartbeat=Heartbeat(interval=0.1))
    results = await run_checks(Target(url=gateway.url, jwt_secret=SECRET, timeout=TIMEOUT))
    failed = [(r.check, r.detail) for r in results if r.outcome is not Outcome.PASS]
    assert failed == []
    assert [r.check for r in results] == [c.id for c in CHECKS]


async def test_what_cannot_be_checked_is_skipped_with_the_reason(
        start_gateway: GatewayFactory) -> None:
    # One given token, no secret, no stateful room type: the checks that need more skip.
    gateway = await start_gateway()
    target = Target(url=gateway.url, tokens=(make_token("alice"),), timeout=TIMEOUT,
                    state_rooms=("drift",))
    ids = ["auth.header", "auth.expired", "presence.changed", "state.json"]
    results = {r.check: r for r in await run_checks(target, select_checks(ids))}
    assert results["auth.header"].outcome is Outcome.PASS
    assert {i: results[i].outcome for i in ids[1:]} == dict.fromkeys(ids[1:], Outcome.SKIP)
    assert "--jwt-secret" in results["auth.expired"].detail
    assert "2 tokens" in results["presence.changed"].detail
    assert "no stateful room" in results["state.json"].detail
    assert results["state.json"].detail.endswith(
        "start the gateway with --room-type drift, or give --state-room NAME")


async def test_a_server_that_does_not_ping_within_the_interval_fails(
        start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(heartbeat=Heartbeat(interval=3600))
    [result] = await run_checks(Target(url=gateway.url, jwt_secret=SECRET, timeout=0.2,
                                       ping_interval=0.1),
                                select_checks(["heartbeat.server-ping"]))
    assert result.outcome is Outcome.FAIL
    assert result.detail == "no ping within 0.3 s (--ping-interval 0.1 s + --timeout 0.2 s)"


async def test_one_connection_per_user_is_enough(start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(limits=Limits(max_connections_per_user=1))
    results = await run_checks(Target(url=gateway.url, jwt_secret=SECRET, timeout=TIMEOUT),
                               select_checks(["subprotocol.binary-preferred"]))
    assert [(r.outcome, r.detail) for r in results] == [
        (Outcome.PASS, "rtctl.v1.binary over rtctl.v1; rtctl.v1 alone when offered alone")]


async def _sloppy(ws: ServerConnection) -> None:
    """Accepts any upgrade, answers every call with a result, a parse error with id 0."""
    async for message in ws:
        try:
            request = json.loads(message)
        except ValueError:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 0,
                                      "error": {"code": -32700, "message": "Parse error"}}))
            continue
        if isinstance(request, dict) and "id" in request:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": request["id"],
                                      "result": {"time": 1}}))


@contextlib.asynccontextmanager
async def ws_server(handler: Callable[[ServerConnection], Awaitable[None]],
                    ) -> AsyncIterator[str]:
    """A WebSocket server on loopback running ``handler``: its URL."""
    async with serve(handler, "127.0.0.1", 0) as listener:
        port = next(iter(listener.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws"


@pytest.fixture
async def sloppy_url() -> AsyncIterator[str]:
    async with ws_server(_sloppy) as url:
        yield url


async def test_a_broken_server_fails_the_checks_it_breaks(sloppy_url: str) -> None:
    checks = select_checks(["jsonrpc.parse-error", "auth.no-token", "jsonrpc.method-not-found",
                            "jsonrpc.id-types", "heartbeat.sys-ping"])
    results = await run_checks(Target(url=sloppy_url, jwt_secret=SECRET, timeout=TIMEOUT),
                               checks)
    assert outcomes(results) == {
        "jsonrpc.parse-error": Outcome.FAIL,
        "auth.no-token": Outcome.FAIL,
        "jsonrpc.method-not-found": Outcome.FAIL,
        "jsonrpc.id-types": Outcome.PASS,
        "heartbeat.sys-ping": Outcome.PASS,
    }
    details = {r.check: r.detail for r in results}
    assert "id must be null" in details["jsonrpc.parse-error"]
    assert details["auth.no-token"] == "the upgrade was accepted"


async def test_a_dead_port_fails_every_check_with_the_connect_error() -> None:
    target = Target(url=f"ws://127.0.0.1:{free_port()}/ws", jwt_secret=SECRET, timeout=TIMEOUT)
    results = await run_checks(target)
    assert {r.outcome for r in results} == {Outcome.FAIL}
    assert len(results) == len(CHECKS)
    assert results[0].detail.startswith("cannot connect to ")
    assert all(r.detail == f"not run: {results[0].detail}" for r in results[1:])


async def test_a_server_silent_at_the_upgrade_fails_every_check_after_one_timeout() -> None:
    accepted = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()  # never answers; returns when the kit hangs up
        writer.close()

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    async with listener:
        port = listener.sockets[0].getsockname()[1]
        results = await run_checks(Target(url=f"ws://127.0.0.1:{port}/ws",
                                          jwt_secret=SECRET, timeout=0.3))
    assert accepted.is_set()
    assert {r.outcome for r in results} == {Outcome.FAIL}
    assert "TimeoutError" in results[0].detail
    assert all(r.detail.startswith("not run: cannot connect") for r in results[1:])


async def test_a_server_silent_after_the_upgrade_fails_every_check_after_one_timeout() -> None:
    async def mute(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with ws_server(mute) as url:
        results = await run_checks(Target(url=url, jwt_secret=SECRET, timeout=0.3))
    assert {r.outcome for r in results} == {Outcome.FAIL}
    assert results[0].detail.startswith("server silent: nothing received within 0.3 s")
    assert all(r.detail == f"not run: {results[0].detail}" for r in results[1:])


async def _forgetful(ws: ServerConnection) -> None:
    """Answers every call (session.info with a user) except sys.ping, which it never answers."""
    async for message in ws:
        request = json.loads(message)
        if request.get("method") != "sys.ping":
            result = {"user": "u"} if request.get("method") == "session.info" else {}
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}))


@pytest.fixture
async def forgetful_url() -> AsyncIterator[str]:
    async with ws_server(_forgetful) as url:
        yield url


async def test_one_method_never_answered_fails_its_check_only(forgetful_url: str) -> None:
    header, query, sys_ping = select_checks(["auth.header", "auth.query", "heartbeat.sys-ping"])
    results = await run_checks(Target(url=forgetful_url, jwt_secret=SECRET, timeout=0.3),
                               [header, sys_ping, query])
    assert [r.outcome for r in results] == [Outcome.PASS, Outcome.FAIL, Outcome.PASS]
    assert results[1].detail == "no reply to id 1 within 0.3 s"


async def test_no_reply_in_two_checks_in_a_row_fails_the_rest_at_once(forgetful_url: str) -> None:
    header, query, sys_ping = select_checks(["auth.header", "auth.query", "heartbeat.sys-ping"])
    results = await run_checks(Target(url=forgetful_url, jwt_secret=SECRET, timeout=0.3),
                               [header, sys_ping, sys_ping, query])
    assert [r.outcome for r in results] == [Outcome.PASS] + [Outcome.FAIL] * 3
    assert results[3].detail == ("not run: the server stopped answering (2 checks in a row: "
                                 "no reply to id 1 within 0.3 s)")


async def _lossy(ws: ServerConnection) -> None:
    """Answers sys.ping only: every other reply is lost."""
    async for message in ws:
        request = json.loads(message)
        if request.get("method") == "sys.ping":
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": request["id"],
                                      "result": {"time": 1}}))


async def test_two_lost_replies_in_a_row_do_not_end_a_run_the_server_still_answers() -> None:
    header, query, sys_ping = select_checks(["auth.header", "auth.query", "heartbeat.sys-ping"])
    async with ws_server(_lossy) as url:
        results = await run_checks(Target(url=url, jwt_secret=SECRET, timeout=0.3),
                                   [sys_ping, header, query, sys_ping])
    assert [r.outcome for r in results] == [Outcome.PASS, Outcome.FAIL, Outcome.FAIL,
                                            Outcome.PASS]  # a fresh sys.ping was answered


async def test_a_server_that_never_speaks_json_rpc_fails_the_run_after_one_timeout() -> None:
    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with ws_server(echo) as url:
        started = asyncio.get_running_loop().time()
        results = await run_checks(Target(url=url, jwt_secret=SECRET, timeout=0.3))
        elapsed = asyncio.get_running_loop().time() - started
    assert {r.outcome for r in results} == {Outcome.FAIL}
    cause = next(r.detail for r in results if r.detail.startswith("nothing the server sent"))
    assert "was a JSON-RPC 2.0 response (first: " in cause
    assert results[-1].detail == f"not run: {cause}"
    assert elapsed < 2.0  # one wait of 0.3 s and a few quick failures, not one per check


async def test_a_refused_token_fails_the_run_once_saying_so(
        start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway()
    expired = make_token("alice", ttl=None, exp=1)
    results = await run_checks(Target(url=gateway.url, tokens=(expired,), timeout=TIMEOUT))
    assert results[0].detail == ("the server refused --token 1 (alice's) "
                                 "(HTTP 401, reason expired)")
    assert {r.detail for r in results[1:]} <= {f"not run: {results[0].detail}"}


async def test_the_same_token_twice_skips_the_two_user_checks(
        start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway()
    alice = make_token("alice")
    results = await run_checks(Target(url=gateway.url, tokens=(alice, alice), timeout=TIMEOUT),
                               select_checks(["presence.changed", "rooms.message"]))
    assert [r.outcome for r in results] == [Outcome.SKIP, Outcome.SKIP]
    assert results[0].detail == ("alice and bob are the same user ('alice'): needs tokens of "
                                 "two different users")


async def test_no_close_for_too_big_points_at_the_size_option(
        start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway()  # its limit is 64 KiB, the kit is told 1 KiB
    [result] = await run_checks(Target(url=gateway.url, jwt_secret=SECRET, timeout=0.3,
                                       max_message_size=1024), select_checks(["close.too-big"]))
    assert result.outcome is Outcome.FAIL
    assert result.detail == ("expected close 1009, got no close frame within 0.3 s of a message "
                             "of 1025 bytes (is the server's limit higher? give it as "
                             "--max-message-size)")


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(server)
    return app


def test_the_command_prints_json_and_exits_1_when_a_check_fails() -> None:
    url = f"ws://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(cli(), [url, "--jwt-secret", SECRET, "--timeout", "2s", "--json",
                                        "--check", "jsonrpc.parse-error", "--check", "auth.query"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["passed"], report["failed"], report["skipped"]) == (0, 2, 0)
    assert [r["check"] for r in report["results"]] == ["jsonrpc.parse-error", "auth.query"]
    assert f"{url}/ws" in report["results"][0]["detail"]  # the URL as the kit used it


async def test_without_token_or_secret_it_uses_a_dev_mode_gateways_secret(
        start_gateway: GatewayFactory) -> None:
    # As `rtctl call` does: `rtctl serve` in dev mode made the secret on this machine.
    dev_secret, _, _ = load_or_create_dev_secret()
    gateway = await start_gateway(auth=AuthConfig(secret=dev_secret))
    result = await asyncio.to_thread(CliRunner().invoke, cli(), [
        gateway.url, "--json", "--check", "auth.header", "--check", "auth.expired"])
    report = json.loads(result.stdout)
    assert [(r["check"], r["outcome"]) for r in report["results"]] == [
        ("auth.header", "pass"), ("auth.expired", "pass")]  # minted with the dev secret
    assert result.exit_code == 0


async def test_a_refused_dev_secret_token_says_where_the_secret_came_from(
        start_gateway: GatewayFactory) -> None:
    load_or_create_dev_secret()
    gateway = await start_gateway()  # a secret of its own (SECRET), not the dev one
    result = await asyncio.to_thread(CliRunner().invoke, cli(), [
        gateway.url, "--json", "--check", "auth.header"])
    [failed] = json.loads(result.stdout)["results"]
    assert failed["detail"].startswith(
        f"the server refused the token minted for alice with the dev secret in "
        f"{dev_secret_path()} (no --token or --jwt-secret given)")


@pytest.mark.parametrize(("args", "message"), [
    ([], "--token"),
    (["--jwt-secret", SECRET, "--check", "no.such"], "no such check: no.such"),
    (["--jwt-secret", SECRET, "--timeout", "0s"], "--timeout"),
    (["--jwt-secret", SECRET, "--max-message-size", "0"], "--max-message-size"),
    (["--jwt-secret", SECRET, "--ping-interval", "0s"], "--ping-interval"),
])
def test_bad_usage_is_one_config_error(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli(), ["ws://127.0.0.1:9", *args])
    assert isinstance(result.exception, ConfigError)
    assert message in str(result.exception)
