"""Rooms whose message streams survive reconnects.

:class:`Rooms` over a real client against a scripted gateway that keeps a
room's history as the rtctl gateway does (``docs/api.md``), so a test decides
what is missed, replayed or lost (one room's stream position alone is
``test_room_stream.py``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from rtctl import RpcError
from rtctl.client import (
    ClientState,
    ConnectionLost,
    Lane,
    Policy,
    ProtocolError,
    RoomMessage,
    RoomRecovery,
    Rooms,
    ServerError,
)
from rtctl.protocol.codes import CloseCode, ErrorCode
from rtctl.protocol.streams import StreamPosition
from tests.client.lab import WAIT
from tests.client.scripted_gateway import HOLD, Conn, Scene
from tests.conftest import TIMING

P = StreamPosition
ROOM = "r"


class History:
    """Room ``r`` as the gateway keeps it: its messages, epoch and idempotency keys.

    The client's user is alice; a replay to a resumed session skips her messages,
    as the gateway skips the session's own.
    """

    def __init__(self) -> None:
        self.messages: list[tuple[str, Any]] = []  # (from, data); offset = index + 1
        self.epoch = "e1"
        self.keys: dict[str, int] = {}
        self.hold_publish = False  # append, and answer nothing
        self.refuse_join_on: set[int] = set()  # connection indices whose room.join is refused
        self.published = asyncio.Event()  # set when a publish is appended

    def params(self, offset: int) -> dict[str, Any]:
        sender, data = self.messages[offset - 1]
        return {"room": ROOM, "from": sender, "data": data, "offset": offset,
                "epoch": self.epoch}

    async def push(self, conn: Conn, data: Any, sender: str = "bob") -> None:
        """Another member publishes: appended, and delivered to ``conn`` live."""
        self.messages.append((sender, data))
        await conn.notify("room.message", self.params(len(self.messages)))

    async def answer(self, conn: Conn, request: dict[str, Any]) -> Any:
        params = request.get("params") or {}
        if request["method"] == "room.join":
            if conn.index in self.refuse_join_on:
                raise RpcError(ErrorCode.FORBIDDEN, "the room is closed")
            end = len(self.messages)
            reply = {"total": 1, "offset": end, "epoch": self.epoch}
            if (since := params.get("since")) is not None:
                replay = [offset for offset in range(since["offset"] + 1, end + 1)
                          if conn.recover is None or self.messages[offset - 1][0] != "alice"]
                for offset in replay:  # before the reply
                    await conn.notify("room.message", self.params(offset))
                reply |= {"recovered": True, "replayed": len(replay)}
            return reply
        if request["method"] == "room.publish":
            key = request.get("idempotency_key")
            if key is None or key not in self.keys:
                self.messages.append(("alice", params["data"]))
                self.keys[key or ""] = len(self.messages)
                self.published.set()
            offset = self.keys[key or ""]
            return HOLD if self.hold_publish else {"offset": offset, "epoch": self.epoch}
        return NotImplemented


class Member:
    """A client's Rooms, and what it delivered and reported."""

    def __init__(self, scene: Scene, history: History) -> None:
        scene.gateway.answer = history.answer
        self.client = scene.client()
        self.rooms = Rooms(self.client)
        self.messages: list[RoomMessage] = []
        self.recoveries: list[RoomRecovery] = []
        self._news = asyncio.Event()
        self.rooms.on_message(self._add)
        self.rooms.on_recovery(self._add)

    def _add(self, event: RoomMessage | RoomRecovery) -> None:
        if isinstance(event, RoomMessage):
            self.messages.append(event)
        else:
            self.recoveries.append(event)
        self._news.set()

    async def until(self, messages: int, recoveries: int = 0) -> None:
        async with asyncio.timeout(WAIT):
            while len(self.messages) < messages or len(self.recoveries) < recoveries:
                self._news.clear()
                await self._news.wait()

    def offsets(self) -> list[int]:
        return [message.offset for message in self.messages]


async def connected_member(scene: Scene, history: History) -> tuple[Member, Conn]:
    member = Member(scene, history)
    await member.client.connect()
    assert await member.rooms.join(ROOM) == {"total": 1, "offset": len(history.messages),
                                              "epoch": "e1"}
    return member, await scene.gateway.conn(0)


async def test_rooms_join_again_with_since_and_take_the_replay(scene: Scene) -> None:
    history = History()
    history.messages.append(("bob", "before the join"))
    member, first = await connected_member(scene, history)
    for n in (2, 3):
        await history.push(first, n)
    await member.until(messages=2)
    await first.drop()
    await member.client.wait_for(ClientState.RECONNECTING, timeout=WAIT)
    history.messages += [("bob", 4), ("carol", 5)]  # missed
    await member.until(messages=4, recoveries=1)
    second = await scene.gateway.conn(1)
    assert second.requests[1]["params"] == {"room": ROOM,
                                            "since": {"offset": 3, "epoch": "e1"}}
    await history.push(second, 6)
    await member.until(messages=5)
    assert member.offsets() == [2, 3, 4, 5, 6]
    assert [m.sender for m in member.messages] == ["bob", "bob", "bob", "carol", "bob"]
    assert member.recoveries == [RoomRecovery(ROOM, True, 2, None, P(5, "e1"))]
    assert member.rooms.position(ROOM) == P(6, "e1")
    counters = member.rooms.counters
    assert (counters.recovered, counters.replayed, counters.duplicates) == (1, 2, 0)


async def test_a_publish_in_flight_is_sent_again_after_the_room_is_joined_again(
        scene: Scene) -> None:
    history = History()
    member, first = await connected_member(scene, history)
    await history.push(first, 1)
    await member.until(messages=1)
    history.hold_publish = True
    publish = asyncio.ensure_future(member.rooms.publish(ROOM, "hello"))
    await asyncio.wait_for(history.published.wait(), WAIT)  # as 2; its reply is lost with the link
    history.messages.append(("bob", 3))  # and 3 was on its way when the link dropped
    history.hold_publish = False
    await first.drop()
    assert await asyncio.wait_for(publish, WAIT) == P(2, "e1")
    second = await scene.gateway.conn(1)
    assert second.methods() == ["session.info", "room.join", "room.publish"]
    assert second.requests[1]["params"]["since"] == {"offset": 1, "epoch": "e1"}
    keys = [c.requests[-1]["idempotency_key"] for c in scene.gateway.conns]
    assert keys[0] == keys[1]
    assert history.messages == [("bob", 1), ("alice", "hello"), ("bob", 3)]  # appended once
    assert member.offsets() == [1, 3]
    assert member.recoveries == [RoomRecovery(ROOM, True, 1, None, P(3, "e1"))]
    assert member.rooms.position(ROOM) == P(3, "e1")


async def test_a_reset_reaches_on_recovery_and_delivery_goes_on(scene: Scene) -> None:
    history = History()
    member, first = await connected_member(scene, history)
    await history.push(first, 1)
    await member.until(messages=1)
    await first.drop()
    await member.client.wait_for(ClientState.RECONNECTING, timeout=WAIT)
    history.messages += [("bob", n) for n in (2, 3, 4)]
    history.epoch = "e2"  # the history was lost: what was missed with it

    async def reset(conn: Conn, request: dict[str, Any]) -> Any:
        if request["method"] == "room.join":
            return {"total": 1, "offset": 4, "epoch": "e2", "recovered": False,
                    "reason": "epoch_changed"}
        return await history.answer(conn, request)

    scene.gateway.answer = reset
    await member.until(messages=1, recoveries=1)
    assert member.recoveries == [RoomRecovery(ROOM, False, 0, "epoch_changed", P(4, "e2"))]
    await history.push(await scene.gateway.conn(1), 5)
    await member.until(messages=2)
    assert member.offsets() == [1, 5]
    assert member.rooms.counters.resets == 1


async def test_a_refused_join_again_is_reported_and_the_room_dropped(scene: Scene) -> None:
    history = History()
    history.refuse_join_on.add(1)
    member, first = await connected_member(scene, history)
    await first.drop()
    await member.until(messages=0, recoveries=1)
    (event,) = member.recoveries
    assert (event.room, event.recovered, event.reason, event.position) == (
        ROOM, False, None, P(0, "e1"))
    assert isinstance(event.error, ServerError)
    assert event.error.code == ErrorCode.FORBIDDEN
    assert member.rooms.position(ROOM) is None
    assert member.rooms.counters.resets == 0
    await member.client.wait_for(ClientState.CONNECTED, timeout=WAIT)
    history.refuse_join_on.clear()  # the game may join again
    assert await member.rooms.join(ROOM) == {"total": 1, "offset": 0, "epoch": "e1"}



@pytest.mark.parametrize("failure", ["reply lost", "backend unavailable"])
async def test_a_join_again_that_fails_for_a_while_is_made_on_a_new_link_from_there(
        scene: Scene, failure: str) -> None:
    """A join again whose reply is lost may yet have been done (and a second ``since``
    on that connection would be refused); one refused as retryable was not. Either way
    the link is given up, the room kept where it was, and the next link joins from there."""
    history = History()
    member, first = await connected_member(scene, history)
    member.client.call_timeout = 0.2 * TIMING  # for the join again, whose reply may be lost

    async def fails_once(conn: Conn, request: dict[str, Any]) -> Any:
        if request["method"] == "room.join" and conn.index == 1:
            if failure == "backend unavailable":
                raise RpcError(ErrorCode.BACKEND_UNAVAILABLE, "Backend unavailable: redis")
            await history.answer(conn, request)  # joined and replayed: only the reply is lost
            return HOLD
        return await history.answer(conn, request)

    scene.gateway.answer = fails_once
    await history.push(first, 1)
    await member.until(messages=1)
    await first.drop()
    await member.client.wait_for(ClientState.RECONNECTING, timeout=WAIT)
    history.messages += [("bob", 2), ("bob", 3)]  # missed
    await member.until(messages=3, recoveries=1)
    assert member.offsets() == [1, 2, 3]
    assert member.recoveries == [RoomRecovery(ROOM, True, 2, None, P(3, "e1"))]
    given_up, third = scene.gateway.conns[1:]
    assert given_up.ws.close_code == CloseCode.INTERNAL_ERROR
    assert [conn.requests[1]["params"] for conn in (given_up, third)] == [
        {"room": ROOM, "since": {"offset": 1, "epoch": "e1"}}] * 2
    assert member.rooms.counters.duplicates == 0  # what the link given up brought: not kept

async def test_a_join_again_refused_by_the_inbound_rate_is_asked_again_on_the_same_link(
        scene: Scene) -> None:
    """-32029 means the join never ran: the link is kept and the join asked again after
    the wait the gateway named, rather than the link given up."""
    history = History()
    member, first = await connected_member(scene, history)
    refused = 0

    async def limited_once(conn: Conn, request: dict[str, Any]) -> Any:
        nonlocal refused
        if request["method"] == "room.join" and conn.index == 1 and not refused:
            refused += 1
            raise RpcError(ErrorCode.RATE_LIMITED, "Rate limited: over 1 calls/s; retry in 5 ms",
                           {"retry_after_ms": 5})
        return await history.answer(conn, request)

    scene.gateway.answer = limited_once
    await first.drop()
    await member.client.wait_for(ClientState.RECONNECTING, timeout=WAIT)
    history.messages.append(("bob", 1))  # missed
    await member.until(messages=1, recoveries=1)
    assert member.recoveries == [RoomRecovery(ROOM, True, 1, None, P(1, "e1"))]
    assert len(scene.gateway.conns) == 2  # the second link was kept
    second = scene.gateway.conns[1]
    assert [r["method"] for r in second.requests[:3]].count("room.join") == 2


async def test_join_and_leave_refuse_what_cannot_be(scene: Scene) -> None:
    history = History()
    member, first = await connected_member(scene, history)
    with pytest.raises(ValueError, match="already joined"):
        await member.rooms.join(ROOM)
    await member.rooms.leave(ROOM)
    assert first.requests[-1]["method"] == "room.leave"
    assert "idempotency_key" in first.requests[-1]  # sent again after a drop
    with pytest.raises(ValueError, match="not joined"):
        await member.rooms.leave(ROOM)
    await history.push(first, 1)  # no longer delivered
    await member.rooms.join(ROOM)
    assert (member.rooms.position(ROOM), member.messages) == (P(1, "e1"), [])


async def test_leaving_a_room_a_new_session_is_not_in_is_done(scene: Scene) -> None:
    history = History()
    member, _ = await connected_member(scene, history)

    async def not_in_room(conn: Conn, request: dict[str, Any]) -> Any:
        if request["method"] == "room.leave":
            raise RpcError(ErrorCode.FORBIDDEN, "Not in room")
        return await history.answer(conn, request)

    scene.gateway.answer = not_in_room
    await member.rooms.leave(ROOM)
    assert member.rooms.position(ROOM) is None


async def test_a_join_that_fails_leaves_no_room_behind(scene: Scene) -> None:
    history = History()
    history.refuse_join_on.add(0)
    member = Member(scene, history)
    await member.client.connect()
    with pytest.raises(ServerError):
        await member.rooms.join(ROOM)
    assert member.rooms.position(ROOM) is None


async def test_a_publish_names_its_lane_policy_and_key_only_when_given(scene: Scene) -> None:
    history = History()
    member, _ = await connected_member(scene, history)
    sent: list[dict[str, Any]] = []

    async def record(conn: Conn, request: dict[str, Any]) -> Any:
        if request["method"] == "room.publish":
            sent.append(request["params"])
        return await history.answer(conn, request)

    scene.gateway.answer = record
    await member.rooms.publish(ROOM, 1)
    await member.rooms.publish(ROOM, 2, lane=Lane.CHAT, policy=Policy.COALESCIBLE, key="pos")
    await member.rooms.publish(ROOM, 3, lane=Lane.TELEMETRY)
    assert sent == [
        {"room": ROOM, "data": 1},
        {"room": ROOM, "data": 2, "lane": "chat", "policy": "coalescible", "key": "pos"},
        {"room": ROOM, "data": 3, "lane": "telemetry"}]


async def test_a_publish_answered_without_a_position_is_a_protocol_error(scene: Scene) -> None:
    history = History()
    member, _ = await connected_member(scene, history)

    async def no_position(conn: Conn, request: dict[str, Any]) -> Any:
        return {} if request["method"] == "room.publish" else NotImplemented

    scene.gateway.answer = no_position
    with pytest.raises(ProtocolError, match=r"room\.publish answered \{\}"):
        await member.rooms.publish(ROOM, 1)


async def test_a_room_message_without_a_position_is_dropped_with_a_warning(
        scene: Scene, caplog: pytest.LogCaptureFixture) -> None:
    history = History()
    member, first = await connected_member(scene, history)
    with caplog.at_level(logging.WARNING, logger="rtctl.client"):
        await first.notify("room.message", {"room": ROOM, "from": "bob", "data": "no offset"})
        await history.push(first, "then one with")
        await member.until(messages=1)
    assert member.offsets() == [1]
    assert [r.getMessage()[:21] for r in caplog.records] == ["room.message dropped:"]


async def test_a_plain_call_in_flight_still_fails_with_connection_lost(scene: Scene) -> None:
    history = History()
    member, first = await connected_member(scene, history)
    history.hold_publish = True
    call = asyncio.ensure_future(member.client.call("room.publish", {"room": ROOM, "data": 1}))
    await first.wait_for("room.publish")
    await first.drop()
    with pytest.raises(ConnectionLost):
        await asyncio.wait_for(call, WAIT)
