"""The simulator's tap: the gateway's event stream, each frame annotated with its fate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from websockets.asyncio.client import connect

from rtctl.inspect.listener import listen
from rtctl.protocol.tap import IN, OUT, Connected, Disconnected, FrameSeen, Subscribed, TapEvent
from simulator.control import ControlServer
from simulator.impairments import Packet
from simulator.link import Outcome
from simulator.relay import fate
from tests.conftest import TIMING, GatewayFactory, make_token, rpc
from tests.simulator.test_proxy import ProxyFactory, start_proxy  # noqa: F401  (fixture)


async def next_of(events: AsyncIterator[TapEvent], kind: type[TapEvent]) -> TapEvent:
    async with asyncio.timeout(10 * TIMING):
        async for event in events:
            if isinstance(event, kind):
                return event
    raise AssertionError(f"the tap ended before a {kind.__name__}")


async def test_frames_on_the_proxy_tap_carry_their_impairments(
    start_gateway: GatewayFactory, start_proxy: ProxyFactory,  # noqa: F811
) -> None:
    gateway = await start_gateway()
    proxy = await start_proxy(gateway.url.removesuffix("/ws"), up_latency="30ms")
    control = ControlServer(proxy)
    await control.start()
    events = listen(control.url, token=None)
    try:
        assert isinstance(await anext(events), Subscribed)
        headers = {"Authorization": f"Bearer {make_token('ivy')}"}
        async with connect(proxy.url + "/ws", additional_headers=headers) as ws:
            opened = await next_of(events, Connected)
            assert opened.user == "ivy"  # type: ignore[attr-defined]
            assert (await rpc(ws, "sys.echo", ["slow"]))["result"] == ["slow"]
            request = await next_of(events, FrameSeen)
            reply = await next_of(events, FrameSeen)
        closed = await next_of(events, Disconnected)
    finally:
        await events.aclose()
        await control.stop()
    assert isinstance(request, FrameSeen)
    assert isinstance(reply, FrameSeen)
    assert (request.direction, request.method, request.user) == (IN, "sys.echo", "ivy")
    assert request.impairment == "delayed 30 ms"  # up_latency, no jitter: exactly
    assert (reply.direction, reply.kind, reply.impairment) == (OUT, "result", None)
    assert closed.conn == opened.conn  # type: ignore[attr-defined]


def test_fate_names_what_the_link_did() -> None:
    assert fate(Outcome(sent_at=1.0, deliveries=())) is None
    assert fate(Outcome(sent_at=1.0, deliveries=(), dropped="loss")) == "dropped (loss)"
    late = Packet(size=10, at=1.052)
    assert fate(Outcome(sent_at=1.0, deliveries=(late,))) == "delayed 52 ms"
    twice = (late, Packet(size=10, at=1.060, copy=True, reordered=True))
    assert fate(Outcome(sent_at=1.0, deliveries=twice)) == "delayed 52 ms, reordered, duplicated ×2"
