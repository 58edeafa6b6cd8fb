"""Connection lifecycle: heartbeat, token expiry and refresh, graceful shutdown."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import socket
import time

import pytest

from rtctl.config import Heartbeat
from rtctl.gateway.auth import AuthConfig
from rtctl.gateway.connection import Connection
from rtctl.gateway.server import Gateway
from rtctl.host import Host
from rtctl.protocol.codes import CloseCode
from rtctl.router import Router
from rtctl.services import BUILTIN_SERVICES
from tests.conftest import SECRET, TIMING, GatewayFactory, client, gateway_config, make_token, rpc
from tests.gateway.test_server import aget, closed_with, refused


async def test_silent_peer_is_removed_within_interval_plus_timeout(
    start_gateway: GatewayFactory,
) -> None:
    interval, timeout = 0.2, 0.3
    gw: Gateway = await start_gateway(heartbeat=Heartbeat(interval=interval, timeout=timeout))
    opened: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    gone: asyncio.Future[tuple[float, int | None]] = asyncio.get_running_loop().create_future()
    gw.on_connect(lambda conn: opened.set_result(time.monotonic()))
    gw.on_disconnect(lambda conn, code, reason: gone.set_result((time.monotonic(), code)))

    # A client that completes the upgrade by hand and then never answers a ping.
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{gw.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {make_token('sleepy')}\r\n\r\n").encode())
    status_line = await reader.readline()
    assert b" 101 " in status_line
    started = await asyncio.wait_for(opened, 5 * TIMING)
    ended, code = await asyncio.wait_for(gone, 10 * TIMING)
    writer.close()

    assert code == CloseCode.INTERNAL_ERROR  # 1011, keepalive ping timeout
    assert ended - started <= interval + timeout + 0.5 * TIMING
    assert gw.registry.by_user("sleepy") == []


async def test_expired_token_closes_4001_unless_refreshed(start_gateway: GatewayFactory) -> None:
    # Tokens valid for an hour of real time; the gateway's clock says they end in 1 s.
    offset = 3600 - 1.0 * TIMING
    gw: Gateway = await start_gateway(auth=AuthConfig(secret=SECRET, leeway=0),
                                      clock=lambda: time.time() + offset)
    async with client(gw.url, make_token("erin")) as stale, \
            client(gw.url, make_token("erin")) as fresh:
        reply = await rpc(fresh, "session.refresh", {"token": make_token("erin", ttl=7200)})
        assert reply["result"]["user"] == "erin"
        code, reason = await closed_with(stale)
        assert (code, reason) == (CloseCode.TOKEN_EXPIRED, "token expired")
        # The refreshed connection outlived the old expiry and still answers.
        info = (await rpc(fresh, "session.info"))["result"]
        assert info["expires_at"] > (time.time() + 3600) * 1000


async def test_refresh_refuses_other_users_and_bad_tokens(gateway: Gateway) -> None:
    async with client(gateway.url, make_token("frank")) as ws:
        other = await rpc(ws, "session.refresh", {"token": make_token("mallory")})
        bad = await rpc(ws, "session.refresh", {"token": "garbage"}, id=2)
        missing = await rpc(ws, "session.refresh", {}, id=3)
    assert other["error"]["code"] == -32001
    assert other["error"]["data"] == {"reason": "wrong_subject"}
    assert bad["error"]["code"] == -32001
    assert bad["error"]["data"] == {"reason": "malformed"}
    assert missing["error"]["code"] == -32602
    assert "'token'" in missing["error"]["message"]


async def test_shutdown_drains_then_closes_1001(start_gateway: GatewayFactory) -> None:
    gw: Gateway = await start_gateway()
    closed: list[tuple[int | None, str]] = []

    def record(conn: Connection, code: int | None, reason: str) -> None:
        closed.append((code, reason))

    gw.on_disconnect(record)
    async with client(gw.url) as ws:
        assert (await rpc(ws, "sys.ping"))["result"]["time"] > 0
        stopping = asyncio.create_task(gw.shutdown(drain=0.5 * TIMING))
        await asyncio.sleep(0)  # let shutdown flip readiness
        assert not gw.ready
        status, body = await aget(gw, "/readyz")
        assert (status, body) == (503, b'{"status":"draining"}')
        status, refusal = await refused(
            gw.url, additional_headers={"Authorization": f"Bearer {make_token()}"})
        assert (status, refusal["error"]) == (503, "draining")
        # During the drain the open connection still works.
        assert "result" in await rpc(ws, "sys.echo", [1])
        code, _ = await closed_with(ws)
    await stopping
    assert code == CloseCode.GOING_AWAY
    assert [c for c, _ in closed] == [CloseCode.GOING_AWAY]


async def test_shutdown_ends_early_when_the_last_client_leaves(
    start_gateway: GatewayFactory,
) -> None:
    gw: Gateway = await start_gateway()
    async with client(gw.url) as ws:
        await rpc(ws, "sys.ping")
        started = time.monotonic()
        stopping = asyncio.create_task(gw.shutdown(drain=60))
        await ws.close()
    await asyncio.wait_for(stopping, 10 * TIMING)
    assert time.monotonic() - started < 10 * TIMING


def _running(qualname: str) -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks()
            if getattr(task.get_coro(), "__qualname__", "") == qualname]


LOOPS = ("LagProbe._run", "SessionService._run")  # a started gateway's own tasks


async def test_a_start_that_cannot_bind_leaves_nothing_running(transport: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        config = gateway_config(transport=transport)
        gw = Gateway(dataclasses.replace(config, port=taken.getsockname()[1]))
        with pytest.raises(OSError, match="address already in use"):
            await gw.start()
    assert [_running(name) for name in LOOPS] == [[], []]
    await asyncio.wait_for(gw.shutdown(), 5 * TIMING)  # nothing to stop: returns at once
    started = Gateway(gateway_config(transport=transport))
    async with started:  # the same lookup finds the tasks of a gateway that did start
        assert [len(_running(name)) for name in LOOPS] == [1, 1]


def _failing_warm_up(host: Host) -> Router:
    async def warm_up() -> None:
        raise RuntimeError("the game's database is down")

    host.on_startup(warm_up)  # after the built-in services' hooks (the sessions loop)
    return Router()


async def test_a_startup_hook_that_fails_undoes_the_hooks_before_it(transport: str) -> None:
    gw = Gateway(gateway_config(transport=transport),
                 services=[*BUILTIN_SERVICES, _failing_warm_up])
    with pytest.raises(RuntimeError, match="database is down"):
        await gw.start()
    assert [_running(name) for name in LOOPS] == [[], []]


async def test_a_shutdown_during_start_stops_what_the_start_brought_up(transport: str) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def wait_for_release() -> None:
        entered.set()
        await release.wait()

    def slow_warm_up(host: Host) -> Router:
        host.on_startup(wait_for_release)  # after the sessions loop started
        return Router()

    gw = Gateway(gateway_config(transport=transport),
                 services=[*BUILTIN_SERVICES, slow_warm_up])
    starting = asyncio.ensure_future(gw.start())
    await asyncio.wait_for(entered.wait(), 5 * TIMING)
    stopping = asyncio.ensure_future(gw.shutdown(drain=0))
    await asyncio.sleep(0)
    assert not stopping.done()  # waits for the start rather than returning at once
    release.set()
    await asyncio.wait_for(asyncio.gather(starting, stopping), 5 * TIMING)
    assert not gw.ready
    assert [_running(name) for name in LOOPS] == [[], []]
