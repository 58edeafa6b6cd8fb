"""The client against a real gateway on loopback, stopped and restarted on the same port.

Every wait is on the client's own state events, bounded by ``TIMING``; no
sleep stands in for synchronisation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from rtctl import CallContext, Router, RpcError
from rtctl.client import (
    Backoff,
    CallTimeout,
    Client,
    ClientClosed,
    ClientState,
    ConnectionLost,
    ErrorKind,
    GaveUp,
    IllegalTransition,
    Kicked,
    MessageDropped,
    NotificationReceived,
    Overflow,
    QueueFull,
    QueueLimits,
    SequenceGap,
    ServerError,
    StateChanged,
    Verdict,
)
from rtctl.exceptions import AuthError
from rtctl.gateway.server import Gateway
from rtctl.protocol.codes import CloseCode
from tests.conftest import TIMING, gateway_config, make_token

WAIT = 5 * TIMING
FAST = Backoff(base=0.01, cap=0.05)
S = ClientState


class Lab:
    """A game router, gateways that restart on one port, and the clients to close."""

    def __init__(self) -> None:
        self.recorded: list[Any] = []
        self.release = asyncio.Event()
        self.router = self._router()
        self.gateway: Gateway | None = None
        self.port = 0
        self.clients: list[Client] = []

    def _router(self) -> Router:
        router = Router()

        @router.method("game.record", raw_params=True)
        def record(params: Any) -> None:
            self.recorded.append(params)

        @router.method("game.hang")
        async def hang() -> str:
            await self.release.wait()
            return "released"

        @router.method("game.busy")
        def busy() -> None:
            raise RpcError(4999, "matchmaker busy")

        @router.method("game.kick")
        def kick(ctx: CallContext) -> None:
            assert ctx.peer is not None
            ctx.peer.close(CloseCode.KICKED, "kicked by test")

        @router.method("game.expire")
        def expire(ctx: CallContext) -> None:  # what the gateway's expiry timer does
            assert ctx.peer is not None
            ctx.peer.close(CloseCode.TOKEN_EXPIRED, "token expired")

        @router.method("game.stream")
        def stream(ctx: CallContext, seqs: list[int]) -> str:
            assert ctx.peer is not None
            for seq in seqs:
                ctx.peer.notify("game.seq", {"room": "r1", "seq": seq})
            return "streamed"

        return router

    async def start(self, **config: Any) -> Gateway:
        clock = config.pop("clock", time.time)
        cfg = dataclasses.replace(gateway_config(**config), port=self.port)
        self.gateway = Gateway(cfg, router=self.router, clock=clock)
        await self.gateway.start()
        self.port = self.gateway.port
        return self.gateway

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.shutdown(drain=0)
            self.gateway = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def client(self, **kwargs: Any) -> Client:
        kwargs.setdefault("token", make_token())
        kwargs.setdefault("backoff", FAST)
        kwargs.setdefault("ping_interval", None)
        client = Client(self.url, **kwargs)
        self.clients.append(client)
        return client


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    lab = Lab()
    await lab.start()
    yield lab
    lab.release.set()
    for client in lab.clients:
        await client.close()
    await lab.stop()


def record_states(client: Client) -> list[ClientState]:
    seen: list[ClientState] = []
    client.on_state_change(lambda event: seen.append(event.new))
    return seen


# -- connected -------------------------------------------------------------------


async def test_connect_call_notify_batch(lab: Lab) -> None:
    client = lab.client()
    states = record_states(client)
    await client.connect()
    assert states == [S.CONNECTING, S.CONNECTED]
    assert await client.call("sys.echo", [1, "a"]) == [1, "a"]
    info = await client.call("session.info")
    assert (info["user"], info["subprotocol"]) == ("alice", "rtctl.v1")
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
    await asyncio.sleep(0)
    await client.notify("game.record", ["mid"])
    await client.notify("game.record", ["new"])
    with pytest.raises(MessageDropped):
        await dropped
    assert client.queue.dropped == 1
    await lab.start()
    await client.wait_for(S.CONNECTED, timeout=WAIT)
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


# -- auth and other reasons to stop ------------------------------------------------------


async def test_a_refused_token_stops_the_client(lab: Lab) -> None:
    client = lab.client(token="not-a-jwt")
    with pytest.raises(AuthError) as info:
        await client.connect()
    assert info.value.reason == "malformed"
    assert client.state is S.DISCONNECTED
    client.token = make_token()  # a client that stopped may start again
    await client.connect()
    assert client.state is S.CONNECTED


async def test_the_refresh_callback_supplies_a_new_token(lab: Lab) -> None:
    asked: list[str] = []

    async def refresh(error: AuthError) -> str:
        asked.append(error.reason)
        return make_token("alice")

    client = lab.client(token="not-a-jwt", token_refresh=refresh)
    await client.connect()
    assert asked == ["malformed"]
    assert (await client.call("session.info"))["user"] == "alice"


async def test_token_expiry_4001_asks_for_a_new_token(lab: Lab) -> None:
    refreshed = asyncio.Event()

    def refresh(error: AuthError) -> str:
        assert error.reason == "expired"
        refreshed.set()
        return make_token()

    client = lab.client(token_refresh=refresh)
    states = record_states(client)
    await client.connect()
    await client.notify("game.expire")
    await asyncio.wait_for(refreshed.wait(), WAIT)
    await client.wait_for(S.CONNECTED, timeout=WAIT)
    assert states == [S.CONNECTING, S.CONNECTED, S.RECONNECTING, S.CONNECTED]


async def test_token_expiry_without_refresh_stops(lab: Lab) -> None:
    client = lab.client()
    events: list[StateChanged] = []
    client.on_state_change(events.append)
    await client.connect()
    await client.notify("game.expire")
    await client.wait_for(S.DISCONNECTED, timeout=WAIT)
    assert isinstance(events[-1].error, AuthError)
    assert events[-1].error.reason == "expired"


async def test_kicked_is_not_retried(lab: Lab) -> None:
    client = lab.client()
    await client.connect()
    await client.notify("game.kick")
    await client.wait_for(S.DISCONNECTED, timeout=WAIT)
    assert isinstance(client.last_error, Kicked)


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
    async with Client(lab.url, token=make_token(), ping_interval=None) as client:
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
    with pytest.raises(AuthError):
        await client.connect()
    client.token = make_token()
    await client.reconnect()
    assert client.state is S.CONNECTED
