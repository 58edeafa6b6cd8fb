"""The client on ``rtctl.v1.binary``: what it offers, what it agrees on, where binary frames go.

Against the real gateway (the ``lab``, once per client transport) and against
the scripted server of ``test_transport`` for what a gateway would not do:
choose ``rtctl.v1`` and send a binary frame anyway.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rtctl import CallContext
from rtctl.client import Client, ErrorKind, NotificationReceived
from rtctl.client.link import OpenFailed
from rtctl.client.transport import TransportName, opener
from rtctl.protocol.frames import state_frame
from rtctl.protocol.lanes import Lane
from rtctl.protocol.upgrade import BINARY_SUBPROTOCOL, SUBPROTOCOL
from tests.client.lab import FAST, WAIT, Lab
from tests.client.test_transport import (  # noqa: F401  (fixtures)
    BINARY,
    TEXT,
    Script,
    Serve,
    frame,
    serve,
    transport,
)

TICK = b'{"jsonrpc":"2.0","method":"game.tick","params":{"i":0}}'


async def add_frames_method(lab: Lab) -> None:
    """Give the lab's game a method that pushes binary frames (the gateway takes it at start)."""
    await lab.stop()

    @lab.router.method("game.frames")
    def frames(ctx: CallContext, sizes: list[int]) -> str:
        assert ctx.peer is not None
        for i, size in enumerate(sizes):
            ctx.peer.notify("game.tick", {"i": i})
            # One lane keeps text and binary in the order sent (state frames' own lane
            # would go before the ticks of the events lane).
            ctx.peer.push_binary(state_frame("arena", bytes([i]) * size), lane=Lane.EVENTS)
        return "sent"

    await lab.start()


class Arrivals:
    """Notifications and binary frames in the order the client delivered them."""

    def __init__(self, client: Client, expect: int) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.expect = expect
        self.done = asyncio.Event()
        client.on_notification(lambda event: self._add("tick", event.params["i"]), "game.tick")
        client.on_binary(lambda data: self._add("binary", data))

    def _add(self, kind: str, value: Any) -> None:
        self.seen.append((kind, value))
        if len(self.seen) >= self.expect:
            self.done.set()

    async def wait(self) -> list[tuple[str, Any]]:
        await asyncio.wait_for(self.done.wait(), WAIT)
        return self.seen


async def test_the_client_takes_binary_frames_in_order_with_notifications(lab: Lab) -> None:
    await add_frames_method(lab)
    client = lab.client()
    assert client.subprotocol is None
    sizes = [0, 300, 70_000]
    arrivals = Arrivals(client, 2 * len(sizes))
    await client.connect()
    assert client.subprotocol == BINARY_SUBPROTOCOL
    before = client.netstats()
    assert await client.call("game.frames", [sizes]) == "sent"
    expected: list[tuple[str, Any]] = []
    for i, size in enumerate(sizes):
        expected += [("tick", i), ("binary", state_frame("arena", bytes([i]) * size))]
    assert await arrivals.wait() == expected
    stats = client.netstats()
    assert stats.messages_in - before.messages_in == 2 * len(sizes) + 1  # and the reply
    assert stats.bytes_in - before.bytes_in > sum(sizes)
    await client.close()
    assert client.subprotocol is None


async def test_a_client_that_asks_for_json_agrees_on_rtctl_v1(lab: Lab) -> None:
    client = lab.client(binary=False)
    await client.connect()
    assert client.subprotocol == SUBPROTOCOL
    info = await client.call("session.info")
    assert info["subprotocol"] == SUBPROTOCOL


@pytest.mark.parametrize(("binary", "offer"), [
    (True, b"Sec-WebSocket-Protocol: rtctl.v1.binary, rtctl.v1\r\n"),
    (False, b"Sec-WebSocket-Protocol: rtctl.v1\r\n"),
])
async def test_what_the_client_offers(
    serve: Serve, transport: TransportName, binary: bool, offer: bytes  # noqa: F811
) -> None:
    server, url = await serve(Script(subprotocol=SUBPROTOCOL))
    client = Client(url, transport=transport, binary=binary, backoff=FAST, ping_interval=None,
                    recover=False)  # the scripted server answers no session.info
    await client.connect()
    await client.close()
    assert offer in server.requests[0]


@pytest.mark.parametrize(("chosen", "first"), [
    (BINARY_SUBPROTOCOL, ("binary", b"\x01\x01r")),
    (SUBPROTOCOL, ("error", "the gateway sent a binary frame on rtctl.v1")),
])
async def test_a_binary_frame_is_delivered_only_on_rtctl_v1_binary(
    serve: Serve, transport: TransportName, chosen: str, first: tuple[str, Any],  # noqa: F811
) -> None:
    _, url = await serve(Script(subprotocol=chosen,
                                frames=[frame(BINARY, b"\x01\x01r"), frame(TEXT, TICK)]))
    client = Client(url, transport=transport, backoff=FAST, ping_interval=None, recover=False)
    seen: list[tuple[str, Any]] = []
    ticked = asyncio.Event()
    client.on_binary(lambda data: seen.append(("binary", data)))
    client.on_error(lambda verdict: seen.append(
        ("error", str(verdict.error)) if verdict.kind is ErrorKind.PROTOCOL else ("other", None)))
    client.on_notification(lambda event: (seen.append(("tick", event)), ticked.set()))
    await client.connect()
    assert client.subprotocol == chosen
    await asyncio.wait_for(ticked.wait(), WAIT)  # after an unagreed frame the link carries on
    await client.close()
    assert seen[:2] == [first, ("tick", NotificationReceived("game.tick", {"i": 0}))]


@pytest.mark.parametrize(("offered", "chosen", "opens"), [
    ((BINARY_SUBPROTOCOL, SUBPROTOCOL), BINARY_SUBPROTOCOL, True),
    ((BINARY_SUBPROTOCOL, SUBPROTOCOL), SUBPROTOCOL, True),
    ((SUBPROTOCOL,), BINARY_SUBPROTOCOL, False),  # RFC 6455 §4.1: not offered, so fail
])
async def test_a_link_accepts_only_a_subprotocol_it_offered(
    serve: Serve, transport: TransportName,  # noqa: F811
    offered: tuple[str, ...], chosen: str, opens: bool,
) -> None:
    _, url = await serve(Script(subprotocol=chosen))
    if not opens:
        with pytest.raises(OpenFailed) as info:
            await opener(transport)(url, None, WAIT, None, offered)
        assert info.value.verdict.kind is ErrorKind.TRANSPORT
        return
    link = await opener(transport)(url, None, WAIT, None, offered)
    assert link.subprotocol == chosen
    await link.close()
