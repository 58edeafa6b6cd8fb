"""A stateful room kept over a client: routing, resyncs, rejoins, leaving.

First against a fake client whose calls a test scripts (to lose replies and
snapshots, refuse resyncs, drop the connection at chosen moments), then over
the real gateway with a stateful room type, on loopback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import pytest

from rtctl import CallContext, Router
from rtctl.client import (
    Backoff,
    CallTimeout,
    Client,
    ClientError,
    ClientState,
    NotificationReceived,
    ServerError,
    StateChanged,
    StateStore,
    SyncedRoom,
    synced_room,
)
from rtctl.client.errors import DEFAULT_RETRYABLE_CODES, SnapshotUnreadable, server_error
from rtctl.client.netstats import MIN_RTO, NetSnapshot, NetStats
from rtctl.client.recovery import Reconnection, ReconnectStep
from rtctl.gateway.server import Gateway
from rtctl.protocol.codes import CloseCode, ErrorCode
from rtctl.protocol.frames import state_frame
from rtctl.services import builtin_services
from rtctl.services.state_room import StateRoom
from rtctl.state import Change, Encoder, Schema, uint8
from tests.client.lab import FAST, WAIT
from tests.client.test_state_store import Arena, Entity
from tests.conftest import TIMING, gateway_config, make_token

ROOM = "arena:1"
FOREVER = 3600.0  # a call timeout no test waits out: what ends a wait early is under test
Answer = Callable[[str, Any], Awaitable[Any]]


class FakeClient:
    """What a :class:`SyncedRoom` uses of a client; ``answer`` plays the gateway, within
    the call's timeout as the real client waits (the call timeout when none is given)."""

    def __init__(self, answer: Answer, *, call_timeout: float = WAIT) -> None:
        self.state = ClientState.CONNECTED
        self.call_timeout = call_timeout
        self.calls: list[tuple[str, Any]] = []
        self.timeouts: list[float] = []  # each call's, as given
        self.answer = answer
        self.pings = NetStats()  # no ping yet: resyncs wait for the call timeout
        self._binary: list[Callable[[bytes], object]] = []
        self._notes: list[tuple[str | None, Callable[[NotificationReceived], object]]] = []
        self._states: list[Callable[[StateChanged], object]] = []
        self._steps: list[ReconnectStep] = []

    def add_reconnect_step(self, step: ReconnectStep) -> None:
        self._steps.append(step)

    async def reconnect(self, *, links: int = 1) -> None:
        """Drop and come back as the real client does: the steps run on each new link
        before ``connected``; ``links`` more than 1 plays links that dropped after their
        steps, before ``connected`` (``move`` alone plays a reconnect whose steps did
        not join the room)."""
        self.move(ClientState.RECONNECTING)
        for _ in range(links):
            for step in self._steps:
                await step(Reconnection(self.call, self.give_up))
        self.move(ClientState.CONNECTED)

    async def give_up(self, error: ClientError) -> None:
        raise AssertionError(f"a SyncedRoom never gives a link up, but did: {error}")

    def on_binary(self, callback: Callable[[bytes], object]) -> None:
        self._binary.append(callback)

    def netstats(self) -> NetSnapshot:
        return self.pings.snapshot(0.0)

    def on_notification(self, callback: Callable[[NotificationReceived], object],
                        method: str | None = None) -> None:
        self._notes.append((method, callback))

    def on_state_change(self, callback: Callable[[StateChanged], object]) -> None:
        self._states.append(callback)

    async def call(self, method: str, params: Any = None, *,
                   timeout: float | None = None) -> Any:
        self.calls.append((method, params))
        timeout = self.call_timeout if timeout is None else timeout
        self.timeouts.append(timeout)
        try:  # in the caller's task, as the real client does: no extra turns of the loop
            async with asyncio.timeout(timeout):
                return await self.answer(method, params)
        except TimeoutError:
            raise CallTimeout(f"no reply within {timeout:g}s", sent=True) from None

    def frame(self, data: bytes) -> None:
        for callback in self._binary:
            callback(data)

    def notify(self, method: str, params: Any) -> None:
        for wanted, callback in self._notes:
            if wanted in (None, method):
                callback(NotificationReceived(method, params))

    def move(self, *states: ClientState) -> None:
        for new in states:
            old, self.state = self.state, new
            for callback in self._states:
                callback(StateChanged(old, new))

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]


class Room:
    """The gateway's side of one room: its state, and the frames it sends."""

    def __init__(self) -> None:
        self.state = Arena()
        self.state.entities["e1"] = Entity(hp=100, name="ada")
        self.enc = Encoder(self.state)

    def full(self) -> bytes:
        return state_frame(ROOM, self.enc.full())

    def tick(self) -> bytes:
        self.state.tick += 1
        return state_frame(ROOM, self.enc.delta())


def gateway(room: Room, fake: list[FakeClient], **answers: Answer) -> Answer:
    """An answer function: room.join and state.resync send the snapshot first, as the
    gateway does; ``answers`` replace the default for their method."""

    async def answer(method: str, params: Any) -> Any:
        if method in answers:
            return await answers[method](method, params)
        if method in ("room.join", "state.resync"):
            fake[0].frame(room.full())
            return {"version": room.enc.version}
        return None

    return answer


def make(room: Room, **answers: Answer) -> FakeClient:
    holder: list[FakeClient] = []
    client = FakeClient(gateway(room, holder, **answers))
    holder.append(client)
    return client


async def not_in_room(method: str, params: Any) -> Any:
    """The gateway's answer to a connection that is not in the room."""
    raise ServerError(ErrorCode.FORBIDDEN, "Not in room")


async def join(client: FakeClient, store: StateStore[Arena] | type[Arena] = Arena,
               **kwargs: Any) -> SyncedRoom[Arena]:
    return await SyncedRoom.join(cast(Client, client), ROOM, store, **kwargs)


async def test_join_routes_the_snapshot_that_comes_before_the_reply() -> None:
    room = Room()
    client = make(room)
    store = StateStore(Arena)
    added: list[Change] = []
    store.on_change("entities.*", added.append)
    synced = await join(client, store, options={"seed": 3})
    assert client.calls == [("room.join", {"room": ROOM, "options": {"seed": 3}})]
    assert synced.store is store
    assert synced.state.to_dict() == room.state.to_dict()
    assert [(c.path, c.kind) for c in added] == [(("entities", "e1"), "add")]
    client.frame(room.tick())
    assert synced.state.to_dict() == room.state.to_dict()


async def test_only_this_rooms_state_frames_reach_its_store(
        caplog: pytest.LogCaptureFixture) -> None:
    room = Room()
    client = make(room)
    synced = await join(client)
    before = synced.store.stats.messages
    with caplog.at_level(logging.WARNING, logger="rtctl.client"):
        client.frame(state_frame("arena:2", room.enc.full()))  # another room
        client.frame(b"\x02" + room.enc.full())  # a reserved frame type
        client.frame(b"\x01\x09arena")  # a state frame cut short
    assert synced.store.stats.messages == before
    assert [r.getMessage() for r in caplog.records] == [
        "unreadable state frame dropped: state frame cut short: a room name of 9 bytes, "
        "5 present"]


async def test_json_patches_arrive_as_state_patch_notifications() -> None:
    room = Room()
    holder: list[FakeClient] = []

    async def join_json(method: str, params: Any) -> Any:
        room.enc.commit()
        holder[0].notify("state.patch", {"room": ROOM, "message": room.enc.full_object()})
        return {"version": room.enc.version, "encoding": "json"}

    client = FakeClient(gateway(room, holder, **{"room.join": join_json}))
    holder.append(client)
    synced = await join(client)
    base = room.enc.version
    room.state.entities["e1"].hp = 1
    room.enc.commit()
    client.notify("state.patch", {"room": ROOM, "message": room.enc.since_object(base)})
    client.notify("state.patch", {"room": "arena:2", "message": room.enc.full_object()})
    assert synced.state.to_dict() == room.state.to_dict()
    assert synced.store.stats.patches == 1


async def test_a_gap_asks_for_one_resync_at_a_time() -> None:
    room = Room()
    asked, release = asyncio.Event(), asyncio.Event()
    holder: list[FakeClient] = []

    async def slow_resync(method: str, params: Any) -> Any:
        asked.set()
        await release.wait()
        holder[0].frame(room.full())
        return {"version": room.enc.version}

    client = FakeClient(gateway(room, holder, **{"state.resync": slow_resync}))
    holder.append(client)
    synced = await join(client)
    room.tick()  # lost
    client.frame(room.tick())
    await asyncio.wait_for(asked.wait(), WAIT)
    for _ in range(3):
        client.frame(room.tick())  # dropped while the resync is on its way
    release.set()
    await synced.synced(timeout=WAIT)
    assert client.calls[1:] == [("state.resync", {"room": ROOM})]
    assert synced.state.to_dict() == room.state.to_dict()
    stats = synced.store.stats
    assert (stats.gaps, stats.dropped, stats.resyncs, synced.resync_calls) == (1, 3, 1, 1)


async def test_a_lost_resync_reply_is_asked_again() -> None:
    room = Room()
    holder: list[FakeClient] = []
    answered = iter((False, True))

    async def lossy(method: str, params: Any) -> Any:
        if not next(answered):
            raise CallTimeout("no reply within 5s", sent=True)
        holder[0].frame(room.full())
        return {"version": room.enc.version}

    client = FakeClient(gateway(room, holder, **{"state.resync": lossy}))
    holder.append(client)
    synced = await join(client)
    client.frame(b"\x01\x07arena:1\x02\xff")  # corrupt
    await synced.synced(timeout=WAIT)
    assert client.methods() == ["room.join", "state.resync", "state.resync"]
    assert synced.store.stats.corrupt == 1
    assert synced.resync_calls == 2


async def repaired(room: Room, holder: list[FakeClient], resync: Answer, *,
                   call_timeout: float) -> tuple[FakeClient, SyncedRoom[Arena]]:
    """Join with an RTT measured (the retransmission timeout is then its floor,
    MIN_RTO), corrupt the state, and return once ``resync`` has repaired it."""
    client = FakeClient(gateway(room, holder, **{"state.resync": resync}),
                        call_timeout=call_timeout)
    holder.append(client)
    client.pings.observe_ping(0.0, 0.01, 0.005)
    synced = await join(client)
    client.frame(b"\x01\x07arena:1\x02\xff")  # corrupt
    await synced.synced(timeout=WAIT)
    return client, synced


async def test_a_lost_resync_snapshot_is_asked_again_after_a_round_trip_timeout() -> None:
    """With an RTT measured, a snapshot that does not come is asked for again after the
    retransmission timeout, not after the call timeout (which no test waits out), and
    the next one is waited for twice as long."""
    room = Room()
    holder: list[FakeClient] = []
    snapshots = iter((False, True))

    async def lossy(method: str, params: Any) -> Any:
        if next(snapshots):
            holder[0].frame(room.full())
        return {"version": room.enc.version}

    client, _ = await repaired(room, holder, lossy, call_timeout=FOREVER)
    assert client.methods() == ["room.join", "state.resync", "state.resync"]
    assert client.timeouts[1:] == [MIN_RTO, 2 * MIN_RTO]


async def test_a_slow_resync_reply_is_waited_for_twice_as_long_next_time() -> None:
    """The reply takes 1.5 retransmission timeouts: the first request is given up after
    one and asked again with twice the patience, which it fits in. The two deadlines
    are timers of one loop, so their order is certain, however loaded the machine."""
    room = Room()
    holder: list[FakeClient] = []

    async def slow(method: str, params: Any) -> Any:
        await asyncio.sleep(1.5 * MIN_RTO)  # the network's delay, under test
        holder[0].frame(room.full())
        return {"version": room.enc.version}

    client, _ = await repaired(room, holder, slow, call_timeout=FOREVER)
    assert client.methods() == ["room.join", "state.resync", "state.resync"]
    assert client.timeouts[1:] == [MIN_RTO, 2 * MIN_RTO]


async def test_resync_patience_doubles_up_to_the_call_timeout_until_a_snapshot() -> None:
    """RFC 6298 §5.5: each timeout in a row doubles the wait, capped at the call
    timeout; a snapshot that comes starts it over from the retransmission timeout, even
    when a gap right behind it means asking again."""
    room = Room()
    holder: list[FakeClient] = []
    script = iter(("lost", "lost", "lost", "then a gap", "lost", "answered"))

    async def lossy(method: str, params: Any) -> Any:
        outcome = next(script)
        if outcome == "lost":
            raise CallTimeout("no reply", sent=True)
        holder[0].frame(room.full())
        if outcome == "then a gap":
            room.tick()  # lost
            holder[0].frame(room.tick())
        return {"version": room.enc.version}

    client, _ = await repaired(room, holder, lossy, call_timeout=3 * MIN_RTO)
    assert client.timeouts[1:] == [MIN_RTO, 2 * MIN_RTO, 3 * MIN_RTO, 3 * MIN_RTO,
                                   MIN_RTO, 2 * MIN_RTO]


async def test_resync_patience_stays_finite_after_any_number_of_timeouts() -> None:
    """Hours of timeouts in a row on a connection that stays up: the doubling is bounded,
    so the patience is the call timeout, not an OverflowError that ends the repairs."""
    client = make(Room())
    client.pings.observe_ping(0.0, 0.01, 0.005)
    synced = await join(client)
    assert synced._patience(5000) == client.call_timeout


async def one_turn() -> None:
    """Let the loop run once: a task created before has then run up to its first wait
    (asyncio runs ready callbacks first in, first out)."""
    await asyncio.sleep(0)


async def test_a_refused_resync_stops_until_the_next_reconnect(
        caplog: pytest.LogCaptureFixture) -> None:
    room = Room()
    client = make(room, **{"state.resync": not_in_room})
    synced = await join(client)
    with caplog.at_level(logging.WARNING, logger="rtctl.client"):
        client.frame(b"\x01\x07arena:1\x02\xff")
        await one_turn()
    assert isinstance(synced.last_error, ServerError)
    assert any("cannot get a state snapshot" in r.getMessage() for r in caplog.records)
    client.frame(room.tick())
    client.frame(room.tick())
    await one_turn()
    assert client.methods() == ["room.join", "state.resync"]
    client.move(ClientState.RECONNECTING, ClientState.CONNECTED)
    await synced.synced(timeout=WAIT)
    assert client.methods() == ["room.join", "state.resync", "room.join"]
    assert synced.rejoins == 1


async def test_a_refusal_from_a_connection_since_lost_does_not_stop_the_rejoin() -> None:
    room = Room()
    holder: list[FakeClient] = []

    async def resync_across_a_reconnect(method: str, params: Any) -> Any:
        # The request went out on a connection that dropped; the new one, which is in
        # no room yet, refuses it, and answers only once the reconnect is announced.
        holder[0].move(ClientState.RECONNECTING, ClientState.CONNECTED)
        raise ServerError(ErrorCode.FORBIDDEN, "Not in room")

    client = FakeClient(gateway(room, holder, **{"state.resync": resync_across_a_reconnect}))
    holder.append(client)
    synced = await join(client)
    client.frame(b"\x01\x07arena:1\x02\xff")
    await synced.synced(timeout=WAIT)
    assert client.methods() == ["room.join", "state.resync", "room.join"]
    assert synced.last_error is None


async def test_after_a_reconnect_the_room_is_joined_again_and_its_snapshot_taken() -> None:
    room = Room()
    client = make(room)
    synced = await join(client)
    for _ in range(3):
        client.frame(room.tick())
    client.move(ClientState.RECONNECTING)
    assert synced.store.needs_resync
    client.frame(room.tick())  # a straggler: not applied
    restarted = Room()  # the room was made again, at an older version
    room.state, room.enc = restarted.state, restarted.enc
    client.move(ClientState.CONNECTED)
    await synced.synced(timeout=WAIT)
    assert client.methods() == ["room.join", "room.join"]
    assert synced.store.version == restarted.enc.version
    assert synced.state.to_dict() == restarted.state.to_dict()
    assert (synced.rejoins, synced.store.stats.resyncs) == (1, 1)


async def test_a_reconnect_step_joins_the_room_again_before_connected() -> None:
    room = Room()
    holder: list[FakeClient] = []
    joined_while: list[ClientState] = []

    async def join_once_refused(method: str, params: Any) -> Any:
        joined_while.append(holder[0].state)
        if len(joined_while) == 2:  # the step's: refused, so the repairs join once connected
            raise ServerError(ErrorCode.BACKEND_UNAVAILABLE, "try again")
        holder[0].frame(room.full())
        return {"version": room.enc.version}

    client = FakeClient(gateway(room, holder, **{"room.join": join_once_refused}))
    holder.append(client)
    synced = await join(client)
    await client.reconnect()
    await synced.synced(timeout=WAIT)
    assert joined_while == [ClientState.CONNECTED, ClientState.RECONNECTING,
                            ClientState.CONNECTED]
    await client.reconnect()
    assert joined_while[3:] == [ClientState.RECONNECTING]
    assert not synced.store.needs_resync  # the step's join brought the snapshot: no repairs
    assert (client.methods(), synced.rejoins) == (["room.join"] * 4, 3)



async def test_a_link_lost_after_its_step_joined_the_room_again_is_not_trusted() -> None:
    room = Room()
    client = make(room)
    synced = await join(client)
    await client.reconnect(links=2)  # the first new link dropped after the steps
    assert (client.methods(), synced.rejoins) == (["room.join"] * 3, 2)
    assert not synced.store.needs_resync

async def test_a_snapshot_lost_after_the_join_is_asked_for() -> None:
    room = Room()
    holder: list[FakeClient] = []

    async def join_lost(method: str, params: Any) -> Any:
        return {"version": room.enc.version}  # the snapshot frame never arrives

    client = FakeClient(gateway(room, holder, **{"room.join": join_lost}),
                        call_timeout=0.05 * TIMING)
    holder.append(client)
    synced = await join(client)
    assert client.methods() == ["room.join", "state.resync"]
    assert synced.state.to_dict() == room.state.to_dict()


async def test_no_snapshot_at_all_fails_the_join_and_leaves() -> None:
    room = Room()

    async def nothing(method: str, params: Any) -> Any:
        return {"version": 0}

    client = make(room, **{"room.join": nothing, "state.resync": nothing})
    client.call_timeout = 0.05 * TIMING
    with pytest.raises(CallTimeout, match="no state snapshot"):
        await join(client)
    assert client.methods() == ["room.join", "state.resync", "room.leave"]
    client.answer = gateway(room, [client])
    synced = await join(client)  # the room's name is free again on this client
    assert synced.state.to_dict() == room.state.to_dict()


async def test_leave_stops_the_store_and_frees_the_name() -> None:
    room = Room()
    client = make(room)
    synced = await join(client)
    with pytest.raises(ValueError, match="already syncs"):
        await join(client)
    await synced.leave()
    assert client.methods() == ["room.join", "room.leave"]
    before = synced.store.stats.messages
    client.frame(room.tick())
    assert synced.store.stats.messages == before
    again = await join(client)
    client.move(ClientState.RECONNECTING)
    await again.leave()  # the membership ended with the connection: nothing to send
    assert client.methods() == ["room.join", "room.leave", "room.join"]


async def test_a_closed_client_stops_its_rooms() -> None:
    room = Room()
    client = make(room)
    synced = await join(client)
    client.move(ClientState.CLOSED)
    client.frame(room.tick())
    assert synced.store.stats.patches == 0


async def test_a_gap_between_a_resync_snapshot_and_its_reply_asks_again_at_once() -> None:
    room = Room()

    async def snapshot_then_gap(method: str, params: Any) -> Any:
        client.frame(room.full())
        if client.methods().count("state.resync") == 1:
            room.tick()  # lost
            client.frame(room.tick())  # a gap, before the reply
        return {"version": room.enc.version}

    client = make(room, **{"state.resync": snapshot_then_gap})
    client.call_timeout = FOREVER
    synced = await join(client)
    room.tick()
    client.frame(room.tick())
    await synced.synced(timeout=WAIT)
    assert client.methods() == ["room.join", "state.resync", "state.resync"]
    assert synced.state.to_dict() == room.state.to_dict()
    assert synced.store.stats.gaps == 2


async def test_a_drop_while_a_snapshot_is_awaited_rejoins_as_soon_as_back() -> None:
    room = Room()
    asked = asyncio.Event()

    async def snapshot_lost(method: str, params: Any) -> Any:
        asked.set()
        return {"version": room.enc.version}  # its snapshot is lost with the connection

    client = make(room, **{"state.resync": snapshot_lost})
    client.call_timeout = FOREVER
    synced = await join(client)
    room.tick()
    client.frame(room.tick())
    await asyncio.wait_for(asked.wait(), WAIT)  # the repair now awaits the snapshot
    client.move(ClientState.RECONNECTING, ClientState.CONNECTED)
    await synced.synced(timeout=WAIT)
    assert client.methods() == ["room.join", "state.resync", "room.join"]
    assert synced.rejoins == 1


async def test_a_drop_during_a_resync_backoff_rejoins_as_soon_as_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synced_room, "_RETRY", Backoff(base=FOREVER, cap=FOREVER))
    room = Room()
    refused = asyncio.Event()

    async def busy(method: str, params: Any) -> Any:
        refused.set()
        raise ServerError(ErrorCode.BACKEND_UNAVAILABLE, "Backend unavailable", retryable=True)

    client = make(room, **{"state.resync": busy})
    synced = await join(client)
    room.tick()
    client.frame(room.tick())
    await asyncio.wait_for(refused.wait(), WAIT)  # the repair now waits out its backoff
    client.move(ClientState.RECONNECTING, ClientState.CONNECTED)
    await synced.synced(timeout=WAIT)
    assert client.methods() == ["room.join", "state.resync", "room.join"]


async def test_a_rate_limited_resync_waits_as_long_as_the_gateway_says(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synced_room, "_RETRY", Backoff(base=0.001, cap=0.001))
    room = Room()
    asked: list[float] = []  # the loop's clock at each state.resync

    async def limited_once(method: str, params: Any) -> Any:
        asked.append(asyncio.get_running_loop().time())
        if len(asked) == 1:  # -32029 as the gateway sends it, classified by the client
            raise server_error({"code": ErrorCode.RATE_LIMITED, "message": "Rate limited",
                                "data": {"retry_after_ms": 50}}, DEFAULT_RETRYABLE_CODES)
        client.frame(room.full())
        return {"version": room.enc.version}

    client = make(room, **{"state.resync": limited_once})
    synced = await join(client)
    room.tick()
    client.frame(room.tick())
    await synced.synced(timeout=WAIT)
    assert client.methods() == ["room.join", "state.resync", "state.resync"]
    # 50 ms, not the backoff's 1 ms (less the loop's clock resolution, which may fire a
    # timer that much early).
    assert asked[1] - asked[0] >= 0.05 - 1e-6


async def test_a_rejoin_answered_across_another_reconnect_is_sent_again() -> None:
    room = Room()

    async def join_across_a_reconnect(method: str, params: Any) -> Any:
        if client.methods().count("room.join") == 2:
            # The answer comes, but its connection dropped meanwhile, and the membership too.
            client.move(ClientState.RECONNECTING, ClientState.CONNECTED)
        else:
            client.frame(room.full())
        return {"version": room.enc.version}

    client = make(room, **{"room.join": join_across_a_reconnect, "state.resync": not_in_room})
    client.call_timeout = FOREVER
    synced = await join(client)
    client.move(ClientState.RECONNECTING, ClientState.CONNECTED)
    await synced.synced(timeout=WAIT)
    assert client.methods() == ["room.join", "room.join", "room.join"]
    assert (synced.rejoins, synced.last_error) == (2, None)


@pytest.mark.parametrize("reply_lost", [False, True])
async def test_leave_during_a_rejoin_waits_for_its_answer_then_leaves(reply_lost: bool) -> None:
    room = Room()
    asked, answer = asyncio.Event(), asyncio.Event()

    async def slow_rejoin(method: str, params: Any) -> Any:
        if client.methods().count("room.join") == 2:
            asked.set()
            await answer.wait()
            if reply_lost:  # and the join itself, before it reached the gateway
                raise CallTimeout("no reply within 5s", sent=True)
        client.frame(room.full())
        return {"version": room.enc.version}

    answers: dict[str, Answer] = {"room.join": slow_rejoin}
    if reply_lost:
        answers["room.leave"] = not_in_room
    client = make(room, **answers)
    synced = await join(client)
    client.move(ClientState.RECONNECTING, ClientState.CONNECTED)
    await asyncio.wait_for(asked.wait(), WAIT)
    leaving = asyncio.create_task(synced.leave())
    await one_turn()
    assert client.methods() == ["room.join", "room.join"]  # a leave now could overtake it
    answer.set()
    await asyncio.wait_for(leaving, WAIT)
    assert client.methods() == ["room.join", "room.join", "room.leave"]


async def test_a_snapshot_in_another_schema_fails_the_join_at_once() -> None:
    room = Room()
    client = make(room)
    client.call_timeout = FOREVER
    async with asyncio.timeout(WAIT):
        with pytest.raises(SnapshotUnreadable, match=(
                r"^room arena:1: its state snapshot does not decode as Match \(corrupt "
                r"message: .+\); is that the room's schema\?$")):
            await SyncedRoom.join(cast(Client, client), ROOM, Match)
    assert client.methods() == ["room.join", "room.leave"]


async def test_repairs_stop_after_three_snapshots_that_do_not_decode(
        caplog: pytest.LogCaptureFixture) -> None:
    room = Room()
    other = Match()  # the game's server came back with another schema
    other.players["p"] = Player(hp=1, name="p")

    async def other_schema(method: str, params: Any) -> Any:
        client.frame(state_frame(ROOM, Encoder(other).full()))
        return {"version": 1}

    client = make(room, **{"state.resync": other_schema})
    synced = await join(client)
    with caplog.at_level(logging.WARNING, logger="rtctl.client"):
        room.tick()
        client.frame(room.tick())  # a gap
        await one_turn()
    assert client.methods() == ["room.join"] + ["state.resync"] * 3
    assert isinstance(synced.last_error, SnapshotUnreadable)
    assert "does not decode as Arena" in str(synced.last_error)
    assert any("cannot get a state snapshot" in r.getMessage() for r in caplog.records)
    client.frame(room.tick())
    await one_turn()
    assert len(client.calls) == 4  # none until the next reconnect


async def test_a_join_fails_with_the_refusal_that_stopped_its_repairs() -> None:
    room = Room()

    async def snapshot_then_gap(method: str, params: Any) -> Any:
        client.frame(room.full())
        room.tick()  # lost
        client.frame(room.tick())
        return {"version": room.enc.version}

    client = make(room, **{"room.join": snapshot_then_gap, "state.resync": not_in_room})
    client.call_timeout = FOREVER
    async with asyncio.timeout(WAIT):
        with pytest.raises(ServerError, match="Not in room"):
            await join(client)
    assert client.methods() == ["room.join", "state.resync", "room.leave"]


async def test_a_client_dropped_without_close_is_freed_with_its_rooms() -> None:
    room = Room()
    client = make(room)
    synced = await join(client)
    freed: list[weakref.ref[Any]] = [weakref.ref(o) for o in (client, synced, synced.store)]
    del client, synced
    gc.collect()
    assert [ref() for ref in freed] == [None, None, None]


# -- over the real gateway ----------------------------------------------------------------


class Player(Schema):
    hp: uint8
    name: str


class Match(Schema):
    players: dict[str, Player]


class MatchRoom(StateRoom[Match]):
    schema = Match
    tick_rate = 50.0

    def on_join(self, user: str) -> None:
        self.state.players.setdefault(user, Player(hp=100, name=user))

    def on_leave(self, user: str) -> None:
        del self.state.players[user]

    def on_input(self, user: str, data: Any) -> None:
        self.state.players[user].hp = data["hp"]


class Stack:
    """A gateway with the ``match`` room type, restartable on its port, and its clients."""

    def __init__(self) -> None:
        self.router = Router()
        self.gateway: Gateway | None = None
        self.port = 0
        self.clients: list[Client] = []

        @self.router.method("game.corrupt")
        def corrupt(ctx: CallContext, room: str) -> None:
            assert ctx.peer is not None
            ctx.peer.push_binary(state_frame(room, b"\x02\xff"))

    async def start(self) -> None:
        config = dataclasses.replace(gateway_config(), port=self.port)
        self.gateway = Gateway(config, router=self.router,
                               services=builtin_services(room_types={"match": MatchRoom}))
        await self.gateway.start()
        self.port = self.gateway.port

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.shutdown(drain=0)
            self.gateway = None

    async def client(self, user: str, **kwargs: Any) -> Client:
        client = Client(f"ws://127.0.0.1:{self.port}", token=make_token(user), backoff=FAST,
                        ping_interval=None, **kwargs)
        self.clients.append(client)
        await client.connect()
        return client


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    stack = Stack()
    await stack.start()
    yield stack
    for client in stack.clients:
        await client.close()
    await stack.stop()


def when(store: StateStore[Any], pattern: str, value: Any) -> asyncio.Event:
    """Set once a change at ``pattern`` brings ``value``."""
    event = asyncio.Event()
    store.on_change(pattern, lambda change: event.set() if change.value == value else None)
    return event


async def test_binary_and_json_members_hold_the_same_state(stack: Stack) -> None:
    alice = await SyncedRoom.join(await stack.client("alice"), "match:1", Match)
    bob_client = await stack.client("bob", binary=False)
    bob = await SyncedRoom.join(bob_client, "match:1", Match)
    assert (alice.joined["encoding"], bob.joined["encoding"]) == ("binary", "json")
    hurt = [when(room.store, "players.alice.hp", 42) for room in (alice, bob)]
    await alice.client.call("state.input", {"room": "match:1", "data": {"hp": 42}})
    for event in hurt:
        await asyncio.wait_for(event.wait(), WAIT)
    assert alice.store.version == bob.store.version
    assert alice.state.to_dict() == bob.state.to_dict() == {
        "players": {"alice": {"hp": 42, "name": "alice"}, "bob": {"hp": 100, "name": "bob"}}}
    gone = when(alice.store, "players.*", None)  # a removal's value
    await bob.leave()
    await asyncio.wait_for(gone.wait(), WAIT)
    assert list(alice.state.to_dict()["players"]) == ["alice"]


async def test_a_corrupt_frame_is_repaired_with_a_resync(stack: Stack) -> None:
    client = await stack.client("alice")
    room = await SyncedRoom.join(client, "match:1", Match)
    held = (room.store.version, room.state.to_dict())
    await client.call("game.corrupt", {"room": "match:1"})  # the frame comes before the reply
    assert room.store.needs_resync
    await room.synced(timeout=WAIT)
    assert (room.store.version, room.state.to_dict()) == held
    stats = room.store.stats
    assert (stats.corrupt, stats.resyncs, room.resync_calls) == (1, 1, 1)


async def test_after_a_gateway_restart_the_room_is_joined_again(stack: Stack) -> None:
    client = await stack.client("alice")
    room = await SyncedRoom.join(client, "match:1", Match)
    hurt = when(room.store, "players.alice.hp", 42)
    await client.call("state.input", {"room": "match:1", "data": {"hp": 42}})
    await asyncio.wait_for(hurt.wait(), WAIT)
    before = room.store.version
    assert before is not None
    healed = when(room.store, "players.alice.hp", 100)  # the diff of the new snapshot
    await stack.stop()
    await client.wait_for(ClientState.RECONNECTING, timeout=WAIT)
    await stack.start()
    await room.synced(timeout=WAIT)
    assert healed.is_set()
    assert room.state.to_dict() == {"players": {"alice": {"hp": 100, "name": "alice"}}}
    assert room.store.version is not None
    assert room.store.version < before  # a room made again: its older version is taken
    assert (room.rejoins, room.store.stats.resyncs) == (1, 1)


async def test_a_call_queued_while_away_goes_after_the_room_is_joined_again(
        stack: Stack) -> None:
    client = await stack.client("alice")
    room = await SyncedRoom.join(client, "match:1", Match)
    await stack.stop()
    await client.wait_for(ClientState.RECONNECTING, timeout=WAIT)
    hurt = when(room.store, "players.alice.hp", 7)
    queued = asyncio.ensure_future(
        client.call("state.input", {"room": "match:1", "data": {"hp": 7}}))
    await asyncio.sleep(0)  # one turn of the loop: the call is in the queue (asserted)
    assert client.queued == 1
    await stack.start()
    await asyncio.wait_for(queued, WAIT)  # sent before the join again, it would be refused
    await asyncio.wait_for(hurt.wait(), WAIT)
    assert room.rejoins == 1


async def test_a_link_that_drops_after_the_rooms_step_before_connected_is_not_trusted(
        stack: Stack) -> None:
    """The room was joined again on a link that dropped during a later step: no state
    change tells of it (reconnecting all along), and the next link must join again."""
    client = await stack.client("alice")
    room = await SyncedRoom.join(client, "match:1", Match)
    links = 0

    def drop(reason: str) -> None:  # by the gateway: the session is held, and resumed
        assert stack.gateway is not None
        assert client.session is not None
        peer = stack.gateway.peer(client.session)
        assert peer is not None
        peer.close(CloseCode.INTERNAL_ERROR, reason)

    @client.add_reconnect_step  # after the room's: it joined again when this runs
    async def drop_the_first(link: Reconnection) -> None:
        nonlocal links
        links += 1
        if links == 1:
            drop("dropped again")
            await asyncio.Event().wait()  # until the drop ends the steps

    drop("dropped")
    await client.wait_for(ClientState.RECONNECTING, timeout=WAIT)
    await client.wait_for(ClientState.CONNECTED, timeout=WAIT)
    assert (links, room.rejoins) == (2, 2)
    bob = await SyncedRoom.join(await stack.client("bob"), "match:1", Match)
    hurt = when(room.store, "players.bob.hp", 7)
    await bob.client.call("state.input", {"room": "match:1", "data": {"hp": 7}})
    await asyncio.wait_for(hurt.wait(), WAIT)
