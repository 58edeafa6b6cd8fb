"""What each service queues in which outbox lane, with which policy and key (issue 14):
presence, room membership news and state, on one node with peers that record their tags."""

from __future__ import annotations

from rtctl.protocol.lanes import Lane, Policy
from rtctl.protocol.upgrade import SUBPROTOCOL
from rtctl.services.presence import PresenceService
from rtctl.services.room_delivery import RoomLimits
from rtctl.services.sessions import SessionService
from tests.services.fakes import FakeHost, FakePeer, ManualTimer
from tests.services.test_large_rooms import bus_settled, rooms_on
from tests.services.test_presence import presence_settled
from tests.services.test_state_rooms import Setup, copy_of

CHAT = (Lane.CHAT, None, None)  # the chat lane, its own policy (reliable), no key
STATE = (Lane.STATE, None, None)


async def test_presence_changes_are_chat_coalescible_by_user() -> None:
    host = FakeHost()
    presence = PresenceService(host, SessionService(host))
    bus, subject = host.backends.bus, f"{host.backends.subject_prefix}.presence"
    for hook in host.startup:
        await hook()
    try:
        alice = FakePeer("a1", "alice")
        host.peers[alice.id] = alice
        await presence.subscribe(alice.context(), ["bob", "carol"])
        for version, (user, status) in enumerate([("bob", "busy"), ("carol", "away"),
                                                   ("bob", "online")], 1):
            await bus.publish(subject, {"user": user, "status": status, "last_seen": None,
                                        "text": None, "version": version})
        await presence_settled(host)
    finally:
        for hook in host.shutdown:
            await hook()
    assert [n["params"]["user"] for n in alice.received] == ["bob", "carol", "bob"]
    assert alice.tags("presence.changed") == [
        (Lane.CHAT, Policy.COALESCIBLE, ("presence", user)) for user in ("bob", "carol", "bob")]


async def test_membership_news_is_chat_in_small_and_big_rooms() -> None:
    host, timer = FakeHost(), ManualTimer()
    rooms = rooms_on(host, RoomLimits(small_room=2), timer)
    alice, bob, carol = (FakePeer(f"c{i}", user) for i, user in
                         enumerate(["alice", "bob", "carol"], 1))
    for peer in (alice, bob, carol):  # carol's join makes the room big: a diff
        await rooms.join(peer.context(), "r")
        await bus_settled(host.backends, "r")
    timer.fire()
    assert alice.methods() == ["room.joined", "room.diff"]
    assert alice.tags("room.joined") == alice.tags("room.diff") == [CHAT]


async def test_state_patches_and_full_states_go_in_the_state_lane() -> None:
    setup = Setup()
    binary, text = FakePeer("c1", "alice"), FakePeer("c2", "bob", subprotocol=SUBPROTOCOL)
    await setup.join(binary)
    await setup.join(text)  # binary gets a delta of bob's arrival, text the full state
    setup.tick()
    text.queued[Lane.STATE] = 1  # behind: one catch-up delta once it has drained
    setup.tick()
    text.queued[Lane.STATE] = 0
    setup.tick()
    setup.state.resync(text.context(), "match:1")  # the full state again
    assert binary.tags(None) == [STATE] * 5
    assert text.tags("state.patch") == [STATE] * 4
    assert copy_of(text).state.to_dict() == setup.live().instance.state.to_dict()


async def test_a_member_behind_in_other_lanes_still_gets_every_patch() -> None:
    setup = Setup()
    flooded = FakePeer("c1", "alice")
    await setup.join(flooded)
    flooded.queued.update({Lane.EVENTS: 1 << 20, Lane.CHAT: 1 << 16})  # a room's flood
    for _ in range(3):
        setup.tick()
    assert len(flooded.binary) == 1 + 3  # the full state, then each tick's patch
    assert setup.live().coalesced == 0
    assert copy_of(flooded).version == setup.live().encoder.version
