"""Hostile input over real sockets, on each transport: what an attack run found (issue 17 §3)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect

from rtctl.config import Limits
from rtctl.gateway.server import Gateway
from rtctl.inspect.listener import parse_events
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import CloseCode
from rtctl.protocol.redact import REDACTED
from rtctl.protocol.tap import IN, OUT, FrameSeen
from tests.conftest import TIMING, GatewayFactory, client, make_token, rpc
from tests.gateway.raw import RawClient, frame, read_frame, upgrade_request
from tests.gateway.test_tap import admin, tap_url

SURROGATE_ID = '{"jsonrpc": "2.0", "method": "sys.echo", "params": [1], "id": "\\ud800"}'


async def send_raw(ws: Any, text: str) -> Any:
    """Send ``text`` as it is; the reply, past any notification (a room's, say)."""
    await ws.send(text)
    while isinstance(reply := jsonrpc.loads(await asyncio.wait_for(ws.recv(), 5 * TIMING)),
                     dict) and "method" in reply:
        pass
    return reply


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] \
        == []


# -- lone surrogates: refused at the codec, nothing past it meets one ------------------------


@pytest.mark.parametrize(("text", "reply_id"), [
    pytest.param(SURROGATE_ID, None, id="id"),
    pytest.param('{"jsonrpc": "2.0", "method": "sys.\\udfff", "id": 2}', 2, id="method"),
    pytest.param('{"jsonrpc": "2.0", "method": "sys.echo", "params": ["\\ud800"], "id": 3}', 3,
                 id="params"),
])
async def test_a_lone_surrogate_is_one_error_and_the_connection_stays(
    gateway: Gateway, caplog: pytest.LogCaptureFixture, text: str, reply_id: Any,
) -> None:
    async with client(gateway.url) as ws:
        for _ in range(3):  # each time one error, never a traceback
            reply = await send_raw(ws, text)
            assert reply["id"] == reply_id
            assert reply["error"]["code"] == -32600
            assert "lone surrogate" in reply["error"]["message"]
        assert (await rpc(ws, "sys.echo", ["still here"]))["result"] == ["still here"]
    no_tracebacks(caplog)


async def test_a_surrogate_cannot_be_stored_to_break_presence_for_others(
    gateway: Gateway,
) -> None:
    async with client(gateway.url, make_token("mallory")) as mallory, \
            client(gateway.url, make_token("bob")) as bob:
        reply = await send_raw(mallory, '{"jsonrpc": "2.0", "method": "presence.set", '
                                        '"params": {"status": "online", "text": "\\ud800"}, '
                                        '"id": 1}')
        assert reply["error"]["code"] == -32600
        seen = await rpc(bob, "presence.get", {"users": ["mallory"]})
        assert seen["result"]["mallory"]["text"] is None


async def test_a_surrogate_publish_is_refused_not_answered_success_and_lost(
    gateway: Gateway,
) -> None:
    async with client(gateway.url, make_token("mallory")) as mallory, \
            client(gateway.url, make_token("bob")) as bob:
        for ws in (mallory, bob):
            assert "result" in await rpc(ws, "room.join", {"room": "lobby"})
        reply = await send_raw(mallory, '{"jsonrpc": "2.0", "method": "room.publish", '
                                        '"params": {"room": "lobby", "data": "\\udfff"}, "id": 2}')
        assert reply["error"]["code"] == -32600
        assert "result" in await send_raw(mallory, jsonrpc.dumps(jsonrpc.encode_request(
            "room.publish", {"room": "lobby", "data": "hi"}, 3)).decode())
        while (message := jsonrpc.loads(await asyncio.wait_for(bob.recv(), 5 * TIMING))).get(
                "method") != "room.message":
            pass
        assert message["params"]["data"] == "hi"  # the first publish to arrive is the good one


async def test_the_tap_keeps_listening_after_a_surrogate_id(gateway: Gateway) -> None:
    async with connect(tap_url(gateway), additional_headers=admin()) as listener:
        async with client(gateway.url) as ws:
            await send_raw(ws, SURROGATE_ID)
            await rpc(ws, "sys.echo", ["after"], id=7)
        events: list[Any] = []
        while not any(isinstance(e, FrameSeen) and e.id == 7 and e.direction == OUT
                      for e in events):
            events += parse_events(await asyncio.wait_for(listener.recv(), 5 * TIMING))
    frames = [(e.direction, e.kind, e.id) for e in events if isinstance(e, FrameSeen)]
    assert frames == [(IN, "invalid", None), (OUT, "error", None),
                      (IN, "request", 7), (OUT, "result", 7)]


# -- amplification and depth -----------------------------------------------------------------


async def test_an_over_limit_batch_is_one_error_naming_the_limit(
    start_gateway: GatewayFactory,
) -> None:
    gw = await start_gateway(limits=Limits(max_batch=10))
    batch = [jsonrpc.encode_request("sys.echo", [n], n) for n in range(11)]
    async with client(gw.url) as ws:
        reply = await send_raw(ws, jsonrpc.dumps(batch).decode())
        assert reply["error"]["code"] == -32600
        assert "limit of 10" in reply["error"]["message"]
        assert len(await send_raw(ws, jsonrpc.dumps(batch[:10]).decode())) == 10


async def test_params_nested_a_thousand_deep_are_a_clear_32600(gateway: Gateway) -> None:
    text = ('{"jsonrpc": "2.0", "method": "sys.echo", "id": 5, "params": '
            + "[" * 1000 + "]" * 1000 + "}")
    async with client(gateway.url) as ws:
        reply = await send_raw(ws, text)
        assert (reply["id"], reply["error"]["code"]) == (5, -32600)
        assert "nested more than" in reply["error"]["message"]


# -- HTTP abuse ------------------------------------------------------------------------------


@pytest.mark.parametrize("request_bytes", [
    pytest.param(upgrade_request(host=False), id="no-host"),
    pytest.param(upgrade_request(tokens=(make_token(), make_token())), id="two-authorizations"),
])
async def test_malformed_upgrades_are_400_without_a_traceback(
    gateway: Gateway, caplog: pytest.LogCaptureFixture, request_bytes: bytes,
) -> None:
    raw = await RawClient.connect(gateway.port)
    head = await raw.exchange(request_bytes)
    raw.abort()
    assert head.startswith(b"HTTP/1.1 400 "), head
    assert len(gateway.registry) == 0
    no_tracebacks(caplog)


async def test_bytes_after_a_request_do_not_cost_its_answer(gateway: Gateway) -> None:
    raw = await RawClient.connect(gateway.port)
    head = await raw.exchange(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGARBAGE")
    raw.abort()
    assert head.startswith(b"HTTP/1.1 200 "), head


async def test_a_frame_sent_with_the_upgrade_is_answered_after_it(gateway: Gateway) -> None:
    raw = await RawClient.connect(gateway.port)
    await raw.upgraded(upgrade_request() + frame(
        jsonrpc.dumps(jsonrpc.encode_request("sys.echo", ["eager"], 1))))
    assert (await raw.reply())["result"] == ["eager"]
    raw.abort()


# -- a client that never reads ---------------------------------------------------------------


async def test_a_client_that_stops_reading_is_dropped_with_4008(
    start_gateway: GatewayFactory,
) -> None:
    write_timeout = 0.3 * TIMING
    gw = await start_gateway(limits=Limits(write_timeout=write_timeout))
    gone: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
    gw.on_disconnect(lambda _, code, reason: gone.done() or gone.set_result((code, reason)))
    raw = await RawClient.connect(gw.port, receive_buffer=4096)
    await raw.upgraded()
    echo = frame(jsonrpc.dumps(jsonrpc.encode_request("sys.echo", ["x" * 30_000], 1)))
    started = time.monotonic()
    while not gone.done():  # replies pile up unread until the gateway stops reading too
        raw.writer.write(echo)
        try:
            await asyncio.wait_for(raw.writer.drain(), write_timeout)
        except (TimeoutError, ConnectionError):
            break
    code, reason = await asyncio.wait_for(gone, 10 * TIMING)
    raw.abort()
    assert code == CloseCode.SLOW_CONSUMER
    assert reason.startswith("not reading")
    assert time.monotonic() - started < 10 * TIMING  # not the keepalive's 15 s + 10 s, forever
    assert len(gw.registry) == 0


# -- credentials never leave in clear --------------------------------------------------------


async def test_tokens_are_redacted_from_the_tap_and_the_debug_log(
    gateway: Gateway, caplog: pytest.LogCaptureFixture,
) -> None:
    for name in ("websockets.server", "rtctl.gateway.picows"):
        caplog.set_level(1, logger=name)  # picows writes raw requests below DEBUG
    token = make_token("alice")
    fresh = make_token("alice", ttl=7200)
    resume, _ = gateway.recovery.issue("gone-1", "alice")
    with gateway.tap.subscribe() as listener:
        async with connect(f"{gateway.url}?token={token}&recover={resume}", compression=None,
                           subprotocols=["rtctl.v1", f"rtctl.bearer.{token}"],  # type: ignore[list-item]
                           additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            assert "result" in await rpc(ws, "session.refresh", {"token": fresh})
            recovery = (await rpc(ws, "session.info", id=2))["result"]["recovery_token"]
        payloads = [e.payload for e in listener.take(100) if isinstance(e, FrameSeen)]
    assert any("session.refresh" in p and REDACTED in p for p in payloads)
    log = "\n".join(r.getMessage() for r in caplog.records)
    assert REDACTED in log  # the request was logged, with its token cut out
    for secret in (token, fresh, token.rsplit(".", 1)[1], resume, recovery):
        assert all(secret not in p for p in payloads)
        assert secret not in log


async def test_read_frame_helper_sees_the_gateways_close(gateway: Gateway) -> None:
    """The raw client reads what the gateway sends, or the tests above prove nothing."""
    raw = await RawClient.connect(gateway.port)
    await raw.upgraded()
    raw.writer.write(frame(b"\x00", opcode=0x2))  # binary: closed with 1003
    opcode, payload = await asyncio.wait_for(read_frame(raw.reader), 5 * TIMING)
    raw.abort()
    assert (opcode, int.from_bytes(payload[:2], "big")) == (0x8, CloseCode.UNSUPPORTED_DATA)
