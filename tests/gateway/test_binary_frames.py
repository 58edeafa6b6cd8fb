"""Binary server-to-client frames on ``rtctl.v1.binary``: the connection, the outbox, both drivers.

The sans-I/O half checks what a :class:`Connection` asks of its transport and
how the :class:`Outbox` keeps binary and text together; the live half runs
over each transport driver (``tests/gateway/conftest.py``) with a client that
reads the raw WebSocket messages.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from rtctl import CallContext, Router
from rtctl.config import Limits
from rtctl.gateway.connection import ConnectionState
from rtctl.gateway.outbox import BinaryMessage, Outbox
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import CloseCode
from rtctl.protocol.frames import state_frame
from rtctl.protocol.lanes import Lane
from rtctl.protocol.tap import OUT, Disconnected, FrameSeen
from rtctl.protocol.upgrade import BINARY_SUBPROTOCOL, SUBPROTOCOL
from tests.conftest import TIMING, GatewayFactory, client, rpc
from tests.gateway.test_connection import FakeTransport, connection
from tests.gateway.test_server import closed_with
from tests.gateway.test_tap import until

BOTH = [BINARY_SUBPROTOCOL, SUBPROTOCOL]  # what the client SDK offers

# -- the connection and the outbox, sans-I/O ------------------------------------------


def test_push_binary_asks_for_a_binary_message_in_order_with_text() -> None:
    transport = FakeTransport()
    conn = connection(ConnectionState.OPEN, transport)
    conn.subprotocol = BINARY_SUBPROTOCOL
    conn.push(b'{"a":1}')
    conn.push_binary(b"\x01\x01r\x00")
    conn.notify("game.tick")
    assert transport.sent[:2] == [b'{"a":1}', b"\x01\x01r\x00"]
    assert transport.binary == [False, True, False]


def test_a_binary_push_that_overflows_closes_4008() -> None:
    transport = FakeTransport(accept=False)
    conn = connection(ConnectionState.OPEN, transport)
    conn.subprotocol = BINARY_SUBPROTOCOL
    conn.push_binary(b"\x01" * 10)
    assert transport.closed == [(CloseCode.SLOW_CONSUMER, "outbound queue overflowed")]
    assert conn.state is ConnectionState.CLOSING


@pytest.mark.parametrize("subprotocol", [SUBPROTOCOL, None])
def test_push_binary_to_a_connection_that_did_not_agree_is_an_error(
        subprotocol: str | None) -> None:
    transport = FakeTransport()
    conn = connection(ConnectionState.OPEN, transport)
    conn.subprotocol = subprotocol
    with pytest.raises(ValueError, match="takes no binary frames"):
        conn.push_binary(b"\x01")
    assert transport.sent == []


@pytest.mark.parametrize("state", [ConnectionState.CONNECTING, ConnectionState.CLOSING,
                                   ConnectionState.CLOSED])
def test_push_binary_sends_only_while_open(state: ConnectionState) -> None:
    transport = FakeTransport()
    conn = connection(state, transport)
    conn.subprotocol = BINARY_SUBPROTOCOL
    conn.push_binary(b"\x01")
    assert transport.sent == []


@pytest.mark.parametrize(("queued", "backlog"), [(None, 0), ((0, 0), 0), ((3, 120), 120)])
def test_the_backlog_is_the_bytes_still_queued(queued: tuple[int, int] | None,
                                               backlog: int) -> None:
    conn = connection(ConnectionState.OPEN, FakeTransport(queue=queued))
    assert conn.backlog() == backlog


def test_the_outbox_keeps_binary_in_order_and_counts_its_bytes() -> None:
    outbox = Outbox(max_bytes=10)
    assert outbox.put(b"ab")
    assert outbox.put(b"\x01\x02\x03", binary=True)
    assert outbox.put(b"cd")
    assert (len(outbox), outbox.queued_bytes) == (3, 7)
    assert not outbox.put(b"\x00" * 4, binary=True)  # 11 > 10: binary counts against the bound
    assert outbox.overflowed
    popped = [outbox.pop(), outbox.pop(), outbox.pop(), outbox.pop()]
    assert popped == [b"ab", b"\x01\x02\x03", b"cd", None]
    assert [type(data) for data in popped] == [bytes, BinaryMessage, bytes, type(None)]
    assert outbox.queued_bytes == 0


def test_a_frame_made_once_for_many_is_queued_for_each_without_a_copy() -> None:
    frame = state_frame("arena:1", b"\x02\x07\x01\x00")
    outboxes = [Outbox(max_bytes=100) for _ in range(3)]
    for outbox in outboxes:
        outbox.put(frame, binary=True)
    assert all(outbox.pop() is frame for outbox in outboxes)


# -- over each transport driver ----------------------------------------------------------


def frames_router() -> Router:
    router = Router()

    @router.method("game.frames")
    def frames(ctx: CallContext, sizes: list[int]) -> int:
        assert ctx.peer is not None
        for i, size in enumerate(sizes):
            ctx.peer.notify("game.tick", {"i": i})
            # One lane keeps text and binary in the order sent (a state frame's own lane,
            # state, would go before every tick of the events lane).
            ctx.peer.push_binary(state_frame("arena", bytes([i % 256]) * size),
                                 lane=Lane.EVENTS)
        return len(sizes)

    @router.method("game.flood")
    def flood(ctx: CallContext) -> None:
        assert ctx.peer is not None
        for _ in range(100):  # queued in one go, faster than any writer drains
            ctx.peer.push_binary(b"\x01" * 100)

    return router


async def receive(ws: ClientConnection, count: int) -> list[str | bytes]:
    return [await asyncio.wait_for(ws.recv(), 5 * TIMING) for _ in range(count)]


def pushed(messages: list[str | bytes]) -> list[tuple[str, Any]]:
    """The pushed messages in arrival order: ticks by number, binary frames whole."""
    out: list[tuple[str, Any]] = []
    for message in messages:
        if isinstance(message, bytes):
            out.append(("binary", message))
        elif jsonrpc.loads(message).get("method") == "game.tick":
            out.append(("tick", jsonrpc.loads(message)["params"]["i"]))
    return out


async def test_binary_frames_arrive_whole_and_in_order_with_notifications(
    start_gateway: GatewayFactory,
) -> None:
    gateway = await start_gateway(frames_router())
    sizes = [0, 125, 126, 70_000]  # every length encoding of RFC 6455 §5.2
    async with client(gateway.url, subprotocols=BOTH) as ws:
        assert ws.subprotocol == BINARY_SUBPROTOCOL
        await ws.send(jsonrpc.dumps(jsonrpc.encode_request("game.frames", [sizes], 1)),
                      text=True)
        messages = await receive(ws, 2 * len(sizes) + 1)
    expected: list[tuple[str, Any]] = []
    for i, size in enumerate(sizes):
        expected += [("tick", i), ("binary", state_frame("arena", bytes([i]) * size))]
    assert pushed(messages) == expected


@pytest.mark.parametrize(("offered", "chosen"), [
    (BOTH, BINARY_SUBPROTOCOL),
    ([SUBPROTOCOL], SUBPROTOCOL),
    (None, None),
])
async def test_the_gateway_picks_binary_when_offered(
    start_gateway: GatewayFactory, offered: list[str] | None, chosen: str | None
) -> None:
    gateway = await start_gateway()
    async with client(gateway.url, subprotocols=offered) as ws:
        assert ws.subprotocol == chosen
        info = await rpc(ws, "session.info")
    assert info["result"]["subprotocol"] == chosen


async def test_binary_frames_overflowing_the_outbox_close_4008(
    start_gateway: GatewayFactory,
) -> None:
    gateway = await start_gateway(frames_router(), limits=Limits(max_outbox_bytes=1000))
    async with client(gateway.url, subprotocols=BOTH) as ws:
        await ws.send(jsonrpc.dumps(jsonrpc.encode_request("game.flood", None, 1)), text=True)
        code, reason = await closed_with(ws)
    assert (code, reason) == (CloseCode.SLOW_CONSUMER, "outbound queue overflowed")


async def test_a_binary_frame_from_a_client_is_still_refused_1003(
    start_gateway: GatewayFactory,
) -> None:
    gateway = await start_gateway()
    async with client(gateway.url, subprotocols=BOTH) as ws:
        await ws.send(b"\x01\x01r")
        code, _ = await closed_with(ws)
    assert code == CloseCode.UNSUPPORTED_DATA


async def test_the_tap_and_the_metrics_see_binary_frames(start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(frames_router())
    frame = state_frame("arena", b"\x00" * 40)
    with gateway.tap.subscribe() as sub:
        async with client(gateway.url, subprotocols=BOTH) as ws:
            await ws.send(jsonrpc.dumps(jsonrpc.encode_request("game.frames", [[40]], 1)),
                          text=True)
            await receive(ws, 3)
        events = await until(sub, Disconnected)
    out = [e for e in events if isinstance(e, FrameSeen) and e.direction == OUT]
    assert sorted((f.kind, f.binary) for f in out) == [
        ("binary", True), ("notification", False), ("result", False)]
    [binary] = [f for f in out if f.binary]
    assert (binary.size, binary.method, binary.id, binary.error) == (len(frame), None, None, None)
    assert base64.b64decode(binary.payload) == binary.data == frame
    metrics = gateway.metrics
    assert (metrics.messages_out, metrics.bytes_out) == (len(out), sum(f.size for f in out))
