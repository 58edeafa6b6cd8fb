"""One node's room delivery over a bus that loses, reorders and repeats: members get every
message in offset order, once; what a publish answers; closed connections get nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import pytest
from redis.exceptions import ResponseError

from rtctl.backends.base import BackendUnavailable, HistoryLimits, SessionRecord
from rtctl.services.room_delivery import FILL_RETRY, RoomLimits
from tests.conftest import TIMING
from tests.services.streams import Member, Node


async def in_room(node: Node, *names: str) -> list[Member]:
    members = [Member(f"c{i}", name) for i, name in enumerate(names, 1)]
    for member in members:
        await node.join(member)
    return members


async def held_join(node: Node, member: Member
                    ) -> tuple[asyncio.Future[dict[str, Any]], asyncio.Event]:
    """``member``'s join of ``r``, held at its history read until the event is set."""
    node.history.gate = gate = asyncio.Event()
    join = asyncio.ensure_future(node.join(member))
    await node.history.held()
    node.history.waiting.clear()  # for the next one held
    return join, gate


async def test_a_publish_answers_the_position_its_message_is_delivered_with() -> None:
    node = Node()
    alice, bob = await in_room(node, "alice", "bob")
    epoch = (await node.history.position("r")).epoch
    assert await node.publish(bob, "hi") == {"offset": 1, "epoch": epoch}
    await node.bus.deliver(1)
    await alice.until(1)
    assert alice.messages() == [{"room": "r", "from": "bob", "data": "hi", "offset": 1,
                                 "epoch": epoch}]
    await node.settled()
    assert bob.messages() == []  # nobody hears their own message


async def test_messages_the_bus_reorders_and_repeats_reach_members_in_order_once() -> None:
    node = Node()
    alice, bob = await in_room(node, "alice", "bob")
    for n in range(1, 6):
        await node.publish(bob, n)
    await node.bus.deliver(3, 1, 1, 5, 2, 4, 3)
    assert await alice.until(5) == [1, 2, 3, 4, 5]
    await node.settled()
    assert [m["data"] for m in alice.messages()] == [1, 2, 3, 4, 5]


async def test_a_message_lost_on_the_bus_is_filled_from_history_before_anything_newer() -> None:
    node = Node()
    alice, bob = await in_room(node, "alice", "bob")
    for n in range(1, 4):
        await node.publish(bob, n)
    await node.bus.deliver(1)
    assert await alice.until(1) == [1]
    node.history.gate = gate = asyncio.Event()  # the fill's read waits: 3 and 4 must too
    await node.bus.deliver(3)  # 2 was lost (or its node died after acknowledging it)
    await node.history.held()
    await node.publish(bob, 4)
    await node.bus.deliver(4)
    await node.settled()
    assert alice.offsets() == [1]
    gate.set()
    assert await alice.until(4) == [1, 2, 3, 4]


async def test_a_publish_whose_bus_send_fails_is_acknowledged_and_delivered_later() -> None:
    node = Node()
    alice, bob = await in_room(node, "alice", "bob")
    node.bus.failing = True
    assert (await node.publish(bob, "kept"))["offset"] == 1  # it is in history
    node.bus.failing = False
    await node.publish(bob, "next")
    await node.bus.deliver(2)
    assert await alice.until(2) == [1, 2]
    assert [m["data"] for m in alice.messages()] == ["kept", "next"]


async def test_a_publish_resent_with_its_key_is_answered_again_and_sent_once() -> None:
    node = Node()
    alice, bob, carol = await in_room(node, "alice", "bob", "carol")
    keyed = dataclasses.replace(bob.context(), idempotency_key="m-1")
    first = await node.rooms.publish(keyed, "r", "hi")
    assert await node.rooms.publish(keyed, "r", "hi") == first
    other = dataclasses.replace(carol.context(), idempotency_key="m-1")  # another user's
    assert (await node.rooms.publish(other, "r", "yo"))["offset"] == 2
    assert sorted(node.bus.held) == [1, 2]  # the repeat was not sent again
    await node.bus.deliver(1, 2)
    assert await alice.until(2) == [1, 2]
    await node.settled()
    assert alice.offsets() == [1, 2]


@pytest.mark.parametrize("limits", [HistoryLimits(size=2), HistoryLimits(ttl=30.0)],
                         ids=["trimmed", "expired"])
async def test_a_hole_history_no_longer_has_is_logged_and_skipped(
    limits: HistoryLimits, caplog: pytest.LogCaptureFixture,
) -> None:
    node = Node(limits)
    alice, bob = await in_room(node, "alice", "bob")
    epoch = (await node.history.position("r")).epoch
    await node.publish(bob, 1)
    await node.publish(bob, 2)
    node.clock.now += 31  # past the ttl: the window is dropped
    await node.publish(bob, 3)
    await node.publish(bob, 4)
    caplog.set_level(logging.WARNING, "rtctl.rooms")
    await node.bus.deliver(3, 4)
    assert await alice.until(2) == [3, 4]
    assert caplog.messages == [f"room r: messages of epoch {epoch} after offset 0 up to 2 "
                               "not delivered here: too_old"]


async def test_a_lost_history_starts_the_stream_over_in_a_new_epoch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    node = Node()
    alice, bob = await in_room(node, "alice", "bob")
    await node.publish(bob, "before")
    await node.bus.deliver(1)
    await alice.until(1)
    old = alice.messages()[0]["epoch"]
    node.history.lose()  # Redis flushed
    caplog.set_level(logging.WARNING, "rtctl.rooms")
    position = await node.publish(bob, "after")
    assert position["offset"] == 1
    assert position["epoch"] != old
    await node.bus.deliver(1)
    await alice.until(2)
    assert [(m["offset"], m["epoch"], m["data"]) for m in alice.messages()] == [
        (1, old, "before"), (1, position["epoch"], "after")]
    assert caplog.messages == [f"room r: messages of epoch {old} after offset 1 not "
                               "delivered here: epoch_changed"]


async def test_a_member_starting_in_an_epoch_this_node_has_yet_to_reach_gets_only_what_follows(
) -> None:
    node = Node()
    alice, bob = await in_room(node, "alice", "bob")
    old = (await node.publish(bob, "old 1"))["epoch"]
    for n in (2, 3):
        await node.publish(bob, f"old {n}")
    await node.bus.deliver(1)
    await alice.until(1)
    node.history.lose()  # Redis flushed: a new epoch this node has not heard of yet
    new = (await node.publish(bob, "new 1"))["epoch"]
    carol = Member("c3", "carol")
    join, gate = await held_join(node, carol)
    await node.bus.deliver(2)  # stragglers of the old epoch: one while carol joins,
    await alice.until(2)
    gate.set()
    assert {k: (await join)[k] for k in ("offset", "epoch")} == {"offset": 1, "epoch": new}
    await node.bus.deliver(3, 1)  # one after; then new 1, where carol starts
    await node.publish(bob, "new 2")
    await node.bus.deliver(2)
    assert await alice.until(5) == [1, 2, 3, 1, 2]
    assert [m["epoch"] for m in alice.messages()] == [old, old, old, new, new]
    assert await carol.until(1) == [2]
    await node.settled()
    assert [(m["offset"], m["epoch"]) for m in carol.messages()] == [(2, new)]


async def test_a_member_whose_read_the_nodes_new_epoch_overtook_gets_all_of_that_epoch(
) -> None:
    node = Node()
    alice, bob = await in_room(node, "alice", "bob")
    old = (await node.publish(bob, "old"))["epoch"]
    await node.bus.deliver(1)
    await alice.until(1)
    node.history.early, node.history.gate = True, (gate := asyncio.Event())
    carol = Member("c3", "carol")
    join = asyncio.ensure_future(node.join(carol))
    await node.history.held()  # carol's read found (1, old)
    node.history.lose()
    new = (await node.publish(bob, "new 1"))["epoch"]
    await node.bus.deliver(1)
    assert await alice.until(2) == [1, 1]  # the stream here started over meanwhile
    gate.set()
    assert (await join)["epoch"] == old
    await node.publish(bob, "new 2")
    await node.bus.deliver(2)
    assert await carol.until(2) == [1, 2]  # not taken for a stale epoch's: none missed
    assert [m["epoch"] for m in carol.messages()] == [new, new]


@pytest.mark.parametrize(("error", "logged"), [
    (BackendUnavailable("redis", "timed out"), (logging.INFO, False)),
    (ResponseError("OOM command not allowed when used memory > 'maxmemory'."),
     (logging.ERROR, True)),  # not an outage: logged with its traceback
], ids=["unreachable", "refused"])
async def test_a_fill_that_fails_is_tried_again_after_a_pause(
    error: Exception, logged: tuple[int, bool], caplog: pytest.LogCaptureFixture,
) -> None:
    node = Node()
    alice, bob = await in_room(node, "alice", "bob")
    await node.publish(bob, 1)
    await node.publish(bob, 2)
    node.history.failures, node.history.error = 1, error
    caplog.set_level(logging.INFO, "rtctl.rooms")
    await node.bus.deliver(2)
    await node.settled()
    assert alice.offsets() == []
    [record] = [r for r in caplog.records if r.name == "rtctl.rooms"]
    assert (record.levelno, record.exc_info is not None) == logged
    assert record.getMessage().startswith("room r: a hole in its stream waits for history")
    assert node.timer.fire() == [FILL_RETRY]
    assert await alice.until(2) == [1, 2]


async def test_a_member_starting_beyond_this_nodes_stream_gets_nothing_from_before() -> None:
    node = Node()
    alice, bob = await in_room(node, "alice", "bob")
    await node.publish(bob, 1)
    await node.publish(bob, 2)  # both still on their way here
    carol = Member("c3", "carol")
    assert (await node.join(carol))["offset"] == 2
    assert (await node.join(carol))["offset"] == 2  # again: still where it starts
    await node.bus.deliver(1, 2)
    await node.publish(bob, 3)
    await node.bus.deliver(3)
    assert await alice.until(3) == [1, 2, 3]
    assert await carol.until(1) == [3]
    await node.settled()
    assert carol.offsets() == [3]


async def test_a_dropped_connection_gets_nothing_and_its_session_leaves_when_it_ends() -> None:
    node = Node()
    node.host.grace = 5.0
    alice, bob = await in_room(node, "alice", "bob")
    await node.settled()
    try:
        await node.sessions._disconnected(bob, 1006, "")  # the gateway's hook: held 5 s
        await node.publish(alice, "anyone?")
        await node.bus.deliver(1)
        await node.settled()
        assert bob.messages() == []
        assert (await node.rooms.members(alice.context(), "r"))["members"] == ["alice", "bob"]
        assert "room.left" not in alice.methods()  # a resume within the grace flaps nothing
        await node.sessions.end("c2", "bob", "n1")  # the grace is over
        await node.settled()
        assert alice.methods()[-1] == "room.left"
        assert (await node.rooms.members(alice.context(), "r"))["members"] == ["alice"]
    finally:
        await node.sessions._stop()


async def test_this_nodes_first_member_starts_at_the_streams_end() -> None:
    node = Node()
    for n in (1, 2, 3):  # said through other nodes before anyone here joined
        await node.history.append("r", {"from": "dan", "data": n, "session": "x"})
    alice, bob = await in_room(node, "alice", "bob")
    await node.publish(bob, 4)
    await node.bus.deliver(4)
    assert await alice.until(1) == [4]
    await node.settled()
    assert alice.offsets() == [4]
    assert node.history.reads == []  # no hole: the stream here started after 3


async def test_a_session_resumed_here_keeps_its_new_connections_rooms() -> None:
    node = Node()
    alice, old = await in_room(node, "alice", "bob")
    new = Member("c2", "bob")  # the same session on a new connection, before the old's end
    node.host.peers["c2"] = new
    await node.join(new)
    await node.rooms._detached("c2")  # the old connection's hook runs late
    await node.publish(alice, "hi")
    await node.bus.deliver(1)
    assert await new.until(1) == [1]
    assert old.messages() == []


async def test_a_big_fan_out_skips_a_member_whose_connection_closed_meanwhile() -> None:
    node = Node(room_limits=RoomLimits(chunk=10))
    members = await in_room(node, *(f"u{i:02d}" for i in range(35)))
    first, gone = members[1], members[20]
    first_push = first.push

    def push_then_close_one(data: bytes, **tags: Any) -> None:  # between chunks 1 and 3
        first_push(data, **tags)
        asyncio.get_running_loop().create_task(node.rooms._detached(gone.id))

    first.push = push_then_close_one  # type: ignore[method-assign]
    await node.publish(members[0], "hi")
    await node.bus.deliver(1)
    assert await members[-1].until(1) == [1]
    assert gone.messages() == []


async def test_a_subscription_made_for_a_connection_that_closed_meanwhile_is_dropped() -> None:
    node = Node()
    node.bus.gate = gate = asyncio.Event()
    alice = Member("c1", "alice")
    join = asyncio.ensure_future(node.join(alice))
    await asyncio.wait_for(node.bus.waiting.wait(), 5 * TIMING)
    await node.rooms._detached("c1")  # the room has nobody here any more
    gate.set()
    await join
    assert node.bus.subscriptions == 0
    bob = Member("c2", "bob")  # the room works as new afterwards
    await node.join(bob)
    assert node.bus.subscriptions == 1


async def test_a_join_whose_connection_closed_meanwhile_is_taken_back_quietly() -> None:
    node = Node()
    (alice,) = await in_room(node, "alice")
    carol = Member("c3", "carol")
    join, gate = await held_join(node, carol)
    await node.rooms._detached(carol.id)
    gate.set()
    await join
    await node.settled()
    assert "room.joined" not in alice.methods()
    assert (await node.rooms.members(alice.context(), "r"))["members"] == ["alice"]
    assert await node.backends.rooms.rooms_of(carol.id) == []


async def test_a_join_that_outlives_its_session_leaves_no_ghost_behind() -> None:
    node = Node()
    alice, laptop = await in_room(node, "alice", "carol")
    phone = Member("c3", "carol")
    join, gate = await held_join(node, phone)
    await node.sessions._disconnected(phone, 1000, "")  # closed by the client: ended at once
    gate.set()
    await join
    await node.rooms.leave(laptop.context(), "r")
    await node.settled()
    assert alice.methods() == ["room.joined", "room.left"]  # carol's laptop, and its leave
    assert (await node.rooms.members(alice.context(), "r"))["members"] == ["alice"]


@pytest.mark.parametrize("held", [False, True], ids=["ended", "held"])
async def test_a_join_taken_back_only_when_its_session_ended_too(held: bool) -> None:
    node = Node()
    alice, old = await in_room(node, "alice", "carol")
    await node.rooms._detached(old.id)  # carol's session is still in the room
    new = Member(old.id, "carol")  # the session resumed; its connection drops mid-join too
    join, gate = await held_join(node, new)
    await node.rooms._detached(new.id)
    if held:  # still held for a resume (its record lives): its end will leave the room
        await node.backends.sessions.put([SessionRecord(
            id=new.id, user="carol", node="n1", created_at=0.0, last_seen=0.0)], ttl=60)
    gate.set()
    await join
    await node.settled()
    members = (await node.rooms.members(alice.context(), "r"))["members"]
    if held:
        assert alice.methods() == ["room.joined"]
        assert members == ["alice", "carol"]
    else:  # the store join took the user's last session: the room is told it left
        assert alice.methods() == ["room.joined", "room.left"]
        assert members == ["alice"]


async def test_a_join_of_a_closed_connection_leaves_its_resumed_successor_in_the_room() -> None:
    node = Node()
    (alice,) = await in_room(node, "alice")
    old = Member("c3", "carol")
    join, gate = await held_join(node, old)
    await node.rooms._detached(old.id)
    new = Member(old.id, "carol")  # the same session, resumed here, joins before the old
    node.host.peers[new.id] = new
    await node.join(new)
    gate.set()
    await join
    await node.publish(alice, "hi")
    await node.bus.deliver(1)
    assert await new.until(1) == [1]
    assert alice.methods() == ["room.joined"]
    assert (await node.rooms.members(alice.context(), "r"))["members"] == ["alice", "carol"]
