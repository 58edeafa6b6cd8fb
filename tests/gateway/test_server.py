"""The gateway over real loopback sockets: upgrade, calls, limits, lifecycle."""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from rtctl import CallContext, Router, RpcError
from rtctl.config import Limits
from rtctl.gateway.server import Gateway
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import CloseCode
from tests.conftest import TIMING, GatewayFactory, client, make_token, rpc


def http_get(gateway: Gateway, path: str) -> tuple[int, bytes]:
    url = f"http://127.0.0.1:{gateway.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5 * TIMING) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def aget(gateway: Gateway, path: str) -> tuple[int, bytes]:
    return await asyncio.to_thread(http_get, gateway, path)


async def refused(url: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """Try an upgrade that must be refused; return the status and JSON body."""
    with pytest.raises(InvalidStatus) as info:
        await connect(url, **kwargs)
    response = info.value.response
    return response.status_code, jsonrpc.loads(bytes(response.body))


async def closed_with(ws: Any) -> tuple[int | None, str]:
    """Read until the gateway closes; return its close code and reason."""
    async def drain() -> None:
        while True:
            await asyncio.wait_for(ws.recv(), 10 * TIMING)

    with pytest.raises(ConnectionClosed):
        await drain()
    return ws.close_code, ws.close_reason


# -- the upgrade ---------------------------------------------------------------


@pytest.mark.parametrize(("token", "reason"), [
    (None, "missing"),
    ("not-a-jwt", "malformed"),
    (make_token(ttl=None, exp=int(time.time()) - 3600), "expired"),
    (make_token(aud="someone-else"), "bad_audience"),
])
async def test_bad_tokens_get_401_with_a_reason_and_no_websocket(
    gateway: Gateway, token: str | None, reason: str
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    status, body = await refused(gateway.url, additional_headers=headers)
    assert status == 401
    assert body["error"] == "unauthorized"
    assert body["reason"] == reason
    assert len(gateway.registry) == 0


@pytest.mark.parametrize("carrier", ["header", "query", "subprotocol"])
async def test_token_is_accepted_from_each_carrier(gateway: Gateway, carrier: str) -> None:
    token = make_token("bob")
    url, kwargs = gateway.url, {}
    if carrier == "header":
        kwargs = {"additional_headers": {"Authorization": f"Bearer {token}"}}
    elif carrier == "query":
        url = f"{url}?token={token}"
    else:
        kwargs = {"subprotocols": ["rtctl.v1", f"rtctl.bearer.{token}"]}
    async with connect(url, **kwargs) as ws:
        reply = await rpc(ws, "session.info")
    assert reply["result"]["user"] == "bob"


async def test_subprotocol_is_negotiated_when_offered_and_optional(gateway: Gateway) -> None:
    async with client(gateway.url, subprotocols=["rtctl.v1"]) as ws:
        assert ws.subprotocol == "rtctl.v1"
    async with client(gateway.url) as ws:
        assert ws.subprotocol is None
        assert (await rpc(ws, "sys.echo", {"a": 1}))["result"] == {"a": 1}


async def test_unknown_path_is_404(gateway: Gateway) -> None:
    status, body = await refused(gateway.url.replace("/ws", "/nope"))
    assert (status, body["error"]) == (404, "not_found")


async def test_health_readiness_and_metrics(gateway: Gateway) -> None:
    assert await aget(gateway, "/healthz") == (200, b'{"status":"ok"}')
    status, body = await aget(gateway, "/readyz")
    assert status == 200
    assert jsonrpc.loads(body)["status"] == "ready"
    async with client(gateway.url) as ws:
        await rpc(ws, "sys.ping")
        await rpc(ws, "no.such.method")
        status, body = await aget(gateway, "/metrics")
    text = body.decode()
    assert status == 200
    assert "rtctl_connections 1.0" in text
    assert 'rtctl_rpc_duration_seconds_count{method="sys.ping"} 1.0' in text
    assert 'rtctl_rpc_errors_total{code="-32601"} 1.0' in text


async def test_connection_limits_refuse_with_a_clear_reason(
    start_gateway: GatewayFactory,
) -> None:
    gw = await start_gateway(limits=Limits(max_connections=2, max_connections_per_user=1))
    async with client(gw.url, make_token("alice")):
        status, body = await refused(
            gw.url, additional_headers={"Authorization": f"Bearer {make_token('alice')}"})
        assert (status, body["error"]) == (429, "too_many_connections_for_user")
        async with client(gw.url, make_token("bob")):
            status, body = await refused(
                gw.url, additional_headers={"Authorization": f"Bearer {make_token('carol')}"})
            assert (status, body["error"]) == (503, "too_many_connections")
            assert gw.registry.users() == ["alice", "bob"]


# -- calls ---------------------------------------------------------------------


async def test_error_replies_never_close_the_connection(gateway: Gateway) -> None:
    async with client(gateway.url) as ws:
        for text in ["{not json", "[]", '{"jsonrpc": "1.0", "method": "x", "id": 1}']:
            await ws.send(text)
            assert "error" in jsonrpc.loads(await ws.recv())
        assert (await rpc(ws, "sys.echo", [1, 2]))["result"] == [1, 2]


async def test_handler_failure_is_32603_with_correlation_id_and_no_leak(
    start_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    router = Router()

    @router.method("game.explode")
    def explode() -> None:
        raise RuntimeError("secret table name players_v2")

    @router.method("game.unserialisable")
    def unserialisable() -> object:
        return object()

    gw = await start_gateway(router)
    with caplog.at_level(logging.ERROR):
        async with client(gw.url) as ws:
            boom = await rpc(ws, "game.explode")
            bad = await rpc(ws, "game.unserialisable", id=2)
    for reply in (boom, bad):
        assert reply["error"]["code"] == -32603
        assert reply["error"]["message"] == "Internal error"
        assert "players_v2" not in jsonrpc.dumps(reply).decode()
    correlation = boom["error"]["data"]["correlation_id"]
    assert any(correlation in rec.getMessage() and rec.exc_info for rec in caplog.records)
    assert bad["id"] == 2


async def test_application_errors_and_call_context(start_gateway: GatewayFactory) -> None:
    router = Router()

    @router.method("game.whoami")
    def whoami(ctx: CallContext) -> dict[str, Any]:
        ctx.session["calls"] = ctx.session.get("calls", 0) + 1
        return {"user": ctx.user, "role": ctx.claims.get("role"), "calls": ctx.session["calls"]}

    @router.method("game.buy")
    def buy(item: str, qty: int) -> None:
        raise RpcError(4001, "Not enough gold", {"item": item, "short": qty * 10})

    gw = await start_gateway(router)
    async with client(gw.url, make_token("zoe", role="admin")) as ws:
        assert (await rpc(ws, "game.whoami"))["result"] == {"user": "zoe", "role": "admin",
                                                            "calls": 1}
        assert (await rpc(ws, "game.whoami"))["result"]["calls"] == 2
        reply = await rpc(ws, "game.buy", {"item": "sword", "qty": "two"})
        assert reply["error"]["code"] == -32602
        assert "'qty'" in reply["error"]["message"]
        reply = await rpc(ws, "game.buy", ["sword", 2])
        assert reply["error"] == {"code": 4001, "message": "Not enough gold",
                                  "data": {"item": "sword", "short": 20}}


async def test_async_handlers_run_concurrently_on_one_connection(
    start_gateway: GatewayFactory,
) -> None:
    router = Router()
    gate = asyncio.Event()

    @router.method("game.wait")
    async def wait() -> str:
        await gate.wait()
        return "released"

    @router.method("game.release")
    async def release() -> str:
        gate.set()
        return "done"

    gw = await start_gateway(router)
    async with client(gw.url) as ws:
        await ws.send(jsonrpc.dumps(jsonrpc.encode_request("game.wait", None, "w")), text=True)
        await ws.send(jsonrpc.dumps(jsonrpc.encode_request("game.release", None, "r")), text=True)
        first = jsonrpc.loads(await ws.recv())
        second = jsonrpc.loads(await ws.recv())
    assert (first["id"], second["id"]) == ("r", "w")
    assert second["result"] == "released"


async def test_handlers_can_push_notifications(start_gateway: GatewayFactory) -> None:
    router = Router()

    @router.method("game.countdown")
    def countdown(ctx: CallContext, n: int) -> str:
        assert ctx.peer is not None
        for i in range(n, 0, -1):
            ctx.peer.notify("game.tick", {"n": i})
        return "go"

    gw = await start_gateway(router)
    async with client(gw.url) as ws:
        await ws.send(jsonrpc.dumps(jsonrpc.encode_request("game.countdown", [3], 1)), text=True)
        messages = [jsonrpc.loads(await ws.recv()) for _ in range(4)]
    ticks = [m["params"]["n"] for m in messages if m.get("method") == "game.tick"]
    assert ticks == [3, 2, 1]
    assert [m["result"] for m in messages if "result" in m] == ["go"]


async def test_slow_consumer_overflowing_its_outbox_is_closed_4008(
    start_gateway: GatewayFactory,
) -> None:
    router = Router()

    @router.method("game.flood")
    def flood(ctx: CallContext) -> None:
        assert ctx.peer is not None
        for i in range(100):  # queued in one go, faster than any writer drains
            ctx.peer.notify("game.spam", {"i": i, "pad": "x" * 100})

    gw = await start_gateway(router, limits=Limits(max_outbox_bytes=1000))
    async with client(gw.url) as ws:
        await ws.send(jsonrpc.dumps(jsonrpc.encode_request("game.flood", None, 1)), text=True)
        code, reason = await closed_with(ws)
    assert code == CloseCode.SLOW_CONSUMER
    assert "outbound queue" in reason


# -- frames the gateway will not take ------------------------------------------------


@pytest.mark.parametrize(("send", "code"), [
    (lambda ws: ws.send("x" * (64 * 1024 + 1)), CloseCode.MESSAGE_TOO_BIG),
    (lambda ws: ws.send(b"\xff\xfe{}", text=True), CloseCode.INVALID_PAYLOAD),
    (lambda ws: ws.send(b'{"jsonrpc": "2.0"}'), CloseCode.UNSUPPORTED_DATA),
])
async def test_bad_frames_close_only_their_own_connection(
    gateway: Gateway, send: Any, code: int
) -> None:
    async with client(gateway.url, make_token("neighbour")) as neighbour:
        async with client(gateway.url, make_token("offender"), max_size=None) as ws:
            await send(ws)
            closed_code, _ = await closed_with(ws)
        assert closed_code == code
        assert (await rpc(neighbour, "sys.echo", ["still here"]))["result"] == ["still here"]
    assert gateway.ready


async def test_disconnect_hooks_see_code_and_reason(gateway: Gateway) -> None:
    seen: asyncio.Queue[tuple[str, int | None, str]] = asyncio.Queue()
    gateway.on_connect(lambda conn: seen.put_nowait((conn.user, None, "connected")))
    gateway.on_disconnect(lambda conn, code, reason: seen.put_nowait((conn.user, code, reason)))
    async with client(gateway.url, make_token("dave")) as ws:
        await ws.close(1000, "bye")
    assert await seen.get() == ("dave", None, "connected")
    assert await asyncio.wait_for(seen.get(), 5 * TIMING) == ("dave", 1000, "bye")
    assert len(gateway.registry) == 0
