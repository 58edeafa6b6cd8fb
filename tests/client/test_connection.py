"""The client against a real gateway on loopback, stopped and restarted on the same port.

Every test runs over each client transport (``websockets`` and picows; the
``lab`` fixture in ``conftest.py``); the gateway stays on its default. Every
wait is on the client's own state events, bounded by ``TIMING``; no sleep
stands in for synchronisation.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from rtctl import RpcError
from rtctl.client import (
    AuthRefused,
    Backoff,
    CallTimeout,
    Client,
    ClientClosed,
    ClientState,
    ConnectionLost,
    ErrorKind,
    GaveUp,
    IllegalTransition,
    MessageDropped,
    NotificationReceived,
    Overflow,
    QueueFull,
    QueueLimits,
    SequenceGap,
    ServerError,
    Verdict,
)
from tests.client.lab import WAIT, Lab, record_states
from tests.conftest import TIMING, make_token

S = ClientState


# -- connected -------------------------------------------------------------------


async def test_connect_call_notify_batch(lab: Lab) -> None:
    client = lab.client()
    states = record_states(client)
    await client.connect()
    assert states == [S.CONNECTING, S.CONNECTED]
    assert await client.call("sys.echo", [1, "a"]) == [1, "a"]
    info = await client.call("session.info")
    assert (info["user"], info["subprotocol"]) == ("alice", "rtctl.v1.binary")
    await client.notify("game.record", ["note"])
    results = await client.batch([("sys.echo", {"x": 1}), ("game.record", ["b"], False),
                                  ("nope", None)])
    assert results[0] == {"x": 1}
    assert isinstance(results[1], ServerError)
    assert results[1].code == -32601
    assert lab.recorded == [["note"], ["b"]]


async def test_server_errors_are_classified(lab: Lab) -> None:
    client = lab.client(retryable_codes={4999})
    await client.connect()
    with pytest.raises(ServerError) as info:
        await client.call("no.such.method")
    assert (info.value.code, info.value.retryable) == (-32601, False)
    with pytest.raises(ServerError) as info:
        await client.call("game.busy")
    assert (info.value.code, info.value.message, info.value.retryable) == (
        4999, "matchmaker busy", True)
    assert isinstance(info.value, RpcError)


async def test_call_timeout_when_the_gateway_is_slow(lab: Lab) -> None:
    client = lab.client()
    await client.connect()
    with pytest.raises(CallTimeout) as info:
        await client.call("game.hang", timeout=0.05 * TIMING)
    assert info.value.sent
    assert client.state is S.CONNECTED


async def test_ping_measures_rtt_and_clock_offset(lab: Lab) -> None:
    await lab.stop()
    await lab.start(clock=lambda: time.time() + 100.0)  # the server's clock is 100 s ahead
    client = lab.client(ping_interval=0.02)
    await client.connect()
    rtt = await client.ping()
    stats = client.netstats()
    assert 0 < rtt < 1
    assert stats.rtt_min is not None
    assert stats.rtt_min <= rtt
    assert stats.clock_offset == pytest.approx(100.0, abs=0.1)
    assert stats.messages_out >= 1
    assert stats.bytes_in > 0
    assert stats.bytes_out_per_s > 0


async def test_notifications_reach_callbacks_with_sequence_gaps(lab: Lab) -> None:
    client = lab.client(sequence_of=lambda method, params: (params["room"], params["seq"]))
    seen: list[NotificationReceived] = []
    client.on_notification(seen.append, method="game.seq")
    await client.connect()
    assert await client.call("game.stream", [[1, 2, 4]]) == "streamed"
    assert [(n.seq, n.gap) for n in seen] == [(1, None), (2, None),
                                             (4, SequenceGap("r1", 3, 4))]
    assert client.netstats().missing == 1


# -- the gateway goes away and comes back ----------------------------------------------


async def test_restart_reconnects_and_delivers_what_was_queued(lab: Lab) -> None:
    client = lab.client()
    states = record_states(client)
    await client.connect()
    await lab.stop()
    await client.wait_for(S.RECONNECTING, timeout=WAIT)
    await client.notify("game.record", ["while away"])
    pending = asyncio.ensure_future(client.call("sys.echo", ["queued"], timeout=WAIT))
    await asyncio.sleep(0)  # let the call reach the queue
    assert client.queued == 2
    await lab.start()
    assert await pending == ["queued"]
    assert client.state is S.CONNECTED
    assert lab.recorded == [["while away"]]
    assert states == [S.CONNECTING, S.CONNECTED, S.RECONNECTING, S.CONNECTED]
    assert (client.queue.accepted, client.queue.sent) == (2, 2)


async def test_in_flight_calls_fail_with_connection_lost(lab: Lab) -> None:
    client = lab.client()
    await client.connect()
    hanging = asyncio.ensure_future(client.call("game.hang", timeout=WAIT))
    await client.call("sys.ping")  # game.hang was written before this reply came
    await lab.stop()
    with pytest.raises(ConnectionLost):
        await hanging
    await lab.start()
    await client.wait_for(S.CONNECTED, timeout=WAIT)


async def test_a_queued_call_that_times_out_is_never_sent(lab: Lab) -> None:
    client = lab.client()
    await client.connect()
    await lab.stop()
    await client.wait_for(S.RECONNECTING, timeout=WAIT)
    with pytest.raises(CallTimeout) as info:
        await client.call("game.record", ["late"], timeout=0.02)
    assert not info.value.sent
    assert client.queued == 0
    await lab.start()
    await client.wait_for(S.CONNECTED, timeout=WAIT)
    await client.call("sys.ping")
    assert lab.recorded == []


async def test_overflow_reject_raises_and_keeps_the_queue(lab: Lab) -> None:
    client = lab.client(queue=QueueLimits(max_messages=2))
    await client.connect()
    await lab.stop()
    await client.wait_for(S.RECONNECTING, timeout=WAIT)
    await client.notify("game.record", [1])
    await client.notify("game.record", [2])
    with pytest.raises(QueueFull):
        await client.notify("game.record", [3])
    assert (client.queue.rejected, client.queued) == (1, 2)
    await lab.start()
    await client.wait_for(S.CONNECTED, timeout=WAIT)
    await client.call("sys.ping")
    assert lab.recorded == [[1], [2]]


async def test_overflow_drop_oldest_fails_the_dropped_call(lab: Lab) -> None:
    client = lab.client(queue=QueueLimits(max_messages=2, overflow=Overflow.DROP_OLDEST))
    await client.connect()
    await lab.stop()
    await client.wait_for(S.RECONNECTING, timeout=WAIT)
    dropped = asyncio.ensure_future(client.call("game.record", ["old"], timeout=WAIT))
    kept = asyncio.ensure_future(client.call("game.record", ["mid"], timeout=WAIT))
    await asyncio.sleep(0)  # let both calls reach the queue
    await client.notify("game.record", ["new"])  # its lane is empty: the oldest call goes
    with pytest.raises(MessageDropped):
        await dropped
    assert client.queue.dropped == 1
    await lab.start()
    await kept
    await client.call("sys.ping")
    assert lab.recorded == [["mid"], ["new"]]


async def test_max_attempts_gives_up_and_fails_what_waits(lab: Lab) -> None:
    client = lab.client(backoff=Backoff(base=0.01, cap=0.01, max_attempts=2))
    errors: list[Verdict] = []
    client.on_error(errors.append)
    await client.connect()
    await lab.stop()
    await client.wait_for(S.RECONNECTING, timeout=WAIT)
    waiting = asyncio.ensure_future(client.call("sys.ping", timeout=WAIT))
    await client.wait_for(S.DISCONNECTED, timeout=WAIT)
    assert isinstance(client.last_error, GaveUp)
    with pytest.raises(GaveUp):
        await waiting
    assert [v.kind for v in errors] == [ErrorKind.TRANSPORT] * 3  # the drop, two refusals
    with pytest.raises(IllegalTransition):
        await client.call("sys.ping")


# -- closing and reconnecting on request ------------------------------------------


async def test_close_fails_what_waits_and_is_final(lab: Lab) -> None:
    client = lab.client()
    await client.connect()
    await lab.stop()
    await client.wait_for(S.RECONNECTING, timeout=WAIT)
    waiting = asyncio.ensure_future(client.call("sys.ping", timeout=WAIT))
    await asyncio.sleep(0)
    await client.close()
    with pytest.raises(ClientClosed):
        await waiting
    assert client.state is S.CLOSED
    with pytest.raises(IllegalTransition):
        await client.connect()
    await client.close()  # twice is fine


async def test_async_context_manager(lab: Lab) -> None:
    async with Client(lab.url, token=make_token(), ping_interval=None,
                      transport=lab.transport) as client:
        assert await client.call("sys.echo", ["x"]) == ["x"]
    assert client.state is S.CLOSED


async def test_reconnect_drops_and_comes_back(lab: Lab) -> None:
    client = lab.client()
    states = record_states(client)
    await client.connect()
    await client.reconnect()
    await client.wait_for(S.RECONNECTING, timeout=WAIT)
    await client.wait_for(S.CONNECTED, timeout=WAIT)
    assert states == [S.CONNECTING, S.CONNECTED, S.RECONNECTING, S.CONNECTED]
    assert await client.call("sys.echo", [2]) == [2]


async def test_reconnect_starts_a_client_that_gave_up(lab: Lab) -> None:
    client = lab.client(token="not-a-jwt")
    with pytest.raises(AuthRefused):
        await client.connect()
    client.token = make_token()
    await client.reconnect()
    assert client.state is S.CONNECTED
