"""Rooms over the real gateway: a drop on the gateway's side loses and repeats nothing.

An in-process gateway on loopback (its memory backends), clients over each
client transport. The gateway closes a client's connection itself (as a node
that fails its socket does), so the session is held and resumed; a reconnect
step added before the client's :class:`Rooms` holds the recovery back until the
test has made it miss what it must (steps run in the order they were added).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from rtctl.client import (
    Client,
    ClientState,
    Reconnection,
    RoomMessage,
    RoomRecovery,
    Rooms,
    ServerError,
    Verdict,
)
from rtctl.client.transport import TRANSPORTS, TransportName
from rtctl.config import Recovery
from rtctl.gateway.server import Gateway
from rtctl.protocol.codes import CloseCode, ErrorCode
from rtctl.protocol.streams import StreamPosition
from tests.client.history_faults import faulty_gateway
from tests.client.lab import FAST, WAIT
from tests.conftest import GatewayFactory, make_token

ROOM = "lobby"


class Progress:
    """A count that tests and steps wait on."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Event()

    def add(self) -> None:
        self.count += 1
        self._changed.set()

    async def reach(self, count: int) -> None:
        async with asyncio.timeout(WAIT):
            while self.count < count:
                self._changed.clear()
                await self._changed.wait()


class Member:
    """One user's client and Rooms, what they delivered, and a gate before its recovery."""

    def __init__(self, url: str, user: str, transport: TransportName) -> None:
        self.client = Client(url, token=make_token(user), transport=transport, backoff=FAST,
                             ping_interval=None)
        self.hold: Callable[[], Any] | None = None  # awaited before the rooms join again
        self.client.add_reconnect_step(self._held)  # before Rooms adds its own
        self.rooms = Rooms(self.client)
        self.messages: list[RoomMessage] = []
        self.recoveries: list[RoomRecovery] = []
        self.arrived = Progress()
        self.rooms.on_message(self._add)
        self.rooms.on_recovery(self._add)

    async def _held(self, link: Reconnection) -> None:
        if self.hold is not None:
            await self.hold()

    def _add(self, event: RoomMessage | RoomRecovery) -> None:
        if isinstance(event, RoomMessage):
            self.messages.append(event)
        else:
            self.recoveries.append(event)
        self.arrived.add()

    async def until(self, messages: int, recoveries: int = 0) -> None:
        await self.arrived.reach(messages + recoveries)
        assert (len(self.messages), len(self.recoveries)) == (messages, recoveries)

    def dropped_by(self, gateway: Gateway) -> None:
        """The gateway closes this member's connection (so it holds the session)."""
        session = self.client.session
        assert session is not None
        peer = gateway.peer(session)
        assert peer is not None
        peer.close(CloseCode.INTERNAL_ERROR, "dropped by the test")


@pytest.fixture(params=TRANSPORTS)
async def members(request: pytest.FixtureRequest
                  ) -> AsyncIterator[Callable[[Gateway, str], Any]]:
    """Connected members of a gateway, over the client transport of the test; closed after."""
    made: list[Member] = []

    async def member(gateway: Gateway, user: str) -> Member:
        joined = Member(gateway.url, user, request.param)
        made.append(joined)
        await joined.client.connect()
        await joined.rooms.join(ROOM)
        return joined

    yield member
    for joined in made:
        await joined.client.close()


async def test_a_drop_mid_stream_loses_nothing_and_repeats_nothing(
        start_gateway: GatewayFactory, members: Callable[..., Any]) -> None:
    gateway = await start_gateway()
    alice, bob = await members(gateway, "alice"), await members(gateway, "bob")
    total, published = 300, Progress()

    async def publish_all() -> None:
        for n in range(total):
            await bob.rooms.publish(ROOM, n)
            published.add()

    publisher = asyncio.get_running_loop().create_task(publish_all())
    await alice.arrived.reach(total // 6)
    session, at_drop = alice.client.session, published.count
    alice.hold = lambda: published.reach(at_drop + 20)  # bob goes on while alice is away
    alice.dropped_by(gateway)
    await asyncio.wait_for(publisher, WAIT)
    await alice.until(messages=total, recoveries=1)
    assert [m.data for m in alice.messages] == list(range(total))
    assert [m.offset for m in alice.messages] == list(range(1, total + 1))
    (recovery,) = alice.recoveries
    # Each publish starts once the one before is answered: of the 20 answered after the
    # drop, 19 at least were sent after it, so never to the connection it closed.
    assert recovery.recovered
    assert recovery.replayed >= 19
    assert (alice.client.session, alice.client.resumed) == (session, True)
    assert alice.rooms.position(ROOM) == StreamPosition(total, recovery.position.epoch)


async def test_a_publish_in_flight_when_the_link_drops_is_sent_again_and_kept_once(
        start_gateway: GatewayFactory, members: Callable[..., Any]) -> None:
    gateway, history = await faulty_gateway(start_gateway)
    alice, bob = await members(gateway, "alice"), await members(gateway, "bob")
    history.appends.close()
    publish = asyncio.ensure_future(alice.rooms.publish(ROOM, "once"))
    await asyncio.wait_for(history.appends.entered.wait(), WAIT)  # the gateway has it, unanswered
    alice.dropped_by(gateway)
    await alice.client.wait_for(ClientState.RECONNECTING, timeout=WAIT)
    history.appends.open()  # appended now: its answer has no connection left to go to
    position = await asyncio.wait_for(publish, WAIT)  # not ConnectionLost: sent again
    await bob.rooms.publish(ROOM, "after")
    await bob.until(messages=1)
    await alice.until(messages=1, recoveries=1)  # not sent its own messages, live or replayed
    assert alice.recoveries[0].recovered
    assert [(m.sender, m.data, m.offset) for m in bob.messages + alice.messages] == [
        ("alice", "once", position.offset), ("bob", "after", position.offset + 1)]  # once
    assert alice.rooms.position(ROOM) == StreamPosition(position.offset + 1, position.epoch)


async def test_a_join_again_refused_for_a_while_is_made_on_a_new_link_and_loses_nothing(
        start_gateway: GatewayFactory, members: Callable[..., Any]) -> None:
    gateway, history = await faulty_gateway(start_gateway)
    alice, bob = await members(gateway, "alice"), await members(gateway, "bob")
    await bob.rooms.publish(ROOM, 1)
    await alice.until(messages=1)
    errors: list[Verdict] = []
    alice.client.on_error(errors.append)
    left: list[Any] = []
    bob.client.on_notification(lambda event: left.append(event.params), "room.left")
    missed = asyncio.Event()
    alice.hold = missed.wait
    history.failures = 1
    session = alice.client.session
    alice.dropped_by(gateway)
    await alice.client.wait_for(ClientState.RECONNECTING, timeout=WAIT)
    await bob.rooms.publish(ROOM, 2)
    missed.set()
    await alice.until(messages=2, recoveries=1)
    assert [(m.data, m.offset) for m in alice.messages] == [(1, 1), (2, 2)]
    (recovery,) = alice.recoveries
    assert (recovery.recovered, recovery.replayed, recovery.error) == (True, 1, None)
    assert history.failures == 0
    refusals = [v.error for v in errors if isinstance(v.error, ServerError)]
    assert [error.code for error in refusals] == [ErrorCode.BACKEND_UNAVAILABLE]
    # The link given up closed with 1011, not 1000: the gateway held the session, so
    # the others never saw alice leave (with 1000, bob's room.left comes long before).
    assert (alice.client.session, alice.client.resumed, left) == (session, True, [])

async def test_a_reset_reaches_on_recovery_and_delivery_goes_on(
        start_gateway: GatewayFactory, members: Callable[..., Any]) -> None:
    gateway = await start_gateway(recovery=Recovery(history_size=5))
    alice, bob = await members(gateway, "alice"), await members(gateway, "bob")
    await bob.rooms.publish(ROOM, 1)
    await alice.until(messages=1)
    gone = asyncio.Event()
    alice.hold = gone.wait
    alice.dropped_by(gateway)
    await alice.client.wait_for(ClientState.RECONNECTING, timeout=WAIT)
    for n in range(2, 12):  # more than the history keeps
        await bob.rooms.publish(ROOM, n)
    gone.set()
    await alice.until(messages=1, recoveries=1)
    (reset,) = alice.recoveries
    assert (reset.recovered, reset.replayed, reset.reason, reset.error) == (
        False, 0, "too_old", None)
    assert reset.position.offset == 11
    await bob.rooms.publish(ROOM, 12)
    await alice.until(messages=2, recoveries=1)
    assert [(m.data, m.offset) for m in alice.messages] == [(1, 1), (12, 12)]
    assert alice.rooms.counters.resets == 1
