"""Outbound lanes, shaping, batching and slow consumers, end to end over each transport driver.

A handler queues its whole flood in one go (it is a plain function: nothing
is written before it returns), so what the outbox holds when the drain starts
is known; the checks count messages and bytes, never how long things took,
except as an upper bound measured from before the request was sent.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from rtctl import CallContext, Router
from rtctl.config import Limits, Routing
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import CloseCode
from rtctl.protocol.lanes import Lane, Policy
from tests.conftest import TIMING, GatewayFactory, client
from tests.gateway.test_server import closed_with

PAD = "x" * 150  # a flood message is about 200 bytes


def flood_router() -> Router:
    router = Router()

    @router.method("game.flood")
    def flood(ctx: CallContext, count: int, lane: str = "events", policy: str | None = None,
              key: str | None = None) -> int:
        assert ctx.peer is not None
        for i in range(count):
            ctx.peer.notify("game.item", {"i": i, "pad": PAD}, lane=Lane[lane.upper()],
                            policy=None if policy is None else Policy(policy), key=key)
        return count

    @router.method("game.mixed")
    def mixed(ctx: CallContext, events: int, telemetry: int) -> None:
        """Telemetry and events interleaved, then a marker that goes last (lowest lane)."""
        assert ctx.peer is not None
        for i in range(max(events, telemetry)):
            if i < events:
                ctx.peer.notify("game.event", {"i": i, "pad": PAD})
            if i < telemetry:
                ctx.peer.notify("game.telemetry", {"i": i, "pad": PAD}, lane=Lane.TELEMETRY)
        ctx.peer.notify("game.done", None, lane=Lane.TELEMETRY, policy=Policy.RELIABLE)

    return router


async def call(ws: ClientConnection, method: str, params: Any, id: int) -> None:
    await ws.send(jsonrpc.dumps(jsonrpc.encode_request(method, params, id)), text=True)


async def read_until(ws: ClientConnection, done: Any) -> list[Any]:
    """Decoded messages up to and including the first for which ``done(message)``."""
    messages: list[Any] = []
    while not messages or not done(messages[-1]):
        messages.append(jsonrpc.loads(await asyncio.wait_for(ws.recv(), 10 * TIMING)))
    return messages


def items(messages: list[Any], method: str = "game.item") -> list[int]:
    return [m["params"]["i"] for m in messages if isinstance(m, dict) and m.get("method") == method]


def index_of_reply(messages: list[Any], id: int) -> int:
    return next(i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("id") == id)


RATE, BURST = 4000.0, 1000  # bytes/s, bytes: a 30-message flood takes about 1.3 s to drain


async def test_a_reply_jumps_a_shaped_flood_which_stays_within_the_budget(
    start_gateway: GatewayFactory,
) -> None:
    gateway = await start_gateway(flood_router(), routing=Routing(
        outbound_rate=RATE, outbound_burst=BURST))
    async with client(gateway.url) as ws:
        started = time.monotonic()
        await call(ws, "game.flood", [30], 1)
        await call(ws, "sys.ping", None, 2)
        raw: list[str | bytes] = []
        while len(items([jsonrpc.loads(m) for m in raw])) < 30:
            raw.append(await asyncio.wait_for(ws.recv(), 10 * TIMING))
        elapsed = time.monotonic() - started
    messages = [jsonrpc.loads(m) for m in raw]
    assert items(messages) == list(range(30))  # reliable: all of them, in order
    # The burst lets about 5 go at once; the ping's reply does not wait for the other 25.
    assert len(items(messages[:index_of_reply(messages, 2)])) <= 10
    # No more than the budget since the request left: the burst, the rate, and the one frame
    # that may overdraw it (replies count against it too).
    received = sum(len(m) for m in raw)
    largest = max(len(m) for m in raw)
    assert received <= BURST + RATE * elapsed + largest
    lane = gateway.metrics.lanes[Lane.EVENTS]
    assert (lane.sent, lane.dropped) == (30, 0)


async def test_without_lanes_the_reply_waits_behind_the_flood(
    start_gateway: GatewayFactory,
) -> None:
    gateway = await start_gateway(flood_router(), routing=Routing(
        lanes=False, outbound_rate=RATE, outbound_burst=BURST))
    async with client(gateway.url) as ws:
        await call(ws, "game.flood", [30], 1)
        await call(ws, "sys.ping", None, 2)
        messages = await read_until(ws, lambda m: m.get("id") == 2)
    assert items(messages) == list(range(30))  # every one of them came first


async def test_droppable_telemetry_is_shed_while_reliable_events_arrive_in_order(
    start_gateway: GatewayFactory,
) -> None:
    limits = Limits(max_outbox_bytes=8000)  # the pressure mark: 4000 bytes, 20 messages
    gateway = await start_gateway(flood_router(), limits=limits)
    async with client(gateway.url) as ws:
        await call(ws, "game.mixed", [20, 100], 1)
        messages = await read_until(ws, lambda m: m.get("method") == "game.done")
    assert items(messages, "game.event") == list(range(20))
    kept = items(messages, "game.telemetry")
    assert kept == sorted(kept)  # what survived kept its order
    telemetry = gateway.metrics.lanes[Lane.TELEMETRY]
    assert telemetry.dropped == 100 - len(kept)
    assert telemetry.dropped >= 80  # the events alone fill the queue to the mark
    assert gateway.metrics.lanes[Lane.EVENTS].dropped == 0


async def test_a_coalescible_notification_keeps_only_the_latest(
    start_gateway: GatewayFactory,
) -> None:
    gateway = await start_gateway(flood_router())
    async with client(gateway.url) as ws:
        await call(ws, "game.flood", [20, "chat", "coalescible", "position"], 1)
        await call(ws, "game.mixed", [0, 0], 2)  # its marker comes after the chat lane
        messages = await read_until(ws, lambda m: m.get("method") == "game.done")
    assert items(messages) == [19]
    assert gateway.metrics.lanes[Lane.CHAT].coalesced == 19


async def test_a_shaped_client_left_behind_for_the_grace_is_closed_4008(
    start_gateway: GatewayFactory,
) -> None:
    # 1000 B/s leaves a 6000-byte flood over the pressure mark (the burst) for seconds.
    gateway = await start_gateway(flood_router(), routing=Routing(
        outbound_rate=1000.0, slow_consumer_grace=0.2))
    async with client(gateway.url) as ws:
        await call(ws, "game.flood", [30], 1)
        code, reason = await closed_with(ws)
    assert (code, reason) == (CloseCode.SLOW_CONSUMER, "slow consumer: behind for 200ms")


async def test_a_client_that_stops_reading_is_closed_4008_after_the_grace(
    start_gateway: GatewayFactory,
) -> None:
    """The socket fills, then the outbox passes its pressure mark (and stays under its
    bound): the grace runs out long before the write deadline. The client, not reading,
    sees nothing of the close; the gateway's disconnect hook says what it sent."""
    mark = 64 * 1024
    router = Router()

    @router.method("game.fill")
    async def fill(ctx: CallContext) -> None:
        peer = ctx.peer
        assert peer is not None
        chunk = jsonrpc.dumps(jsonrpc.encode_notification("game.chunk", "x" * 16_000))
        while peer.close_code is None and peer.backlog() <= mark:
            peer.push(chunk)
            await asyncio.sleep(0)  # the drain writes: only a full socket stops it

    # The write deadline (the socket took nothing) would close it too, but much later: the
    # close must not wait for the full socket to drain (websockets' own close would).
    limits = Limits(max_outbox_bytes=2 * mark, write_timeout=60.0)
    gateway = await start_gateway(router, limits=limits,
                                  routing=Routing(slow_consumer_grace=0.3))
    closed: asyncio.Queue[tuple[int | None, str]] = asyncio.Queue()
    gateway.on_disconnect(lambda conn, code, reason: closed.put_nowait((code, reason)))
    async with client(gateway.url, max_queue=1, close_timeout=0.1) as ws:
        await call(ws, "game.fill", None, 1)  # and never read again
        assert await asyncio.wait_for(closed.get(), 10 * TIMING) == (
            CloseCode.SLOW_CONSUMER, "slow consumer: behind for 300ms")


async def test_catching_up_within_the_grace_stops_the_clock(
    start_gateway: GatewayFactory,
) -> None:
    # Two floods of about 1.2 KiB over a 1000-byte mark at 1000 B/s: each is behind for
    # a fraction of the grace, both together for longer than it (about 1.3 s): the clock
    # must have stopped in between.
    gateway = await start_gateway(flood_router(), routing=Routing(
        outbound_rate=1000.0, slow_consumer_grace=0.6 * TIMING))
    async with client(gateway.url) as ws:
        started = time.monotonic()
        for id, count in ((1, 6), (2, 5)):
            await call(ws, "game.flood", [count], id)
            last = count - 1
            await read_until(ws, lambda m, last=last: m.get("method") == "game.item" and (
                m["params"]["i"] == last))
        await call(ws, "sys.ping", None, 3)
        assert "result" in (await read_until(ws, lambda m: m.get("id") == 3))[-1]
        assert time.monotonic() - started > 0.6 * TIMING  # longer than the grace in all


async def test_notifications_within_the_window_arrive_as_one_batch_array(
    start_gateway: GatewayFactory,
) -> None:
    gateway = await start_gateway(flood_router(), routing=Routing(batch_window=0.01))
    async with client(gateway.url) as ws:
        await call(ws, "game.flood", [5], 1)
        frames = [jsonrpc.loads(await asyncio.wait_for(ws.recv(), 5 * TIMING))
                  for _ in range(2)]
    [batch] = [f for f in frames if isinstance(f, list)]
    [reply] = [f for f in frames if isinstance(f, dict)]
    assert reply == {"jsonrpc": "2.0", "result": 5, "id": 1}  # never held by the window
    assert [n["method"] for n in batch] == ["game.item"] * 5
    assert items(batch) == list(range(5))
    assert all("id" not in n for n in batch)  # notifications: a batch that needs no answer


async def test_nothing_stays_queued_once_the_connection_is_gone(
    start_gateway: GatewayFactory,
) -> None:
    """Pushes go on until the gateway has seen the close (a room's fan-out does not know
    yet); whatever came after the outbox was dropped is not counted as waiting forever."""
    router = Router()
    spamming: list[asyncio.Task[None]] = []

    async def spam(ctx: CallContext) -> None:
        assert ctx.peer is not None
        while True:
            ctx.peer.notify("game.spam", PAD)
            await asyncio.sleep(0)

    @router.method("game.spam")
    def start(ctx: CallContext) -> None:
        spamming.append(asyncio.get_running_loop().create_task(spam(ctx)))

    gateway = await start_gateway(router)
    gone: asyncio.Queue[int | None] = asyncio.Queue()
    gateway.on_disconnect(lambda conn, code, reason: gone.put_nowait(code))
    async with client(gateway.url) as ws:
        await call(ws, "game.spam", None, 1)
        await read_until(ws, lambda m: m.get("method") == "game.spam")
    await asyncio.wait_for(gone.get(), 10 * TIMING)
    spamming[0].cancel()
    lanes = gateway.metrics.lanes
    assert [(lanes[lane].depth, lanes[lane].depth_bytes) for lane in Lane] == [(0, 0)] * 5
    assert lanes[Lane.EVENTS].sent > 0


async def test_a_reply_with_nothing_queued_makes_no_flow_with_lanes_off(
    start_gateway: GatewayFactory,
) -> None:
    """Lanes off and unshaped, a reply with nothing waiting goes straight out: a connection
    that only ever gets replies carries no outbox (nor, over websockets, a writer task)."""
    gateway = await start_gateway(flood_router(), routing=Routing(lanes=False))
    async with client(gateway.url) as ws:
        await call(ws, "sys.ping", None, 1)
        assert "result" in (await read_until(ws, lambda m: m.get("id") == 1))[-1]
        [conn] = gateway.registry
        assert conn.transport.queued() is None  # never made: nothing was ever queued
        await call(ws, "game.flood", [3], 2)  # the first notification makes it
        await read_until(ws, lambda m: m.get("id") == 2)
        assert conn.transport.queued() is not None


async def test_what_is_counted_sent_is_what_was_written_before_the_close(
    start_gateway: GatewayFactory,
) -> None:
    """A flood past the hard bound closes 4008 with messages still queued: those are not
    written after the Close frame, so they must not count as sent either."""
    gateway = await start_gateway(flood_router(), limits=Limits(max_outbox_bytes=2000))
    gone: asyncio.Queue[int | None] = asyncio.Queue()
    gateway.on_disconnect(lambda conn, code, reason: gone.put_nowait(code))
    received: list[Any] = []

    async def read_all(ws: ClientConnection) -> None:
        while True:
            received.append(jsonrpc.loads(await asyncio.wait_for(ws.recv(), 10 * TIMING)))

    async with client(gateway.url) as ws:
        await call(ws, "game.flood", [30], 1)
        with pytest.raises(ConnectionClosed):
            await read_all(ws)
        assert ws.close_code == CloseCode.SLOW_CONSUMER
    assert await asyncio.wait_for(gone.get(), 10 * TIMING) == CloseCode.SLOW_CONSUMER
    lanes = gateway.metrics.lanes
    assert lanes[Lane.EVENTS].sent == len(items(received))
    assert (lanes[Lane.EVENTS].depth, lanes[Lane.EVENTS].depth_bytes) == (0, 0)
