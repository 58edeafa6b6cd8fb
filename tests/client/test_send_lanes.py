"""The send queue's lanes and batching against a real gateway on loopback (and a scripted
one for a batch the gateway sends). Every wait is on an event or the client's state,
bounded by ``TIMING``; no sleep stands in for synchronisation."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from rtctl.client import ClientState, Lane, NotificationReceived, Overflow, QueueLimits
from rtctl.client.queue import BATCH_MAX_MESSAGES
from rtctl.exceptions import ConfigError
from tests.client.lab import WAIT, Lab
from tests.client.scripted_gateway import Scene

S = ClientState


async def test_after_a_reconnect_the_queue_goes_in_lane_order(lab: Lab) -> None:
    client = lab.client(queue=QueueLimits(lanes={Lane.CHAT: Overflow.COALESCE,
                                                 Lane.TELEMETRY: Overflow.DROP_OLDEST}))
    await client.connect()
    await lab.stop()
    await client.wait_for(S.RECONNECTING, timeout=WAIT)
    away = time.time()  # the client's clock
    await client.notify("game.record", ["t1"], lane=Lane.TELEMETRY)
    await client.notify("game.record", ["e1"])
    await client.notify("game.record", ["h1"], lane=Lane.CHAT, key="me")
    await client.notify("game.record", ["s1"], lane=Lane.STATE)
    call = asyncio.ensure_future(client.call("game.record", ["c1"], timeout=WAIT))
    await asyncio.sleep(0)  # let the call reach the queue
    await client.notify("game.record", ["e2"])
    await client.notify("game.record", ["h2"], lane=Lane.CHAT, key="me")  # replaces h1
    await client.notify("game.record", ["s2"], lane=Lane.STATE)
    assert client.queued == 7
    await lab.start()
    await call
    back = time.time()
    await client.call("sys.ping")
    assert lab.recorded == [["c1"], ["s1"], ["s2"], ["e1"], ["e2"], ["h2"], ["t1"]]
    lanes = client.lanes
    assert (lanes[Lane.STATE].sent, lanes[Lane.CHAT].coalesced, lanes[Lane.TELEMETRY].sent) == (
        2, 1, 1)
    assert all(counters.depth == 0 for _, counters in lanes.items())
    waited = lanes[Lane.TELEMETRY].wait
    assert waited.count == 1
    assert 0 < waited.total <= back - away  # it waited out the restart, and no longer


@pytest.mark.parametrize(("batch_window", "frames"), [(None, 3), (0.002, 1)])
async def test_notifications_within_the_window_reach_the_gateway_as_one_batch(
    lab: Lab, batch_window: float | None, frames: int
) -> None:
    ticks: list[Any] = []
    all_in = asyncio.Event()

    @lab.router.method("game.tick", raw_params=True)
    def tick(params: Any) -> None:
        ticks.append(params)
        if len(ticks) == 3:
            all_in.set()

    await lab.stop()  # the gateway learns its methods when it starts
    await lab.start()
    client = lab.client(batch_window=batch_window)
    await client.connect()
    assert lab.gateway is not None
    before = lab.gateway.metrics.messages_in
    await client.notify("game.tick", [1], lane=Lane.STATE)
    await client.notify("game.tick", [2])
    await client.notify("game.tick", [3], lane=Lane.STATE)
    async with asyncio.timeout(WAIT):
        await all_in.wait()
    assert lab.gateway.metrics.messages_in - before == frames
    # Batched, they went in lane order (inputs first); unbatched, as sent.
    assert ticks == ([[1], [3], [2]] if batch_window else [[1], [2], [3]])


async def test_a_call_is_never_held_by_the_batch_window(lab: Lab) -> None:
    client = lab.client(batch_window=WAIT)
    await client.connect()
    await client.notify("game.record", ["held"])
    assert await client.call("sys.echo", ["now"]) == ["now"]
    assert (client.queued, client.lanes[Lane.EVENTS].depth, lab.recorded) == (1, 1, [])


@pytest.mark.parametrize("overflow", [Overflow.REJECT, Overflow.DROP_OLDEST])
async def test_a_full_batch_frame_goes_at_once_so_batching_never_fills_the_queue(
    lab: Lab, overflow: Overflow
) -> None:
    client = lab.client(batch_window=WAIT, queue=QueueLimits(lanes={Lane.EVENTS: overflow}))
    await client.connect()
    assert lab.gateway is not None
    before = lab.gateway.metrics.messages_in
    count = 3 * BATCH_MAX_MESSAGES + 1  # more than the queue's 256 in one window
    for n in range(count):
        await client.notify("game.record", [n])
    await client.call("sys.ping")  # answered after what was written before it
    # Three full frames went without waiting out the window; the last notification waits.
    assert lab.recorded == [[n] for n in range(count - 1)]
    assert lab.gateway.metrics.messages_in - before == 3 + 1
    assert (client.queued, client.queue.rejected, client.queue.dropped) == (1, 0, 0)


async def test_notifications_held_for_a_batch_survive_a_drop(lab: Lab) -> None:
    client = lab.client(batch_window=WAIT)
    await client.connect()
    await client.notify("game.record", ["held"])
    await lab.stop()
    await client.wait_for(S.RECONNECTING, timeout=WAIT)
    await lab.start()
    await client.wait_for(S.CONNECTED, timeout=WAIT)  # flushed before it reports connected
    await client.call("sys.ping")
    assert (lab.recorded, client.queued) == ([["held"]], 0)


async def test_bad_batch_window_and_key_are_refused(lab: Lab) -> None:
    with pytest.raises(ConfigError, match="batch_window"):
        lab.client(batch_window=0)
    client = lab.client()
    await client.connect()
    with pytest.raises(ValueError, match="only for a COALESCE lane"):
        await client.notify("game.record", ["x"], key="k")
    await client.call("sys.ping")
    assert (client.queue.accepted, lab.recorded) == (0, [])


async def test_a_batch_from_the_gateway_is_delivered_in_order(scene: Scene) -> None:
    client = scene.client()
    seen: list[NotificationReceived] = []
    three = asyncio.Event()

    def got(event: NotificationReceived) -> None:
        seen.append(event)
        if len(seen) == 3:
            three.set()

    client.on_notification(got)
    await client.connect()
    conn = await scene.gateway.conn(0)
    await conn.ws.send(b'[{"jsonrpc":"2.0","method":"a","params":[1]},'
                       b'{"jsonrpc":"2.0","method":"b"},'
                       b'{"jsonrpc":"2.0","method":"a","params":[3]}]', text=True)
    async with asyncio.timeout(WAIT):
        await three.wait()
    assert [(n.method, n.params) for n in seen] == [("a", [1]), ("b", None), ("a", [3])]
